"""Reload and graceful stop lose no connection: what a worker accepted, it serves.

On ``nginx -s reload`` (and ``quit``) nginx's workers close their listening
sockets and serve what they already accepted until it ends (a request
waiting for its head or a TLS handshake included: the worker exits only
once no timer of such a connection is left); only connections between
keep-alive requests are closed at once (ngx_close_idle_connections()).
These tests open connections at the moment of the drain, on real worker
processes, and check each one is answered -- by the old config or the new
one, never with a bare close.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme
from harness import Ngxws, free_port, live_children, owners, start_workers, wait_for, wait_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DAEMON_OFF = "daemon off;\n"  # nginx in the foreground (ngxws never forks away)


def conf(port: int, tag: str, tls: tuple[Path, Path] | None = None, params: str = "", workers: int = 2) -> str:
    ssl_lines = f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};" if tls else ""
    return f"""
worker_processes {workers};
pid ngxws.pid;
error_log error.log notice;
events {{ worker_connections 1024; }}
http {{
    server {{
        listen 127.0.0.1:{port} {params};
        {ssl_lines}
        location / {{ return 200 "{tag}"; }}
    }}
}}
"""


class NginxProc(Ngxws):
    """Debian's nginx on the same conf (``daemon off``), the oracle; stopped as ngxws is."""

    def __init__(self, prefix: Path, port: int) -> None:  # (not super().__init__: that starts ngxws)
        self.conf, self.prefix, self.port = prefix / "nginx.conf", prefix, port
        argv = [NGINX, "-p", f"{prefix}/", "-c", str(self.conf), "-e", str(prefix / "error.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_port(port)


def serve(kind: str, tmp_path: Path, text: str, port: int, workers: int = 2) -> Ngxws:
    """ngxws, or nginx on the same conf, with its workers up."""
    if kind == "ngxws":
        return start_workers(tmp_path, text + DAEMON_OFF)[0]
    (tmp_path / "nginx.conf").write_text(text + DAEMON_OFF)
    server = NginxProc(tmp_path, port)
    assert wait_for(lambda: len(live_children(server.proc.pid)) == workers)
    return server


def slow_tls_exchange(raw: socket.socket, ctx: ssl.SSLContext, request: bytes) -> bytes:
    """``request`` over TLS on ``raw``, the handshake paused after the
    ClientHello (the server then holds a connection in its handshake, past
    the protocol that read the first bytes); the whole answer."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    paused = False
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        raw.sendall(outgoing.read())
        if not paused:
            paused = True
            time.sleep(0.3)  # several of a draining worker's polls
        data = raw.recv(65536)
        if not data:
            return b""
        incoming.write(data)
    tls.write(request)
    raw.sendall(outgoing.read())
    answer = b""
    while True:
        try:
            chunk = tls.read(65536)
            if not chunk:  # the server's close_notify
                return answer
            answer += chunk
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return answer
        data = raw.recv(65536)
        if not data:
            return answer
        incoming.write(data)


def answer_of(data: bytes) -> str:
    """The body of a whole 200 response, or what came instead."""
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return f"not a 200: {data[:80]!r}"
    return body.decode()


async def get_tag(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return answer_of(await asyncio.wait_for(reader.read(), 10))
    except OSError as exc:
        return f"{exc!r}"
    finally:
        writer.close()


def test_connections_opened_while_workers_are_replaced_are_all_answered(tmp_path: Path) -> None:
    # An old worker may have accepted a connection in the very loop turn its
    # drain began: it must still answer it (before, it could exit at once).
    port = free_port()
    server, _ = start_workers(tmp_path, conf(port, "A"))
    try:

        async def scenario() -> list[str]:
            answers: list[str] = []
            done = asyncio.Event()

            async def client() -> None:
                while not done.is_set():
                    answers.append(await get_tag(port))

            clients = [asyncio.ensure_future(client()) for _ in range(2)]
            for tag in "BABABABABABA":
                (tmp_path / "nginx.conf").write_text(conf(port, tag))
                os.kill(server.proc.pid, signal.SIGHUP)
                deadline = time.monotonic() + 10
                while answers[-4:] != [tag] * 4:  # the new config serves
                    assert time.monotonic() < deadline, answers[-4:]
                    await asyncio.sleep(0.02)
            done.set()
            await asyncio.gather(*clients)
            return answers

        answers = asyncio.run(asyncio.wait_for(scenario(), 60))
        wrong = [a for a in answers if a not in ("A", "B")]
        assert not wrong, f"{len(wrong)} of {len(answers)} connections not answered: {wrong[:3]}"
        assert len(answers) > 100
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["ngxws", "nginx"])
@pytest.mark.parametrize("params", ["ssl", "proxy_protocol", "proxy_protocol ssl"])
def test_a_connection_still_in_its_preface_or_handshake_is_served_by_the_old_worker(
    tmp_path: Path, params: str, kind: str
) -> None:
    # Accepted before the reload, nothing read yet: the old worker waits for
    # it (it would have exited at once, closing it) and serves it.
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "leaf.crt", tmp_path / "leaf.key"
    cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    port = free_port()
    server = serve(kind, tmp_path, conf(port, "A", (cert, key), params), port)
    try:
        old = live_children(server.proc.pid)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        mine = raw.getsockname()[1]
        assert wait_for(lambda: mine in owners(port, old))  # accepted by a worker
        holder = owners(port, old)[mine]
        (tmp_path / "nginx.conf").write_text(conf(port, "B", (cert, key), params) + DAEMON_OFF)
        os.kill(server.proc.pid, signal.SIGHUP)
        log = tmp_path / "error.log"
        drain = re.compile(rf"\[notice\] {holder}#\d+: gracefully shutting down")
        assert wait_for(lambda: log.exists() and drain.search(log.read_text()) is not None, 10)
        if "proxy_protocol" in params:
            raw.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 80\r\n")
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        with raw:
            if "ssl" in params:
                data = slow_tls_exchange(raw, client_ctx, request)
            else:
                raw.sendall(request)
                data = b""
                while chunk := raw.recv(65536):
                    data += chunk
        assert answer_of(data) == "A"
        assert wait_for(lambda: holder not in live_children(server.proc.pid), 10)
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["ngxws", "nginx"])
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT], ids=["reload", "quit"])
def test_a_keep_alive_connection_goes_at_once_a_fresh_one_is_still_served(
    tmp_path: Path, sig: int, kind: str
) -> None:
    port = free_port()
    server = serve(kind, tmp_path, conf(port, "A", workers=1), port, workers=1)
    try:
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        kept = socket.create_connection(("127.0.0.1", port), timeout=5)
        kept.sendall(request)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")  # answered; now between requests
        fresh = socket.create_connection(("127.0.0.1", port), timeout=5)
        [worker] = live_children(server.proc.pid)
        assert wait_for(lambda: fresh.getsockname()[1] in owners(port, {worker}))
        (tmp_path / "nginx.conf").write_text(conf(port, "B", workers=1) + DAEMON_OFF)
        os.kill(server.proc.pid, sig)
        assert kept.recv(65536) == b""  # closed at once, as nginx's c->idle ones
        # ... while the one accepted before the signal still gets its first request served
        fresh.sendall(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        data = b""
        while chunk := fresh.recv(65536):
            data += chunk
        assert answer_of(data) == "A"
        kept.close()
        fresh.close()
    finally:
        server.stop()
