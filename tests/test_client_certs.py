"""Client certificates (``ssl_verify_client``) and ``ssl_reject_handshake``.

What nginx itself is compared on lives in ``differential/cases_mtls.py``;
here: the pure parts (the ClientHello reader, the 495/496 pages, the
config rules with nginx's messages) and, end to end, what the differential
oracle cannot see: the ws log's ``$ssl_*`` variables, the alert a refused
handshake gets, a wss:// websocket with a client certificate.
Certificates come from ``trustme``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from harness import free_port, ngxws, wait_for, ws_backend
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ngxws.client_certs import native
from ngxws.config.loader import ConfigError, load_config
from ngxws.http.responses import error_response
from ngxws.tls import HELLO_INCOMPLETE, client_hello_server_name

WS = """
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
"""


class Pki:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("example.test", "refused.test")
        self.server_cert, self.server_key = folder / "server.crt", folder / "server.key"
        server.private_key_pem.write_to_path(str(self.server_key))
        self.server_cert.write_bytes(b"".join(p.bytes() for p in server.cert_chain_pems))
        self.client = self.ca.issue_cert(
            "client@example.test", common_name="client one", organization_name="Acme, Ltd"
        )
        self.stranger = trustme.CA().issue_cert("stranger@example.test")

    def client_context(self, leaf: trustme.LeafCert | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if leaf is not None:
            leaf.configure_cert(ctx)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("mtls"))


# -- pure parts ------------------------------------------------------------------


def _client_hello(server_name: str | None) -> bytes:
    """The bytes Python's (OpenSSL's) client sends first."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = server_name is not None
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_client_hello_reader() -> None:
    hello = _client_hello("Known.Test")
    assert client_hello_server_name(hello) == "Known.Test"
    for cut in (1, 5, 40, len(hello) - 1):
        assert client_hello_server_name(hello[:cut]) == HELLO_INCOMPLETE
    assert client_hello_server_name(_client_hello(None)) is None
    assert client_hello_server_name(b"GET / HTTP/1.1\r\n\r\n") is None
    # the same hello split over two records
    body = hello[5:]
    two = b"\x16\x03\x01" + (40).to_bytes(2, "big") + body[:40]
    two += b"\x16\x03\x01" + (len(body) - 40).to_bytes(2, "big") + body[40:]
    assert client_hello_server_name(two) == "Known.Test"


@pytest.mark.parametrize(
    ("status", "cause"),
    [(495, "The SSL certificate error"), (496, "No required SSL certificate was sent")],
)
def test_certificate_errors_are_nginx_400_pages(status: int, cause: str) -> None:
    # ngx_http_error_495_page / _496_page, with ngxws where nginx names itself
    head, _, body = error_response(status).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in head
    assert body == (
        f"<html>\r\n<head><title>400 {cause}</title></head>\r\n<body>\r\n"
        f"<center><h1>400 Bad Request</h1></center>\r\n<center>{cause}</center>\r\n"
        "<hr><center>ngxws</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def test_native_openssl_is_the_ssl_modules() -> None:
    n = native()
    assert n.SSL_get_verify_result is not None and n.head == object.__basicsize__


def _conf(tmp_path: Path, server: str) -> str:
    path = tmp_path / "nginx.conf"
    path.write_text(f"events {{}}\nhttp {{\n{server}\n}}\n")
    return str(path)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            "server { listen 8443 ssl; ssl_certificate C; ssl_certificate_key K; ssl_verify_client on; }",
            "no ssl_client_certificate for ssl_verify_client",
        ),
        (
            "server { listen 8443 ssl; ssl_certificate C; ssl_certificate_key K;\n"
            " ssl_verify_client sometimes; }",
            'invalid value "sometimes" in {conf}:4',
        ),
        (
            "server { listen 8443 ssl; ssl_verify_depth x; ssl_reject_handshake on; }",
            '"ssl_verify_depth" directive invalid value in {conf}:3',
        ),
        (
            "server { listen 8443 ssl default_server; ssl_reject_handshake on; }\n"
            "server { listen 8443 ssl; server_name a.test; }",
            'no "ssl_certificate" is defined for the "listen ... ssl" directive in {conf}:4',
        ),
        (
            "server { listen 8443 ssl; }",
            'no "ssl_certificate" is defined for the "listen ... ssl" directive in {conf}:3',
        ),
    ],
)
def test_config_errors_read_like_nginx(tmp_path: Path, pki: Pki, server: str, message: str) -> None:
    server = server.replace(" C;", f" {pki.server_cert};").replace(" K;", f" {pki.server_key};")
    conf = _conf(tmp_path, server)
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert str(err.value) == message.format(conf=conf)


