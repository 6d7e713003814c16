"""Issue 8 items 1, 5 (and 3 in part): what an upgrade request becomes, end to end.

- the leak: 1,024 ``Upgrade: websocket`` + ``Connection: close`` requests
  (nginx's docs recipe makes the upstream answer 101) are tunnels that end
  with their client: the worker's fds return to their baseline and the
  stats page still answers;
- a 101 to anything but websocket is answered 502 with both sides closed
  (ngxws deliberately differs from nginx: h2c smuggling); a 101 to a
  request that carried no Upgrade is no tunnel in nginx either: it is
  passed on as an ordinary answer, and nothing more reaches the backend;
- ``ws_max_connections`` and the gauge count established tunnels, not
  upgrades waiting for a silent upstream; a 101 that comes when the cap is
  full is refused with 1013 on both sides;
- a client leaving while its upgrade waits closes the upstream connection at once;
- bytes the client sends before the 101 reach the upstream as tunnel data.

The differential half (every header spelling against Debian's nginx) is
tests/differential/cases_upgrade.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import (
    accept_in_threads,
    free_port,
    live_children,
    mask_frame,
    ngxws,
    parse_stats,
    read_head,
    read_until_closed,
    run,
    switching_protocols,
    upgrade_request,
    wait_for,
    ws_backend,
    ws_conf,
)
from websockets.asyncio.client import connect

PROXY = """
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
"""


UNASKED_BODY = b"bytes after the switch"


class HeldBackend:
    """A raw upstream whose answer the test controls, recording each connection.

    ``mode``: ``"silent"`` never answers; ``"gate"`` answers a websocket 101
    once ``release`` is set; ``"h2c"`` at once answers a 101 to h2c;
    ``"ws"`` at once answers a websocket 101; ``"unasked"`` answers a 101
    to h2c and a few bytes, then shuts its sending side.  After any 101 every byte is
    recorded until the proxy closes the connection (``closed`` counts those).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.release = threading.Event()
        self.heads: list[bytes] = []
        self.after: list[bytes] = []  # per connection, what came after the head
        self.closed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = int(self.sock.getsockname()[1])
        accept_in_threads(self.sock, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=20)
            if not head:  # a probe, not the proxy
                return
            with self._lock:
                self.heads.append(head)
            if self.mode == "gate":
                self._wait_or_eof(conn, self.release)
            if self.mode == "h2c":
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
            elif self.mode == "unasked":
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + UNASKED_BODY)
                conn.shutdown(socket.SHUT_WR)
            elif self.mode in ("gate", "ws"):
                conn.sendall(switching_protocols(head))
            got = rest + read_until_closed(conn, timeout=20)
            with self._lock:
                self.after.append(got)
                self.closed += 1

    def _wait_or_eof(self, conn: socket.socket, event: threading.Event) -> None:
        while not event.wait(0.05) and not self._stop.is_set():
            pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@contextmanager
def held_backend(mode: str) -> Iterator[HeldBackend]:
    b = HeldBackend(mode)
    try:
        yield b
    finally:
        b.close()


def spelled(path: str, upgrade: str | None, connection: str | None, extra: str = "") -> bytes:
    lines = f"GET {path} HTTP/1.1\r\nHost: x\r\n"
    if upgrade is not None:
        lines += f"Upgrade: {upgrade}\r\n"
    if connection is not None:
        lines += f"Connection: {connection}\r\n"
    return (
        lines + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
    ).encode("latin-1")


def worker_pid(master: int) -> int:
    """The one worker of ``master`` (``worker_processes 1``), from /proc."""
    assert wait_for(lambda: len(live_children(master)) == 1)
    return next(iter(live_children(master)))


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- item 1: the leak ----------------------------------------------------------


