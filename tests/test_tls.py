"""TLS: ``listen ... ssl`` with SNI, and ``proxy_pass https://`` with ``proxy_ssl_*``.

The pure parts (protocol ranges, the upstream name rules, caching) are
checked as tables; the rest end to end: a real ngxws process, real
``websockets`` clients over wss://, real ``websockets`` backends speaking
TLS.  Certificates come from ``trustme``, made once per module.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from harness import free_port, ngxws, parse_stats, wait_for, ws_backend
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ngxws.config.loader import load_config
from ngxws.config.model import Listen, ProxyPass, ProxySettings, Server
from ngxws.listeners import accepting_factory, plain_http_response, tls_context, tls_contexts
from ngxws.tls import (
    TLSError,
    upstream_server_hostname,
    upstream_tls,
    version_bounds,
)

# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------


@dataclass
class Pems:
    """Files of one trustme CA and the leaf certificates it issued."""

    ca: trustme.CA
    ca_file: Path
    leaves: dict[str, tuple[Path, Path]]  # label -> (cert chain, key)

    def client_context(self, **versions: ssl.TLSVersion) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        for attr, value in versions.items():
            setattr(ctx, attr, value)
        return ctx

    def server_context(self, label: str, names: list[str] | None = None) -> ssl.SSLContext:
        """A backend's context; SNI names it is asked for are appended to ``names``."""
        cert, key = self.leaves[label]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        if names is not None:

            def record(_obj: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
                names.append(name or "")

            ctx.sni_callback = record
        return ctx


def make_pems(folder: Path, leaves: dict[str, list[str]]) -> Pems:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    out: dict[str, tuple[Path, Path]] = {}
    for label, names in leaves.items():
        leaf = ca.issue_cert(*names)
        cert, key = folder / f"{label}.crt", folder / f"{label}.key"
        leaf.private_key_pem.write_to_path(str(key))
        cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
        out[label] = (cert, key)
    return Pems(ca, ca_file, out)


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Pems:
    return make_pems(
        tmp_path_factory.mktemp("pki"),
        {
            "chat": ["chat.example.test", "localhost", "127.0.0.1"],
            "admin": ["admin.example.test", "*.admin.example.test"],
            "backend": ["secure.backend"],
            "other": ["other.backend"],
        },
    )


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Pems:
    """A second CA nobody trusts."""
    return make_pems(tmp_path_factory.mktemp("stranger"), {"backend": ["secure.backend"]})


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def echo_over(port: int, host: str, ctx: ssl.SSLContext, path: str = "/ws") -> str:
    """One wss:// echo through ngxws at 127.0.0.1:port, asking for ``host`` (SNI and Host)."""
    async with connect(
        f"wss://{host}{path}", host="127.0.0.1", port=port, ssl=ctx, compression=None
    ) as ws:
        await ws.send("over tls")
        reply = await ws.recv()
        assert isinstance(reply, str)
        return reply


def https_get(
    port: int, host: str, path: str, ctx: ssl.SSLContext
) -> tuple[int, bytes, dict[str, Any]]:
    """GET over TLS with ``host`` as SNI and Host; returns status, body and the peer cert."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
            tls.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, cert


def first_pem(path: Path) -> str:
    end = "-----END CERTIFICATE-----"
    return path.read_text().split(end)[0] + end + "\n"


def san(cert: dict[str, Any]) -> list[str]:
    return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


WS = """
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
"""


# --------------------------------------------------------------------------
# pure parts
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocols", "bounds"),
    [
        (("TLSv1.2", "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)),
        (("TLSv1.3",), (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)),
        (("TLSv1.3", "TLSv1"), (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_3)),  # a gap widens
        (("SSLv3", "TLSv1.2"), (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)),
        (("SSLv2", "SSLv3"), None),
    ],
)
def test_ssl_protocols_become_version_bounds(
    protocols: tuple[str, ...], bounds: tuple[ssl.TLSVersion, ssl.TLSVersion] | None
) -> None:
    assert version_bounds(protocols) == bounds


def _pp(url: str, host: str, port: int = 443, upstream: str | None = None) -> ProxyPass:
    return ProxyPass(url, url.split(":", 1)[0], host, port, None, upstream=upstream)


@pytest.mark.parametrize(
    ("pp", "settings", "name"),
    [
        # nginx: no SNI and nothing checked by default
        (_pp("https://api.test", "api.test"), ProxySettings(), ""),
        (_pp("https://api.test", "api.test"), ProxySettings(ssl_server_name=True), "api.test"),
        (_pp("https://pool", "pool", upstream="pool"), ProxySettings(ssl_server_name=True), "pool"),
        (
            _pp("https://pool", "pool", upstream="pool"),
            ProxySettings(ssl_server_name=True, ssl_name="api.test"),
            "api.test",
        ),
        # verification checks proxy_ssl_name even without SNI (Python sends it: see tls.py)
        (_pp("https://api.test", "api.test"), ProxySettings(ssl_verify=True), "api.test"),
        (_pp("https://[::1]:8443", "::1", 8443), ProxySettings(ssl_verify=True), "::1"),
        (_pp("https://$b", "$b"), ProxySettings(ssl_verify=True), ""),
    ],
)
def test_upstream_server_hostname(pp: ProxyPass, settings: ProxySettings, name: str) -> None:
    assert upstream_server_hostname(pp, settings) == name


def test_upstream_contexts_are_cached_per_settings(pems: Pems) -> None:
    settings = ProxySettings(ssl_verify=True, ssl_trusted_certificate=str(pems.ca_file))
    a, b = _pp("https://a.test", "a.test"), _pp("https://b.test", "b.test")
    ta, tb = upstream_tls(a, settings), upstream_tls(b, settings)
    assert ta is not None and tb is not None
    assert ta is upstream_tls(a, settings)
    assert ta.context is tb.context  # one context per ProxySettings
    assert (ta.server_hostname, tb.server_hostname) == ("a.test", "b.test")
    assert ta.context.verify_mode == ssl.CERT_REQUIRED and ta.context.check_hostname
    assert upstream_tls(_pp("http://a.test", "a.test", 80), settings) is None
    plain = upstream_tls(a, ProxySettings())
    assert plain is not None and plain.context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("cert", "key", "ciphers", "message"),
    [
        ("chat", "chat", "NOPE", 'SSL_CTX_set_cipher_list("NOPE") failed (SSL: no cipher match)'),
        (
            "chat",
            "admin",
            None,
            'SSL_CTX_use_PrivateKey("{key}") failed (SSL: key values mismatch)',
        ),
        ("junk", "chat", None, 'cannot load certificate "{cert}": PEM_read_bio_X509_AUX() failed'),
        (
            "chat",
            "junk",
            None,
            'cannot load certificate key "{key}": PEM_read_bio_PrivateKey() failed',
        ),
    ],
)
def test_tls_material_errors_read_like_nginx(
    pems: Pems, tmp_path: Path, cert: str, key: str, ciphers: str | None, message: str
) -> None:
    """The messages of ``nginx -t`` for the same mistakes (OpenSSL's error
    codes aside, which Python does not expose)."""
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    cert_file = str(junk if cert == "junk" else pems.leaves[cert][0])
    key_file = str(junk if key == "junk" else pems.leaves[key][1])
    listen = (Listen("127.0.0.1", 443, ssl=True),)
    server = Server(
        listen,
        ("x",),
        (),
        ssl_certificate=cert_file,
        ssl_certificate_key=key_file,
        ssl_ciphers=ciphers,
    )
    with pytest.raises(TLSError) as err:
        tls_context([server])
    assert str(err.value).startswith(message.format(cert=cert_file, key=key_file))


# --------------------------------------------------------------------------
# listen ... ssl
# --------------------------------------------------------------------------


def test_wss_end_to_end_and_stat_page_over_https(tmp_path: Path, pems: Pems) -> None:
    port = free_port()
    cert, key = pems.leaves["chat"]
    with ws_backend() as backend:
        conf = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port} ssl http2;
        server_name chat.example.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /ws {{ proxy_pass http://127.0.0.1:{backend}; {WS} }}
        location = /status {{ ws_stat; }}
        location = /scheme {{ return 200 "$scheme $server_port"; }}
    }}
}}
"""
        with ngxws(conf, tmp_path, port):
            ctx = pems.client_context()
            assert run(echo_over(port, "chat.example.test", ctx)) == "over tls"

            def closed() -> bool:
                return (
                    parse_stats(https_get(port, "chat.example.test", "/status", ctx)[1].decode())[
                        "active"
                    ]
                    == 0
                )

            assert wait_for(closed)
            status, body, _ = https_get(port, "chat.example.test", "/status", ctx)
            s = parse_stats(body.decode())
            assert status == 200 and s["client_frames"] == 2 and s["upstream_frames"] == 2
            status, body, _ = https_get(port, "chat.example.test", "/scheme", ctx)
            assert (status, body) == (200, f"https {port}".encode())


def test_alpn_offers_only_http11(tmp_path: Path, pems: Pems) -> None:
    port = free_port()
    cert, key = pems.leaves["chat"]
    conf = f"""
events {{}}
http {{ server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {cert}; ssl_certificate_key {key};
                 location / {{ return 200 "ok"; }} }} }}
"""
    with ngxws(conf, tmp_path, port):
        ctx = pems.client_context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == "http/1.1"


def test_sni_picks_the_certificate_and_host_the_server(tmp_path: Path, pems: Pems) -> None:
    """Two names on one port, each with its own certificate; an unknown name
    (or none) gets the default server's, as nginx does."""
    port = free_port()
    chat, admin = pems.leaves["chat"], pems.leaves["admin"]
    with ws_backend() as backend:
        conf = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name chat.example.test;
        ssl_certificate {chat[0]};
        ssl_certificate_key {chat[1]};
        location /ws {{ proxy_pass http://127.0.0.1:{backend}; {WS} }}
        location / {{ return 200 "chat"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        server_name admin.example.test *.admin.example.test;
        ssl_certificate {admin[0]};
        ssl_certificate_key {admin[1]};
        location / {{ return 200 "admin"; }}
    }}
}}
"""
        with ngxws(conf, tmp_path, port):
            ctx = pems.client_context()
            status, body, cert = https_get(port, "chat.example.test", "/", ctx)
            assert (status, body, san(cert)) == (200, b"chat", ["chat.example.test", "localhost"])
            status, body, cert = https_get(port, "admin.example.test", "/", ctx)
            assert (status, body) == (200, b"admin") and san(cert)[0] == "admin.example.test"
            _, body, cert = https_get(port, "eu.admin.example.test", "/", ctx)  # wildcard name
            assert body == b"admin" and san(cert)[0] == "admin.example.test"
            assert run(echo_over(port, "chat.example.test", ctx)) == "over tls"
            # no SNI, or a name nobody claims: the default server's certificate
            loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            loose.check_hostname, loose.verify_mode = False, ssl.CERT_NONE
            for name in ("127.0.0.1", "nobody.test"):
                with socket.create_connection(("127.0.0.1", port)) as raw:
                    with loose.wrap_socket(raw, server_hostname=name) as tls:
                        der = tls.getpeercert(binary_form=True)
                assert der == ssl.PEM_cert_to_DER_cert(first_pem(admin[0]))


def test_ssl_protocols_tls13_only_refuses_a_tls12_client(tmp_path: Path, pems: Pems) -> None:
    port = free_port()
    cert, key = pems.leaves["chat"]
    conf = f"""
events {{}}
http {{
    ssl_protocols TLSv1.3;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_ciphers HIGH:!aNULL:!MD5;
        location / {{ return 200 "tls13"; }}
    }}
}}
"""
    with ngxws(conf, tmp_path, port):
        old = pems.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        with pytest.raises(ssl.SSLError):
            https_get(port, "localhost", "/", old)
        new = pems.client_context()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with new.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() == "TLSv1.3"


# -- plain HTTP on a TLS port ---------------------------------------------------


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def _body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def test_tls_acceptor_sorts_tls_from_plain_http(pems: Pems) -> None:
    """In-process, on uvloop: TLS clients reach the protocol (SNI context
    included), plain HTTP gets nginx's 497 page, garbage a bare 400, a
    silent client is dropped after the timeout."""
    import uvloop

    cert, key = pems.leaves["chat"]
    server = Server(
        (Listen("127.0.0.1", 0, ssl=True),),
        ("chat.example.test",),
        (),
        ssl_certificate=str(cert),
        ssl_certificate_key=str(key),
    )
    ctx = tls_context([server])
    assert ctx is not None

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(accepting_factory(Echo, ctx, 0.5), "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        client = pems.client_context()

        async def tls_echo(n: int) -> None:
            r, w = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client, server_hostname="chat.example.test"
            )
            w.write(b"x" * n + b"\n")
            assert await r.readline() == b"x" * n + b"\n"
            w.close()

        await asyncio.gather(*(tls_echo(n) for n in range(1, 200)))
        plain, garbage, silent = await asyncio.gather(
            asyncio.to_thread(_raw_exchange, port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            asyncio.to_thread(_raw_exchange, port, b"GARBAGE\r\n\r\n"),
            asyncio.to_thread(_raw_exchange, port, b""),
        )
        assert plain.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in plain
        assert _body(plain) == _body(plain_http_response())
        assert b"<title>400 The plain HTTP request was sent to HTTPS port</title>" in plain
        assert garbage.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"HTTPS port" not in garbage
        assert silent == b""
        srv.close()

    uvloop.run(asyncio.wait_for(scenario(), 20))


def _worker_uses_acceptor() -> bool:
    import inspect

    import ngxws.worker

    return "accepting_factory(" in inspect.getsource(ngxws.worker)


@pytest.mark.skipif(
    not _worker_uses_acceptor(),
    reason="worker.serve still passes ssl=ctx to create_server (see accepting_factory)",
)
def test_plain_http_on_tls_port_is_400_like_nginx(tmp_path: Path, pems: Pems) -> None:
    port = free_port()
    cert, key = pems.leaves["chat"]
    conf = f"""
