"""A request reaches the upstream only once it is whole and valid (issue 8,
item 2), also when its body comes in pieces, late: real ngxws, a real
backend that counts the connections it is offered."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import (
    accept_in_threads,
    free_port,
    ngxws,
    read_at_least,
    read_head,
    read_until_closed,
    wait_for,
)


class CountingBackend:
    """Accepts connections, records each request (head and Content-Length
    body), answers 200, or 101 to an upgrade and then echoes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.requests: list[tuple[bytes, bytes]] = []
        accept_in_threads(self.sock, self._serve, self._count)

    def _count(self, conn: socket.socket) -> None:
        self.accepted += 1

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=10)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            rest = read_at_least(conn, rest, length)
            body, rest = rest[:length], rest[length:]
            self.requests.append((head, body))
            if b"\r\nupgrade:" in head.lower():
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n" + rest)
                conn.settimeout(5)
                try:
                    while chunk := conn.recv(65536):
                        conn.sendall(chunk)
                except OSError:
                    pass
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


@contextmanager
def proxy(tmp_path: Path) -> Iterator[tuple[int, CountingBackend]]:
    backend = CountingBackend()
    port = free_port()
    conf = f"""
events {{ }}
http {{
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://127.0.0.1:{backend.port};
        }}
    }}
}}
"""
    try:
        with ngxws(conf, tmp_path, port):
            yield port, backend
    finally:
        backend.close()


def test_a_late_malformed_chunk_fails_the_request_before_any_upstream(tmp_path: Path) -> None:
    with proxy(tmp_path) as (port, backend), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.3)
        assert backend.accepted == 0  # the body is not complete yet
        s.sendall(b"zz\r\n")
        answer = read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 400 ")
        time.sleep(0.2)
        assert backend.accepted == 0


def test_a_body_in_pieces_goes_upstream_once_complete(tmp_path: Path) -> None:
    with proxy(tmp_path) as (port, backend), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello")
        time.sleep(0.3)
        assert backend.accepted == 0
        s.sendall(b"world")
        answer = read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")
        assert [body for _, body in backend.requests] == [b"helloworld"]


def test_an_upgrade_body_is_a_body_and_the_rest_is_tunnelled(tmp_path: Path) -> None:
    with proxy(tmp_path) as (port, backend), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  b"Content-Length: 5\r\n\r\nhel")
        time.sleep(0.3)
        assert backend.accepted == 0
        s.sendall(b"lotunnel")
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 101 ")
        s.settimeout(5)
        rest = read_at_least(s, rest, len(b"tunnel"))
        assert rest == b"tunnel"  # echoed through the tunnel
        assert wait_for(lambda: len(backend.requests) == 1)
        head_sent, body = backend.requests[0]
        assert body == b"hello" and b"Content-Length: 5" in head_sent