def test_directives_are_read_per_server(tmp_path: Path, pki: Pki) -> None:
    conf = _conf(tmp_path, f"""
ssl_verify_depth 3;
ssl_client_certificate {pki.ca_file};
server {{ listen 8443 ssl default_server; ssl_reject_handshake on; }}
server {{ listen 8443 ssl; server_name a.test; ssl_certificate {pki.server_cert};
         ssl_certificate_key {pki.server_key}; ssl_verify_client OPTIONAL; ssl_crl crl.pem;
         ssl_trusted_certificate {pki.ca_file}; }}
""")
    config = load_config(conf)
    refusing, named = config.servers
    assert refusing.ssl_reject_handshake and refusing.ssl_certificate is None
    assert named.ssl_verify_client == "optional" and named.ssl_verify_depth == 3
    assert named.ssl_client_certificate == str(pki.ca_file)
    assert named.ssl_crl == str(tmp_path / "crl.pem")
    assert not any(i.name.startswith("ssl_") for i in config.ignored)


# -- end to end ------------------------------------------------------------------


def _get(port: int, ctx: ssl.SSLContext, host: str = "example.test") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET /who HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def _echo(port: int, ctx: ssl.SSLContext) -> str:
    async with connect(
        "wss://example.test/ws", host="127.0.0.1", port=port, ssl=ctx, compression=None
    ) as ws:
        await ws.send("hi")
        reply = await ws.recv()
        assert isinstance(reply, str)
        return reply


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_mtls_websocket_and_ws_log_variables(tmp_path: Path, pki: Pki) -> None:
    port = free_port()
    log = tmp_path / "ws.log"
    with ws_backend() as backend:
        conf = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.test;
        ssl_certificate {pki.server_cert};
        ssl_certificate_key {pki.server_key};
        ssl_verify_client optional;
        ssl_client_certificate {pki.ca_file};
        ws_log {log};
        ws_log_format open "open $ssl_client_verify|$ssl_client_s_dn|$ssl_protocol|$ssl_server_name";
        ws_log_format close "close";
        location /ws {{ proxy_pass http://127.0.0.1:{backend}; {WS} }}
        location = /who {{ return 200 "$ssl_client_verify $ssl_client_serial"; }}
    }}
}}
"""
        with ngxws(conf, tmp_path, port):
            assert _run(_echo(port, pki.client_context(pki.client))) == "hi"
            assert _run(_echo(port, pki.client_context(None))) == "hi"
            with pytest.raises(InvalidStatus) as refused:
                _run(_echo(port, pki.client_context(pki.stranger)))
            assert refused.value.response.status_code == 400
            leaf = x509.load_pem_x509_certificate(pki.client.cert_chain_pems[0].bytes())
            serial = f"{leaf.serial_number:X}"
            serial = "0" * (len(serial) % 2) + serial  # i2a_ASN1_INTEGER: whole bytes
            assert _get(port, pki.client_context(pki.client)) == (200, f"SUCCESS {serial}".encode())
            assert wait_for(lambda: log.exists() and log.read_text().count("close") == 2)
    lines = [line for line in log.read_text().splitlines() if line.startswith("open")]
    assert len(lines) == 2
    assert re.fullmatch(
        r"open SUCCESS\|CN=client one,OU=Testing cert #[\w-]+,O=Acme\\, Ltd\|TLSv1.3\|example.test",
        lines[0],
    ), lines[0]
    assert lines[1] == "open NONE||TLSv1.3|example.test"


def test_reject_handshake_sends_unrecognized_name(tmp_path: Path, pki: Pki) -> None:
    port = free_port()
    conf = f"""
events {{}}
http {{
    server {{ listen 127.0.0.1:{port} ssl default_server; ssl_reject_handshake on; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name example.test;
        ssl_certificate {pki.server_cert};
        ssl_certificate_key {pki.server_key};
        location / {{ return 200 "$ssl_server_name"; }}
    }}
}}
"""
    with ngxws(conf, tmp_path, port):
        assert _get(port, pki.client_context(None)) == (200, b"example.test")
        for name in ("refused.test", None):
            ctx = pki.client_context(None)
            ctx.check_hostname = False
            with pytest.raises(ssl.SSLError) as err:
                _get(port, ctx, host=name)  # type: ignore[arg-type]
            assert err.value.reason == "TLSV1_UNRECOGNIZED_NAME"