events {{}}
http {{ server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};
                 location / {{ return 200 "tls"; }} }} }}
"""
    with ngxws(conf, tmp_path, port):
        reply = _raw_exchange(port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert _body(reply) == _body(plain_http_response())
        assert https_get(port, "localhost", "/", pems.client_context())[:2] == (200, b"tls")


def test_tls_contexts_built_once_for_the_whole_config(tmp_path: Path, pems: Pems) -> None:
    """What the master builds before forking: one context per TLS socket;
    a key that does not match its certificate fails like nginx -t does."""
    chat, admin = pems.leaves["chat"], pems.leaves["admin"]
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
events {{}}
http {{
    server {{ listen 127.0.0.1:8443 ssl; ssl_certificate {chat[0]}; ssl_certificate_key {chat[1]}; }}
    server {{ listen 127.0.0.1:8444 ssl; ssl_certificate {admin[0]}; ssl_certificate_key {admin[1]}; }}
    server {{ listen 127.0.0.1:8080; location / {{ proxy_pass https://127.0.0.1:9; }} }}
}}
""")
    contexts = tls_contexts(load_config(str(conf)))
    assert sorted(port for (_, port, _) in contexts) == [8443, 8444]
    conf.write_text(f"""
events {{}}
http {{ server {{ listen 127.0.0.1:8443 ssl; ssl_certificate {chat[0]}; ssl_certificate_key {admin[1]}; }} }}
""")
    with pytest.raises(TLSError, match="key values mismatch"):
        tls_contexts(load_config(str(conf)))