def test_1024_connection_close_upgrades_release_every_fd(tmp_path: Path) -> None:
    """The issue's reproduction: each request is a tunnel that ends with its
    client (it used to be a 101 relayed as a response whose body never ends).

    (In these tests the proxy's port is picked once the backends listen, so
    it can never be a backend's.)"""
    log = tmp_path / "ws.log"
    server_extra = f'ws_log {log}; ws_log_format open "open"; ws_log_format close "close"; ws_log_format "f";'
    request = spelled("/", "websocket", "close")
    with ws_backend() as backend, ngxws(ws_conf(port := free_port(), backend, server_extra), tmp_path, port) as px:
        worker = worker_pid(px.proc.pid)
        assert px.get("/websocket_status")[0] == 200
        baseline = fds(worker)
        t0 = time.monotonic()
        for i in range(1024):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(request)
                got = s.recv(4096)
                assert got.startswith(b"HTTP/1.1 101 "), (i, got)
        elapsed = time.monotonic() - t0
        assert px.get("/websocket_status")[0] == 200
        assert wait_for(lambda: fds(worker) <= baseline, timeout=15), (fds(worker), baseline)
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        print(f"1024 Connection: close upgrades in {elapsed:.1f}s; worker fds {fds(worker)} (baseline {baseline})")
    lines = log.read_text().splitlines()
    assert lines.count("open") == 1024 and lines.count("close") == 1024  # logged like any tunnel


@pytest.mark.parametrize(
    "upgrade,connection",
    [("websocket", "close"), ("websocket", "keep-alive"), ("websocket", None), ("websocket, h2c", "Upgrade")],
)
def test_every_spelling_of_a_websocket_upgrade_is_a_counted_tunnel(
    tmp_path: Path, upgrade: str, connection: str | None
) -> None:
    with held_backend("ws") as backend, ngxws(ws_conf(port := free_port(), backend.port), tmp_path, port) as px:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(spelled("/", upgrade, connection))
            head, _ = read_head(c)
            assert head.startswith(b"HTTP/1.1 101 "), head
            assert parse_stats(px.stats())["active"] == 1
            frame = mask_frame(1, b"hello")
            c.sendall(frame)
            assert wait_for(lambda: parse_stats(px.stats())["client_frames"] == 1)
        assert wait_for(lambda: backend.closed == 1, timeout=15)  # the client left: the tunnel ended
        assert backend.after == [frame]
        assert parse_stats(px.stats())["active"] == 0


# --- item 1: a 101 to anything else is refused ---------------------------------------


H2C_CASES = [
    # (client's Upgrade, Connection, location): what nginx would tunnel
    ("h2c", "Upgrade, HTTP2-Settings", "/"),
    ("websocket, h2c", "Upgrade", "/"),  # the client offered both, the upstream chose h2c
    ("h2c", "Upgrade", "/forced/"),  # the upstream was told websocket: the client did not ask for it
]


@pytest.mark.parametrize("upgrade,connection,path", H2C_CASES)
def test_a_101_to_another_protocol_is_a_502_and_both_sides_close(
    tmp_path: Path, upgrade: str | None, connection: str | None, path: str
) -> None:
    """ngxws differs from nginx here on purpose: a tunnel to h2c lets the
    client reach the backend past deny/auth_basic rules (h2c smuggling)."""
    mode = "ws" if path == "/forced/" else "h2c"
    with held_backend(mode) as backend:
        locations = f"""
        location / {{ {PROXY} proxy_pass http://127.0.0.1:{backend.port}; }}
        location /forced/ {{ proxy_http_version 1.1; proxy_set_header Upgrade websocket;
            proxy_set_header Connection upgrade; proxy_pass http://127.0.0.1:{backend.port}; }}
        """
        port = free_port()  # after the backend's: never the same
        with ngxws(ws_conf(port, backend.port, locations=locations), tmp_path, port) as px:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(spelled(path, upgrade, connection, extra="HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"))
                head, _ = read_head(c)
                assert head.startswith(b"HTTP/1.1 502 "), head
                assert b"\r\nConnection: close" in head
                read_until_closed(c, timeout=5)  # returns: ngxws closed the client side
                try:
                    c.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # nothing reaches the backend
                except OSError:
                    pass
            assert wait_for(lambda: backend.closed == 1, timeout=15)
            assert backend.after == [b""]
            assert parse_stats(px.stats())["active"] == 0


