"""Plain HTTP through a proxy_pass location: nginx's proxying, websocket counters untouched."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import free_port, ngxws, parse_stats, read_until_closed


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it received, as JSON; /stream answers close-delimited."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/stream"):
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for i in range(5):
                self.wfile.write(b"part%d\n" % i)
            self.close_connection = True
            return
        out = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Backend", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_backend() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def _conf(port: int, backend: int, location_extra: str = "") -> str:
    return f"""
events {{ }}
http {{
    server {{
        listen 127.0.0.1:{port};
        location /websocket_status {{ ws_stat; }}
        location /api/ {{
            proxy_pass http://127.0.0.1:{backend}/v1/;
            {location_extra}
        }}
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            {location_extra}
        }}
    }}
}}
"""


def test_get_post_and_keep_alive_on_one_connection(tmp_path: Path) -> None:
    port = free_port()
    with http_backend() as backend, ngxws(_conf(port, backend), tmp_path, port) as px:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/hello?x=1", headers={"X-Custom": "abc"})
        r = c.getresponse()
        got = json.loads(r.read())
        assert r.status == 200 and r.getheader("X-Backend") == "yes"
        assert got["path"] == "/hello?x=1"
        assert got["version"] == "HTTP/1.0"  # nginx's default proxy_http_version
        headers = {k.lower(): v for k, v in got["headers"]}
        assert headers["host"] == f"127.0.0.1:{backend}"  # $proxy_host
        assert headers["connection"] == "close"
        assert headers["x-custom"] == "abc"
        # same client connection: keep-alive
        c.request("POST", "/api/items", body=b"payload=1", headers={"Content-Type": "text/plain"})
        r = c.getresponse()
        got = json.loads(r.read())
        assert got["method"] == "POST" and got["path"] == "/v1/items" and got["body"] == "payload=1"
        c.close()
        assert parse_stats(px.stats()) == {k: 0 for k in parse_stats(px.stats())}


def test_chunked_request_body_is_sent_with_length(tmp_path: Path) -> None:
    port = free_port()
    with http_backend() as backend, ngxws(_conf(port, backend), tmp_path, port):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            raw = read_until_closed(s)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        got = json.loads(body)
        assert got["body"] == "hello world"
        headers = {k.lower(): v for k, v in got["headers"]}
        assert headers["content-length"] == "11" and "transfer-encoding" not in headers


def test_close_delimited_response_is_rechunked_for_http11(tmp_path: Path) -> None:
    port = free_port()
    with http_backend() as backend, ngxws(_conf(port, backend), tmp_path, port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/stream")
        r = c.getresponse()
        assert r.getheader("Transfer-Encoding") == "chunked"
        assert r.read() == b"".join(b"part%d\n" % i for i in range(5))
        # and the connection is still usable
        c.request("GET", "/after")
        assert json.loads(c.getresponse().read())["path"] == "/after"
        c.close()


def test_head_request(tmp_path: Path) -> None:
    port = free_port()
    with http_backend() as backend, ngxws(_conf(port, backend), tmp_path, port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("HEAD", "/x")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b""
        c.request("GET", "/y")
        assert json.loads(c.getresponse().read())["path"] == "/y"
        c.close()


def test_proxy_set_header_replaces_defaults(tmp_path: Path) -> None:
    port = free_port()
    extra = "proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    with http_backend() as backend, ngxws(_conf(port, backend, extra), tmp_path, port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/h", headers={"Host": "Example.COM:8080", "X-Forwarded-For": "10.0.0.1"})
        got = json.loads(c.getresponse().read())
        headers = {k.lower(): v for k, v in got["headers"]}
        assert headers["host"] == "example.com"
        assert headers["x-real-ip"] == "127.0.0.1"
        assert headers["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
        assert headers["connection"] == "close"
        c.close()


def test_pipelined_requests_answered_in_order(tmp_path: Path) -> None:
    port = free_port()
    with http_backend() as backend, ngxws(_conf(port, backend), tmp_path, port):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            raw = read_until_closed(s)
        assert raw.count(b"HTTP/1.1 200") == 2
        assert raw.index(b'"/one"') < raw.index(b'"/two"')