def test_ssl_on_style(tmp_path: Path, pems: Pems) -> None:
    """nginx < 1.25 still takes the obsolete ``ssl on;`` (with a warning)."""
    port = free_port()
    cert, key = pems.leaves["chat"]
    conf = f"""
events {{}}
http {{ server {{ listen 127.0.0.1:{port}; ssl on; ssl_certificate {cert}; ssl_certificate_key {key};
                 location / {{ return 200 "old style"; }} }} }}
"""
    with ngxws(conf, tmp_path, port):
        status, body, _ = https_get(port, "localhost", "/", pems.client_context())
        assert (status, body) == (200, b"old style")


# --------------------------------------------------------------------------
# proxy_pass https://
# --------------------------------------------------------------------------


def upstream_conf(
    port: int, backend: int, proxy_lines: str, pass_to: str = "https://secure.backend"
) -> str:
    return f"""
events {{}}
http {{
    upstream secure.backend {{ server 127.0.0.1:{backend}; }}
    upstream other.backend {{ server 127.0.0.1:{backend}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {pass_to};
            {WS}
            {proxy_lines}
        }}
        location = /websocket_status {{ ws_stat; }}
    }}
}}
"""


@pytest.fixture
def tls_backend(pems: Pems) -> Iterator[tuple[int, list[str]]]:
    """A ``websockets`` echo backend speaking TLS as ``secure.backend``; yields
    its port and the SNI names clients asked it for."""
    names: list[str] = []
    with ws_backend(ssl=pems.server_context("backend", names)) as port:
        yield port, names