def test_a_101_to_a_request_without_upgrade_is_passed_on_as_an_answer(tmp_path: Path) -> None:
    """nginx tunnels only when the request carried Upgrade; otherwise the
    101 is an ordinary answer, close-delimited (the differential half is
    tests/differential/cases_corpus2.py).  The client's later bytes go
    nowhere: nothing reaches the backend after the request."""
    with held_backend("unasked") as backend:
        locations = f"location / {{ {PROXY} proxy_pass http://127.0.0.1:{backend.port}; }}"
        port = free_port()  # after the backend's: never the same
        with ngxws(ws_conf(port, backend.port, locations=locations), tmp_path, port) as px:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(spelled("/", None, None))
                head, rest = read_head(c)
                assert head.startswith(b"HTTP/1.1 101 "), head
                assert b"\r\nConnection: upgrade" in head and b"\r\nUpgrade: h2c" in head
                try:
                    c.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                except OSError:
                    pass
                assert rest + read_until_closed(c, timeout=10) == UNASKED_BODY  # then ngxws closed
            assert wait_for(lambda: backend.closed == 1, timeout=15)
            assert backend.after == [b""]
            assert parse_stats(px.stats())["active"] == 0


# --- item 5: the cap and the gauge count tunnels, not pending upgrades -------------------


def _locations(silent: int, echo: int) -> str:
    return f"""
        location /silent/ {{ {PROXY} proxy_read_timeout 30s; proxy_pass http://127.0.0.1:{silent}; }}
        location / {{ {PROXY} proxy_pass http://127.0.0.1:{echo}; }}
    """


def test_pending_upgrades_are_not_counted_and_do_not_block_a_legit_one(tmp_path: Path) -> None:
    with held_backend("silent") as silent, ws_backend() as echo:
        conf = ws_conf(port := free_port(), echo, "ws_max_connections 2;", locations=_locations(silent.port, echo))
        with ngxws(conf, tmp_path, port) as px:
            pending = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
            try:
                for c in pending:
                    c.sendall(upgrade_request("/silent/x"))
                assert wait_for(lambda: len(silent.heads) == 5, timeout=15)  # five upgrades wait for the upstream
                assert parse_stats(px.stats())["active"] == 0  # ... and none is a tunnel

                async def legit() -> None:
                    async with connect(px.ws_url("/"), compression=None) as a, connect(
                        px.ws_url("/"), compression=None
                    ) as b:
                        await a.send("a")
                        await b.send("b")
                        assert (await a.recv(), await b.recv()) == ("a", "b")
                        assert parse_stats(px.stats())["active"] == 2

                run(legit())
                assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
            finally:
                for c in pending:
                    c.close()
            assert wait_for(lambda: silent.closed == 5)


def test_a_101_arriving_over_the_cap_is_refused_1013_on_both_sides(tmp_path: Path) -> None:
    with held_backend("gate") as gated, ws_backend() as echo:
        conf = ws_conf(port := free_port(), echo, "ws_max_connections 1;", locations=_locations(gated.port, echo))
        with ngxws(conf, tmp_path, port) as px:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as late:
                late.sendall(upgrade_request("/silent/x"))
                assert wait_for(lambda: len(gated.heads) == 1, timeout=15)

                async def scenario() -> None:
                    async with connect(px.ws_url("/"), compression=None) as first:  # the cap's one tunnel
                        assert parse_stats(px.stats())["active"] == 1
                        gated.release.set()  # now the waiting upgrade's 101 comes
                        head, after = read_head(late)
                        assert head.startswith(b"HTTP/1.1 101 "), head
                        after += read_until_closed(late, timeout=5)
                        assert after == b"\x88\x11\x03\xf5Try Again Later"  # 1013, then closed
                        await first.send("still here")
                        assert await first.recv() == "still here"
                        assert parse_stats(px.stats())["active"] == 1

                run(scenario())
            assert wait_for(lambda: gated.closed == 1, timeout=15)
            told = gated.after[0]
            assert told[:2] == b"\x88\x91"  # a masked close frame ...
            payload = bytes(b ^ told[2 + i % 4] for i, b in enumerate(told[6:]))
            assert payload == b"\x03\xf5Try Again Later"  # ... 1013, then the connection closed
            assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)


