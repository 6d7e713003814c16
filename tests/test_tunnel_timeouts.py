"""The tunnel's send timeouts: a write that stays blocked ends the tunnel.

nginx's upgraded-connection handler arms ``proxy_send_timeout`` on a blocked
write toward the upstream and ``send_timeout`` on one toward the client, and
finalizes the request when either fires.  ngxws arms the same timers from
the transports' ``pause_writing`` to their ``resume_writing``.

Two tiers:

- a ``Tunnel`` driven directly over socket pairs whose far ends the test
  holds, on the event loop ngxws runs (uvloop): exact timings, both
  directions, a slow reader that keeps draining is not cut;
- a real ngxws between a raw client and a backend that completes the
  handshake and never reads again.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import uvloop
from harness import free_port, ngxws, read_head, switching_protocols, upgrade_request

from ngxws.accounting.counters import KEY_FIELDS
from ngxws.proxy.tunnel import Tunnel

# A masked binary frame header announcing 1 TiB of payload: everything sent
# after it is payload the frame trackers skip (no per-frame work, no error).
HUGE_FRAME = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40) + b"\x01\x02\x03\x04"
CHUNK = b"\0" * 65536


class _Counters:
    def __init__(self) -> None:
        self.array = memoryview(bytearray(KEY_FIELDS * 8)).cast("q")  # one breakdown row
        self.closed: list[int] = []

    def close(self, base: int) -> None:
        self.closed.append(base)


class _Worker:
    """What a Tunnel asks of its worker."""

    def __init__(self) -> None:
        self.counters = _Counters()
        self.tunnels: set[Tunnel] = set()
        self.info: list[str] = []

    def log_info(self, message: str) -> None:
        self.info.append(message)


def _small_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)


class _Held(asyncio.Protocol):
    """Placeholder protocol until the Tunnel swaps its own in (reading paused)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).pause_reading()


async def _socketpair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


async def _tunnel(
    send_timeout: float,
    client_send_timeout: float,
    read_timeout: float = 30.0,
    conn_age: float | None = None,
    pair: Callable[[], Awaitable[tuple[socket.socket, socket.socket]]] = _socketpair,
) -> tuple[Tunnel, _Worker, socket.socket, socket.socket]:
    """A started Tunnel; returns it with the test's ends of the client and
    upstream sockets (``pair``: how a connection's two ends are made)."""
    loop = asyncio.get_running_loop()
    client_far, client_near = await pair()
    upstream_far, upstream_near = await pair()
    for s in (client_far, client_near, upstream_far, upstream_near):
        _small_buffers(s)
        s.setblocking(False)
    client_t, _ = await loop.connect_accepted_socket(_Held, client_near)
    upstream_t, _ = await loop.connect_accepted_socket(_Held, upstream_near)
    worker = _Worker()
    tunnel = Tunnel(
        cast(Any, worker),
        0,
        cast(asyncio.Transport, client_t),
        cast(asyncio.Transport, upstream_t),
        None,
        None,
        read_timeout,
        conn_age,
        send_timeout=send_timeout,
        client_send_timeout=client_send_timeout,
    )
    tunnel.start(b"", b"")
    return tunnel, worker, client_far, upstream_far


async def _flood_until_blocked(sock: socket.socket, first: bytes = b"") -> float:
    """Write until the socket has stayed unwritable for a while; return when
    it first blocked for good (monotonic)."""
    data = first + CHUNK
    blocked_since: float | None = None
    while True:
        try:
            sent = sock.send(data)
            data = data[sent:] or CHUNK
            blocked_since = None
        except BlockingIOError:
            now = time.monotonic()
            if blocked_since is None:
                blocked_since = now
            elif now - blocked_since > 0.1:
                return blocked_since
        except OSError:
            raise AssertionError("the tunnel closed before the flood blocked") from None
        await asyncio.sleep(0.005)


async def _closed_within(tunnel: Tunnel, limit: float) -> float:
    start = time.monotonic()
    while not tunnel.closed and time.monotonic() - start < limit:
        await asyncio.sleep(0.01)
    return time.monotonic()


def _run(coro: Any) -> Any:
    return uvloop.run(asyncio.wait_for(coro, 20))


def _seconds_until_closed(sock: socket.socket, since: float, limit: float = 5.0) -> float:
    """Read ``sock`` until EOF or reset; seconds from ``since`` until then."""
    sock.setblocking(True)
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    return time.monotonic() - since


def _sees_close(sock: socket.socket, timeout: float = 2.0) -> bool:
    """Reading the far end reaches EOF or a reset (whatever was queued first)."""
    sock.setblocking(True)
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def test_idle_tunnel_is_closed_after_proxy_read_timeout_and_traffic_keeps_it() -> None:
    """proxy_read_timeout counts from the last read either way.  The relay
    reads no clock: the trackers count reads and the idle check compares the
    count IDLE_CHECKS times per timeout (ngxws/proxy/idle.py), so an idle
    tunnel closes between one and 1 + 2/IDLE_CHECKS timeouts after its last byte."""

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(30, 30, read_timeout=0.4)
        ping = bytes((0x89, 0x80)) + b"\x01\x02\x03\x04"  # masked empty ping
        for _ in range(8):  # 1.2 s of a frame every 0.15 s, alternating directions
            client.send(ping)
            await asyncio.sleep(0.075)
            upstream.send(bytes((0x8A, 0)))
            last = time.monotonic()  # the last byte (a sleep may overshoot on a loaded machine)
            await asyncio.sleep(0.075)
            assert not tunnel.closed
        closed = await _closed_within(tunnel, 5.0)
        assert tunnel.closed
        assert 0.35 <= closed - last <= 1.5, closed - last
        assert worker.info == ["websocket tunnel closed: upstream timed out"]
        slots = worker.counters.array.tolist()
        assert slots[1:7] == [8, 0, 8 * len(ping), 8, 0, 16]  # counted by the trackers' count()
        client.close()
        upstream.close()

    _run(scenario())