def ws_echo(port: int) -> str:
    async def go() -> str:
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            await ws.send("via https upstream")
            reply = await ws.recv()
            assert isinstance(reply, str)
            return reply

    result = run(go())
    assert isinstance(result, str)
    return result


def ws_status(port: int) -> int:
    async def go() -> int:
        try:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    result = run(go())
    assert isinstance(result, int)
    return result


def test_https_upstream_without_verification_is_nginx_default(
    tmp_path: Path, tls_backend: tuple[int, list[str]]
) -> None:
    backend, names = tls_backend
    port = free_port()
    with ngxws(upstream_conf(port, backend, ""), tmp_path, port):
        assert ws_echo(port) == "via https upstream"
    assert names == [""]  # proxy_ssl_server_name off: no SNI


def test_https_upstream_verified_with_sni(
    tmp_path: Path, pems: Pems, tls_backend: tuple[int, list[str]]
) -> None:
    backend, names = tls_backend
    port = free_port()
    lines = f"""
            proxy_ssl_server_name on;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {pems.ca_file};
"""
    with ngxws(upstream_conf(port, backend, lines), tmp_path, port):
        assert ws_echo(port) == "via https upstream"
    assert names == ["secure.backend"]


def test_https_upstream_proxy_ssl_name(
    tmp_path: Path, pems: Pems, tls_backend: tuple[int, list[str]]
) -> None:
    """proxy_ssl_name names the certificate to expect (and SNI) when the
    proxy_pass host is not it."""
    backend, names = tls_backend
    port = free_port()
    lines = f"""
            proxy_ssl_server_name on;
            proxy_ssl_name secure.backend;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {pems.ca_file};
"""
    with ngxws(upstream_conf(port, backend, lines, f"https://127.0.0.1:{backend}"), tmp_path, port):
        assert ws_echo(port) == "via https upstream"
    assert names == ["secure.backend"]


@pytest.mark.parametrize(
    ("pass_to", "why"),
    [
        ("https://secure.backend", "untrusted CA"),
        ("https://other.backend", "wrong name"),
    ],
)
def test_https_upstream_verify_failure_is_502(
    tmp_path: Path, pems: Pems, stranger: Pems, pass_to: str, why: str
) -> None:
    names: list[str] = []
    issuer = stranger if why == "untrusted CA" else pems
    with ws_backend(ssl=issuer.server_context("backend", names)) as backend:
        port = free_port()
        lines = f"""
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {pems.ca_file};
"""
        with ngxws(upstream_conf(port, backend, lines, pass_to), tmp_path, port) as px:
            assert ws_status(port) == 502
            assert parse_stats(px.stats())["active"] == 0
            _, _, err = px.stop()
    assert "failed" in err