def test_600_simultaneous_upgrades_make_exactly_100_tunnels(tmp_path: Path) -> None:
    """The burst result kept with the cap counted at the 101: 600 upgrades at
    once against ws_max_connections 100 on two workers, twice."""
    import resource
    from collections import Counter

    from websockets.exceptions import ConnectionClosed

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        try:
            async for m in ws:
                await ws.send(m)
        except ConnectionClosed:
            pass

    async def burst(port: int) -> tuple[Counter[str], int]:
        conns = await asyncio.gather(*[asyncio.open_connection("127.0.0.1", port) for _ in range(600)])
        for _r, w in conns:
            w.write(upgrade_request())

        async def outcome(r: asyncio.StreamReader) -> str:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
            assert head.startswith(b"HTTP/1.1 101 "), head
            try:
                after = await asyncio.wait_for(r.read(4), 1.0)
            except asyncio.TimeoutError:
                return "open"
            return f"refused {int.from_bytes(after[2:4], 'big')}"

        results = Counter(await asyncio.gather(*[outcome(r) for r, _w in conns]))
        active = parse_stats(await asyncio.to_thread(px.stats))["active"]
        for _r, w in conns:
            w.close()
        return results, active

    with ws_backend(echo) as backend:
        conf = ws_conf(port := free_port(), backend, "ws_max_connections 100;", main_extra="worker_processes 2;", worker_connections=4096)
        with ngxws(conf, tmp_path, port) as px:
            for _ in range(2):
                results, active = run(burst(port))
                print(f"600 upgrades, cap 100: {dict(results)}, page {active}")
                assert results == Counter({"open": 100, "refused 1013": 500})
                assert active == 100
                assert wait_for(lambda: parse_stats(px.stats())["active"] == 0, timeout=20)


# --- item 3 (part): a client leaving while its upgrade waits ---------------------------------


@pytest.mark.parametrize("connection", ["Upgrade", "close"])
def test_client_leaving_while_its_upgrade_waits_closes_the_upstream_at_once(
    tmp_path: Path, connection: str
) -> None:
    with held_backend("silent") as silent:
        conf = ws_conf(port := free_port(), silent.port, locations=_locations(silent.port, silent.port))
        with ngxws(conf, tmp_path, port) as px:
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(spelled("/silent/x", "websocket", connection))
            assert wait_for(lambda: len(silent.heads) == 1, timeout=15)
            t0 = time.monotonic()
            c.close()
            assert wait_for(lambda: silent.closed == 1, timeout=5)  # proxy_read_timeout is 30s
            assert time.monotonic() - t0 < 5
            assert px.get("/websocket_status")[0] == 200


# --- bytes sent before the 101 ---------------------------------------------------------------


@pytest.mark.parametrize("connection", ["Upgrade", "close", None])
def test_bytes_sent_before_the_101_reach_the_upstream_as_tunnel_data(tmp_path: Path, connection: str | None) -> None:
    with held_backend("gate") as gated, ngxws(ws_conf(port := free_port(), gated.port), tmp_path, port):
        frame = mask_frame(1, b"early")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(spelled("/", "websocket", connection) + frame)  # in the same write as the head
            assert wait_for(lambda: len(gated.heads) == 1, timeout=15)
            late = mask_frame(2, b"while waiting")
            c.sendall(late)
            time.sleep(0.2)
            gated.release.set()
            head, _ = read_head(c)
            assert head.startswith(b"HTTP/1.1 101 "), head
        assert wait_for(lambda: gated.closed == 1, timeout=15)
        assert gated.after == [frame + late]


def test_declared_body_then_tunnel_bytes(tmp_path: Path) -> None:
    """A body goes upstream as the request's body, what follows it as tunnel data."""
    with held_backend("ws") as backend, ngxws(ws_conf(port := free_port(), backend.port), tmp_path, port):
        frame = mask_frame(1, b"after the body")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(spelled("/", "websocket", "close", extra="Content-Length: 3\r\n") + b"abc" + frame)
            head, _ = read_head(c)
            assert head.startswith(b"HTTP/1.1 101 "), head
        assert wait_for(lambda: backend.closed == 1, timeout=15)
        assert b"Content-Length: 3" in backend.heads[0]
        assert backend.after == [b"abc" + frame]