def test_upstream_that_stops_reading_is_cut_after_proxy_send_timeout() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(send_timeout=0.5, client_send_timeout=30)
        blocked = await _flood_until_blocked(client, HUGE_FRAME)
        assert not tunnel.closed
        assert tunnel.upstream_side.send_timer is not None  # armed on pause_writing
        closed = await _closed_within(tunnel, 3.0)
        assert tunnel.closed
        # armed when the upstream buffer filled, a moment before the client blocked
        assert 0.25 <= closed - blocked <= 0.8, closed - blocked
        assert worker.info == ["websocket tunnel closed: upstream timed out"]
        assert worker.counters.closed == [0] and not worker.tunnels
        await asyncio.sleep(0.05)
        assert _sees_close(upstream)  # aborted: the unsent buffer is dropped
        assert _sees_close(client)
        client.close()
        upstream.close()

    _run(scenario())


def test_client_that_stops_reading_is_cut_after_send_timeout() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(send_timeout=30, client_send_timeout=0.5)
        blocked = await _flood_until_blocked(upstream, b"\x82\x7f" + struct.pack("!Q", 1 << 40))
        assert tunnel.client_side.send_timer is not None
        closed = await _closed_within(tunnel, 3.0)
        assert tunnel.closed
        assert 0.25 <= closed - blocked <= 0.8, closed - blocked
        assert worker.info == ["websocket tunnel closed: client timed out"]
        await asyncio.sleep(0.05)
        assert _sees_close(client)
        assert _sees_close(upstream)
        client.close()
        upstream.close()

    _run(scenario())


def test_a_slow_reader_that_keeps_draining_is_not_cut() -> None:
    """Each drain below the low-water mark (``resume_writing``) disarms the
    timer, as nginx re-arms it whenever a blocked write makes progress."""

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(send_timeout=0.5, client_send_timeout=30)
        await _flood_until_blocked(client, HUGE_FRAME)
        drained = 0
        start = time.monotonic()
        while time.monotonic() - start < 2.0:  # four timeouts' worth
            try:
                drained += len(upstream.recv(65536))
            except BlockingIOError:
                pass
            try:
                client.send(CHUNK)
            except BlockingIOError:
                pass
            await asyncio.sleep(0.01)
        assert not tunnel.closed, worker.info
        assert drained > 1_000_000
        tunnel.close()
        assert tunnel.upstream_side.send_timer is None
        assert tunnel.client_side.send_timer is None
        client.close()
        upstream.close()

    _run(scenario())


def test_closing_for_another_reason_disarms_and_aborts_the_blocked_side() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(send_timeout=0.5, client_send_timeout=30)
        await _flood_until_blocked(client, HUGE_FRAME)
        timer = tunnel.upstream_side.send_timer
        assert timer is not None
        tunnel.close(reason="shutdown")
        assert timer.cancelled() and tunnel.upstream_side.send_timer is None
        await asyncio.sleep(0.7)  # past the send timeout: nothing fires twice
        assert worker.info == ["websocket tunnel closed: shutdown"]
        assert _sees_close(upstream)  # not held open until the peer reads it all
        client.close()
        upstream.close()

    _run(scenario())


# --------------------------------------------------------------------------
# end to end: ngxws between a flooding client and a backend that never reads
# --------------------------------------------------------------------------


@contextmanager
def deaf_backend() -> Iterator[int]:
    """Completes the websocket handshake, then never reads again.

    (It cannot tell when the proxy gives up: the proxy's FIN waits behind
    the bytes this peer never reads.  The client sees it: its own unread
    bytes make the proxy's close a reset.)"""

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = int(srv.getsockname()[1])
    conns: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conns.append(conn)
        _small_buffers(conn)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        conn.sendall(switching_protocols(buf.partition(b"\r\n\r\n")[0]))
        # never recv again; the connection is closed when the test ends

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield port
    finally:
        srv.close()
        for c in conns:
            c.close()


def test_proxy_send_timeout_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    with deaf_backend() as backend:
        conf = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_send_timeout 1s;
        }}
    }}
}}
"""
        with ngxws(conf, tmp_path, port):
            sock = socket.create_connection(("127.0.0.1", port))
            _small_buffers(sock)
            sock.sendall(upgrade_request("/deaf"))
            head, _ = read_head(sock)
            assert head.startswith(b"HTTP/1.1 101")
            sock.setblocking(False)
            blocked = asyncio.run(_flood_until_blocked(sock, HUGE_FRAME))
            waited = _seconds_until_closed(sock, blocked)
            sock.close()
            assert 0.6 <= waited <= 1.8, waited