def test_not_switched_upgrade_then_pipelined_request(tmp_path: Path) -> None:
    """The upstream declines (200): the bytes after the upgrade request are the next request."""

    async def decline(connection, request):  # type: ignore[no-untyped-def]
        return connection.respond(200, "declined\n")

    with ws_backend(process_request=decline) as backend, ngxws(ws_conf(port := free_port(), backend), tmp_path, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(spelled("/", "websocket", "keep-alive") + b"GET /websocket_status HTTP/1.1\r\nHost: x\r\n\r\n")
            first, rest = read_head(c)
            assert first.startswith(b"HTTP/1.1 200 "), first
            data = rest + read_until_closed(c, timeout=2)
            assert b"declined\n" in data and b"WebSocket connections: 0" in data


def test_chunked_body_then_tunnel(tmp_path: Path) -> None:
    """A chunked body goes upstream with its length (nginx buffers it); bytes
    the client adds before the 101 are relayed once they come in a later read."""
    with held_backend("gate") as gated, ngxws(ws_conf(port := free_port(), gated.port), tmp_path, port):
        frame = mask_frame(1, b"later")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(spelled("/", "websocket", "close", extra="Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n0\r\n\r\n")
            assert wait_for(lambda: len(gated.heads) == 1, timeout=10)
            c.sendall(frame)
            time.sleep(0.2)
            gated.release.set()
            head, _ = read_head(c)
            assert head.startswith(b"HTTP/1.1 101 "), head
        assert wait_for(lambda: gated.closed == 1, timeout=15)
        assert b"Content-Length: 3" in gated.heads[0]
        assert gated.after == [b"abc" + frame]


def test_bytes_glued_to_a_chunked_upgrade_body_are_tunnel_data(tmp_path: Path) -> None:
    """http.parser reads a chunked body to its last chunk and stops there:
    bytes in the same read behind it are the tunnel's first, as in nginx."""
    with held_backend("ws") as backend, ngxws(ws_conf(port := free_port(), backend.port), tmp_path, port):
        frame = mask_frame(1, b"glued")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(
                spelled("/", "websocket", "close", extra="Transfer-Encoding: chunked\r\n")
                + b"3\r\nabc\r\n0\r\n\r\n" + frame
            )
            head, _ = read_head(c)
            assert head.startswith(b"HTTP/1.1 101 "), head
        assert wait_for(lambda: backend.closed == 1, timeout=15)
        assert b"Content-Length: 3" in backend.heads[0]
        assert backend.after == [b"abc" + frame]


# --- item 1: every state ends on its timeout: the response body ----------------------------


@pytest.mark.parametrize("framing", ["length", "chunked", "eof"])
def test_a_response_body_that_stalls_ends_at_proxy_read_timeout(tmp_path: Path, framing: str) -> None:
    """nginx's proxy_read_timeout runs between two reads of the body too:
    the client gets a truncated answer (no last chunk) and both sides close."""
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(4)
    upstream_closed = threading.Event()

    def serve() -> None:
        conn, _ = stalled.accept()
        with conn:
            read_head(conn)
            head = {"length": b"Content-Length: 100\r\n", "chunked": b"Transfer-Encoding: chunked\r\n", "eof": b""}
            body = b"5\r\nhello\r\n" if framing == "chunked" else b"hello"
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + head[framing] + b"\r\n" + body)
            if read_until_closed(conn, timeout=20) == b"":
                upstream_closed.set()

    threading.Thread(target=serve, daemon=True).start()
    port = free_port()  # after the backend's: never the same
    locations = f"location / {{ proxy_read_timeout 1s; proxy_pass http://127.0.0.1:{stalled.getsockname()[1]}; }}"
    try:
        with ngxws(ws_conf(port, 1, locations=locations), tmp_path, port):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                t0 = time.monotonic()
                got = read_until_closed(c, timeout=10)
                waited = time.monotonic() - t0
            assert got.startswith(b"HTTP/1.1 200 ") and b"hello" in got
            assert not got.endswith(b"0\r\n\r\n")
            assert 0.8 <= waited < 5, waited
            assert upstream_closed.wait(5)
    finally:
        stalled.close()
