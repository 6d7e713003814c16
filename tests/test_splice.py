"""The spliced relay (``ngxws.proxy.splice``): an unlogged plain-TCP tunnel
relayed by ``_speedups.Splice``, its transports closed once it has lived
``SPLICE_AFTER``; its sockets watched by the worker's ``Poller``, then,
once read ``STEADY_AFTER`` times, by the loop's own set (``LoopWatch``).
Every test here runs both ways: with the module's ``STEADY_AFTER`` (the
tunnels stay on the Poller) and with 1 (they move at their first read).

Driven on a real ``Tunnel`` over TCP connections on loopback, on uvloop
(the loop ngxws runs), the test holding the far ends: bytes and counts both
ways, a slow reader (backpressure: bounded held bytes, the send timeout),
the end of either side, close frames and who closed first, ngxws's own
close frames (4001, 1001) between the upstream's frames; the transport path
kept where it must be (no extension); and a real ngxws whose close line
shows the close code and closer of a spliced tunnel.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import socket
import struct
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from harness import (
    free_port,
    mask_frame,
    ngxws,
    read_head,
    tcp_pair,
    upgrade_request,
    wait_for,
    ws_backend,
)
from test_tunnel_timeouts import _closed_within, _run, _small_buffers, _Worker
from test_tunnel_timeouts import _tunnel as _timeouts_tunnel

from ngxws.proxy import splice as splice_module
from ngxws.proxy.tunnel import Tunnel
from ngxws.ws.frames import CSplice

pytestmark = pytest.mark.skipif(CSplice is None, reason="C extension not built")


@pytest.fixture(autouse=True, params=["poller", "loop"])
def steady_after(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Which set the tunnels' sockets are in for the test: "loop" moves them at the first read."""
    if request.param == "loop":
        monkeypatch.setattr(splice_module, "STEADY_AFTER", 1)
    return splice_module.STEADY_AFTER

# A masked binary frame header announcing 1 TiB of payload (the trackers skip it).
HUGE_FRAME = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40) + b"\x01\x02\x03\x04"


def _masked(payload: bytes, opcode: int = 0x2) -> bytes:
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload  # zero mask


def _unmasked(payload: bytes, opcode: int = 0x2) -> bytes:
    assert len(payload) < 126
    return bytes((0x80 | opcode, len(payload))) + payload


def _close(code: int, reason: bytes = b"", masked: bool = True) -> bytes:
    body = code.to_bytes(2, "big") + reason
    return _masked(body, 0x8) if masked else _unmasked(body, 0x8)


async def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """(far, near) ends of one loopback TCP connection, both non-blocking."""
    far, near = tcp_pair()
    for s in (far, near):
        _small_buffers(s)
        s.setblocking(False)
    return far, near


async def _tunnel(
    send_timeout: float = 30.0, read_timeout: float = 30.0, conn_age: float | None = None
) -> tuple[Tunnel, _Worker, socket.socket, socket.socket]:
    """A started Tunnel over TCP on loopback (splice takes TCP sockets only)."""
    return await _timeouts_tunnel(send_timeout, send_timeout, read_timeout, conn_age, pair=_tcp_pair)


async def _recv(sock: socket.socket, n: int, limit: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    got = b""
    deadline = time.monotonic() + limit
    while len(got) < n and time.monotonic() < deadline:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, n - len(got)), limit)
        if not chunk:
            break
        got += chunk
    return got


async def _until(cond: Any, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert cond()


async def _spliced() -> tuple[Tunnel, _Worker, socket.socket, socket.socket]:
    """A tunnel spliced (``SPLICE_AFTER`` after it started)."""
    tunnel, worker, client, upstream = await _tunnel()
    frame = _masked(b"hello")
    client.send(frame)
    assert await _recv(upstream, len(frame)) == frame
    await _until(lambda: tunnel.spliced is not None)
    assert tunnel.client.is_closing() and tunnel.upstream.is_closing()
    return tunnel, worker, client, upstream


def _eof(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_both_ways_relayed_and_counted() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        for i in range(20):
            a, b = _masked(b"c" * i), _unmasked(b"u" * (i + 1))
            client.send(a)
            upstream.send(b)
            assert await _recv(upstream, len(a)) == a
            assert await _recv(client, len(b)) == b
        slots = worker.counters.array.tolist()
        # client frames / payload / bytes, then upstream's (counters.py order)
        assert slots[1:4] == [21, 5 + sum(range(20)), len(_masked(b"hello")) + sum(6 + i for i in range(20))]
        assert slots[4:7] == [20, sum(range(1, 21)), sum(2 + i + 1 for i in range(20))]
        assert tunnel.client_side.tracker.reads >= 21
        tunnel.close()
        assert _eof(client) or await _recv(client, 1) == b""
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_short_lived_and_idle_tunnels_are_not_spliced_until_due() -> None:
    """Spliced only once it has lived SPLICE_AFTER (the hand-over costs more
    than a short tunnel relays: bench W5), and an idle one only at its first
    read after that (it keeps no C relay or buffers meanwhile: bench W6)."""
    from ngxws.proxy.tunnel import SPLICE_AFTER

    async def scenario() -> None:
        tunnel, _, client, upstream = await _tunnel()
        frame = _masked(b"early")
        client.send(frame)
        assert await _recv(upstream, len(frame)) == frame
        assert tunnel.spliced is None  # relayed on the transports before it is due
        tunnel.close()
        idle, _, client2, upstream2 = await _tunnel()
        await asyncio.sleep(SPLICE_AFTER * 2)
        assert idle.splice_due and idle.spliced is None  # nothing read yet: not spliced
        client2.send(frame)
        assert await _recv(upstream2, len(frame)) == frame
        await _until(lambda: idle.spliced is not None)  # its first read after it was due
        idle.close()
        for s in (client, upstream, client2, upstream2):
            s.close()

    _run(scenario())


@pytest.mark.parametrize("who", ["client", "upstream"])
def test_eof_of_either_side_closes_the_tunnel(who: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        ending, other = (client, upstream) if who == "client" else (upstream, client)
        ending.send(_masked(b"last") if who == "client" else _unmasked(b"last"))
        ending.shutdown(socket.SHUT_WR)
        await _until(lambda: tunnel.closed)
        assert tunnel.final_closer() == f"{who}_tcp"
        assert worker.counters.closed == [0]
        assert tunnel not in worker.tunnels
        got = await _recv(other, 1000, limit=2.0)
        assert got.startswith(_masked(b"last") if who == "client" else _unmasked(b"last"))
        for s in (client, upstream):
            s.close()

    _run(scenario())


@pytest.mark.parametrize("first", ["client", "upstream"])
def test_close_frames_decide_who_closed(first: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        c_close, u_close = _close(1000, b"bye"), _close(1001, b"going", masked=False)
        if first == "client":
            client.send(c_close[:3])  # split: completes in the next read
            await asyncio.sleep(0.05)
            client.send(c_close[3:])
            assert await _recv(upstream, len(c_close)) == c_close
            upstream.send(u_close)
            assert await _recv(client, len(u_close)) == u_close
        else:
            upstream.send(u_close)
            assert await _recv(client, len(u_close)) == u_close
            client.send(c_close)
            assert await _recv(upstream, len(c_close)) == c_close
        upstream.close()
        await _until(lambda: tunnel.closed)
        assert tunnel.final_closer() == first
        assert tunnel.client_side.tracker.close == (1000, b"bye")
        assert tunnel.upstream_side.tracker.close == (1001, b"going")
        client.close()

    _run(scenario())


def test_slow_reader_backpressure_bounded_then_drained() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        spliced = tunnel.spliced
        assert spliced is not None
        # the upstream sends a huge frame's worth while the client reads nothing
        upstream_huge = struct.pack("!BBQ", 0x82, 127, 1 << 40)
        sent = bytearray()
        pending = upstream_huge
        deadline = time.monotonic() + 10
        stalled_since = None
        while time.monotonic() < deadline:
            try:
                n = upstream.send(pending or b"\x07" * 65536)
                sent += (pending or b"\x07" * 65536)[:n]
                pending = (pending or b"\x07" * 65536)[n:]
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break
                await asyncio.sleep(0.01)
        assert spliced.blocked[1]  # upstream->client is held back
        assert spliced.relay.held[1] <= splice_module.BUFFER
        assert tunnel.upstream_side.send_timer is None and tunnel.client_side.send_timer is not None
        # the client now reads everything: all bytes arrive, in order, and reading resumes
        want = bytes(sent)
        got = await _recv(client, len(want), limit=10)
        assert got == want
        await _until(lambda: not spliced.blocked[1])
        assert tunnel.client_side.send_timer is None
        upstream.send(b"\x08" * 10)
        assert await _recv(client, 10) == b"\x08" * 10
        assert not tunnel.closed
        tunnel.close()
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_blocked_write_runs_the_send_timeout() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(send_timeout=0.5)
        client.send(_masked(b"x"))
        await _recv(upstream, len(_masked(b"x")))
        await _until(lambda: tunnel.spliced is not None)
        data = HUGE_FRAME + b"\0" * (1 << 20)
        start = time.monotonic()
        while not tunnel.closed and time.monotonic() - start < 10:
            try:
                data = data[client.send(data) :] or b"\0" * 65536
            except BlockingIOError:
                await asyncio.sleep(0.02)
            except (BrokenPipeError, ConnectionResetError):
                break
        await _until(lambda: tunnel.closed, limit=5)
        assert tunnel.final_closer() == "ngxws_timeout"
        assert "websocket tunnel closed: upstream timed out" in worker.info
        for s in (client, upstream):
            s.close()

    _run(scenario())


@pytest.mark.parametrize(("code", "closer"), [(4001, "ngxws_age"), (1001, "ngxws_shutdown")])
def test_own_close_frame_waits_for_the_upstream_frame_end(code: int, closer: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        frame = _unmasked(b"z" * 100)
        upstream.send(frame[:40])  # the upstream is in the middle of a frame
        assert await _recv(client, 40) == frame[:40]
        reason = "Connection is Aged" if code == 4001 else "Going Away"
        tunnel.close_with(code, reason)
        await asyncio.sleep(0.1)
        assert not tunnel.closed  # waits for the frame's end
        upstream.send(frame[40:] + _unmasked(b"after"))
        want = frame[40:] + _unmasked(b"after")
        got = await _recv(client, len(want) + 4 + len(reason), limit=3)
        # the frame's end, then our close frame (maybe after the next whole frame of the same read)
        close = bytes((0x88, 2 + len(reason))) + code.to_bytes(2, "big") + reason.encode()
        assert got.startswith(frame[40:])
        assert close in got + await _recv(client, 100, limit=1)
        await _until(lambda: tunnel.closed)
        assert tunnel.final_closer() == closer
        assert tunnel.sent_close == (code, reason)
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_conn_age_close_frame_at_a_boundary() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(conn_age=0.5)
        client.send(_masked(b"x"))
        await _recv(upstream, len(_masked(b"x")))
        await _until(lambda: tunnel.spliced is not None)
        await _until(lambda: tunnel.closed, limit=3)
        close = bytes((0x88, 20)) + (4001).to_bytes(2, "big") + b"Connection is Aged"
        assert await _recv(client, len(close)) == close
        assert tunnel.final_closer() == "ngxws_age"
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_stop_reading_then_close() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        tunnel.stop_reading()
        client.send(_masked(b"late"))
        await asyncio.sleep(0.1)
        with pytest.raises(BlockingIOError):
            upstream.recv(100)
        tunnel.close(abort=True)
        assert tunnel.closed and tunnel.final_closer() == "ngxws_shutdown"
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_transport_path_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splice_module, "CSplice", None)

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel()
        frame = _masked(b"hello")
        client.send(frame)
        assert await _recv(upstream, len(frame)) == frame
        await asyncio.sleep(0.05)
        assert tunnel.spliced is None and not tunnel.client.is_closing()
        tunnel.close()
        for s in (client, upstream):
            s.close()

    _run(scenario())


def _conf(port: int, backend: int, log: Path, conn_age: str) -> str:
    return f"""
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    server {{
        listen 127.0.0.1:{port};
        ws_log {log};
        ws_log_format open 'open';
        ws_log_format close 'close $ws_close_initiator $ws_close_code [$ws_close_reason]';
        ws_conn_age {conn_age};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(upgrade_request("/", host="splice.test"))
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101") and not rest
    return sock


def test_real_ngxws_close_line_and_conn_age(tmp_path: Path) -> None:
    """A real worker: a client close (code on the close line) and a 4001 age close."""
    port = free_port()
    log = tmp_path / "ws.log"
    with ws_backend() as backend, ngxws(_conf(port, backend, log, "2s"), tmp_path, port):
        sock = _open(port)
        sock.sendall(mask_frame(0x1, b"hi"))
        assert sock.recv(100) == b"\x81\x02hi"
        sock.sendall(mask_frame(0x8, (4005).to_bytes(2, "big") + b"done"))
        got = sock.recv(100)
        assert got[:1] == b"\x88"
        sock.close()
        aged = _open(port)
        aged.sendall(mask_frame(0x1, b"yo"))
        assert aged.recv(100) == b"\x81\x02yo"
        aged.settimeout(6)
        close = bytes((0x88, 20)) + (4001).to_bytes(2, "big") + b"Connection is Aged"
        got = b""
        while len(got) < len(close):
            chunk = aged.recv(100)
            if not chunk:
                break
            got += chunk
        assert got == close
        aged.close()
        wait_for(lambda: log.exists() and log.read_text().count("close ") == 2, timeout=10)
        lines = [line for line in log.read_text().splitlines() if line.startswith("close")]
        assert lines[0] == "close client 4005 [done]", lines
        assert lines[1].startswith("close ngxws_age"), lines


def test_idle_timeout_through_the_splice() -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(read_timeout=0.5)
        client.send(_masked(b"x"))
        await _recv(upstream, len(_masked(b"x")))
        await _until(lambda: tunnel.spliced is not None)
        for _ in range(3):  # traffic keeps it open past its timeout
            await asyncio.sleep(0.25)
            upstream.send(_unmasked(b"tick"))
        assert not tunnel.closed
        await _until(lambda: tunnel.closed, limit=3)
        assert tunnel.final_closer() == "ngxws_timeout"
        assert "websocket tunnel closed: upstream timed out" in worker.info
        assert (await _recv(client, 100, limit=1)).startswith(_unmasked(b"tick"))
        for s in (client, upstream):
            s.close()

    _run(scenario())


def _big_buffers(*socks: socket.socket) -> None:
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)


def test_busy_bulk_tunnel_spliced_once_free_with_the_bulk_buffer() -> None:
    """A flood is busy when its splice falls due (here: its write to the
    upstream blocked, the upstream reads nothing), so it is spliced at its
    next chance, once the write drained and the side may read again -- and
    a read that fills its buffer moves that direction to the bulk buffer.
    Every byte arrives, in order."""
    from ngxws.proxy.tunnel import SPLICE_AFTER

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel()
        _big_buffers(client, upstream, tunnel.client.get_extra_info("socket"), tunnel.upstream.get_extra_info("socket"))
        loop = asyncio.get_running_loop()
        payload = bytes(range(256)) * (16 * 1024)  # 4 MiB
        frame = struct.pack("!BBQ", 0x82, 0x80 | 127, len(payload)) + b"\0\0\0\0" + payload
        sender = asyncio.ensure_future(loop.sock_sendall(client, frame))
        await _until(lambda: tunnel.client_side.out_blocked)
        await asyncio.sleep(SPLICE_AFTER * 2)
        assert tunnel.splice_due and tunnel.spliced is None  # due, but busy: not yet
        got = await _recv(upstream, len(frame), limit=15)  # the upstream reads: the write drains
        assert got == frame
        await sender
        assert tunnel.spliced is not None and not tunnel.splice_due
        slots = worker.counters.array.tolist()
        assert slots[1:4] == [1, len(payload), len(frame)]
        sender = asyncio.ensure_future(loop.sock_sendall(client, frame))  # a flood, now spliced
        assert await _recv(upstream, len(frame), limit=15) == frame
        await sender
        assert tunnel.spliced.relay.sizes == (splice_module.BULK, splice_module.BUFFER)
        small = _unmasked(b"back")  # the other direction still relayed, and counted
        upstream.send(small)
        assert await _recv(client, len(small)) == small
        tunnel.close()
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_interactive_tunnel_gets_the_small_buffer() -> None:
    async def scenario() -> None:
        tunnel, _, client, upstream = await _spliced()
        assert tunnel.spliced is not None
        assert tunnel.spliced.relay.sizes == (splice_module.BUFFER, splice_module.BUFFER)
        tunnel.close()
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_a_tunnel_that_cannot_be_spliced_stops_asking() -> None:
    """Not TCP (here a socketpair): the due splice is given up for good, so
    the later chances (every resume of a flood) ask nothing."""
    from ngxws.proxy.tunnel import SPLICE_AFTER

    async def scenario() -> None:
        tunnel, _, client, upstream = await _timeouts_tunnel(30.0, 30.0)
        frame = _masked(b"unix")
        client.send(frame)
        assert await _recv(upstream, len(frame)) == frame
        await asyncio.sleep(SPLICE_AFTER * 2)
        assert tunnel.spliced is None and not tunnel.splice_due
        client.send(frame)
        assert await _recv(upstream, len(frame)) == frame  # the transport path relays on
        tunnel.close()
        for s in (client, upstream):
            s.close()

    _run(scenario())


@pytest.mark.parametrize("size", [16 * 1024, 64 * 1024])
def test_reads_per_readiness_bounded(size: int) -> None:
    """One readiness call reads on while each read fills the buffer and is
    sent whole, up to 4 reads (_splice.c SPLICE_READS): the rest waits in
    the socket for the loop's next turn."""
    per_readiness = 4 * size
    from ngxws.ws.frames import CFrameTracker

    assert CFrameTracker is not None and CSplice is not None

    async def scenario() -> None:
        client, near_c = await _tcp_pair()
        upstream, near_u = await _tcp_pair()
        _big_buffers(client, near_c, upstream, near_u)
        events: list[tuple[int, int]] = []
        relay = CSplice(  # on dups: the relay closes its sockets
            CFrameTracker(),
            CFrameTracker(),
            os.dup(near_c.fileno()),
            os.dup(near_u.fileno()),
            lambda kind, n: events.append((kind, n)),
            size,
        )
        data = HUGE_FRAME + b"\x05" * (2 * per_readiness + 4096)
        client.settimeout(10)  # the near end's receive buffer takes it all, or this fails
        client.sendall(data)
        client.setblocking(False)
        relay.read_client()
        assert events == [] and relay.held == (0, 0)
        got = await _recv(upstream, per_readiness)
        assert got == data[:per_readiness]
        with pytest.raises(BlockingIOError):
            upstream.recv(1)  # nothing more was read this time
        relay.read_client()  # the next readiness: the next share
        assert await _recv(upstream, per_readiness) == data[per_readiness : 2 * per_readiness]
        relay.close(False)
        for s in (client, upstream, near_c, near_u):
            s.close()

    _run(scenario())


def _registered(fd: int) -> bool:
    """Whether ``fd`` is in the running loop's set (uvloop's poll handles) or the worker's."""
    return fd in splice_module.loop_watch().events or _in_poller(fd)


def _in_poller(fd: int) -> bool:
    """Whether the worker's epoll set holds ``fd`` (its ``tfd:`` lines in /proc)."""
    info = Path(f"/proc/self/fdinfo/{splice_module.poller().fd}").read_text()
    return any(line.split()[1] == str(fd) for line in info.splitlines() if line.startswith("tfd:"))


def test_a_tunnel_moves_to_the_loops_set_once_steady(steady_after: int) -> None:
    """Read STEADY_AFTER times, both sockets leave the worker's epoll set for
    the loop's, once; the relay, its counts and its end go on as before."""

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        spliced = tunnel.spliced
        assert spliced is not None
        fds = spliced.fds
        rounds = steady_after + 5
        for i in range(rounds):
            a, b = _masked(bytes([i % 256]) * 3), _unmasked(b"u" * 4)
            client.send(a)
            assert await _recv(upstream, len(a)) == a
            upstream.send(b)
            assert await _recv(client, len(b)) == b
        watch = splice_module.loop_watch()
        assert spliced.poller is watch
        assert all(watch.events[fd] == splice_module.POLL_READ for fd in fds)
        assert not any(_in_poller(fd) for fd in fds)
        slots = worker.counters.array.tolist()
        assert slots[1] == rounds + 1 and slots[4] == rounds  # frames each way (hello first)
        upstream.close()
        await _until(lambda: tunnel.closed)
        assert not any(_registered(fd) for fd in fds)
        assert _eof(client) or await _recv(client, 1) == b""
        client.close()

    _run(scenario())


def _steady_news(steady: int, chunks: list[bytes], size: int = 1024) -> list[tuple[int, int]]:
    """What a bare Splice(steady=..., size) reports when each of ``chunks``
    is sent and read in turn (one readiness each)."""
    from ngxws.ws.frames import CFrameTracker

    assert CSplice is not None and CFrameTracker is not None
    heard: list[tuple[int, int]] = []
    a_far, a_near = tcp_pair()
    b_far, b_near = tcp_pair()
    try:
        for s in (a_near, b_near):
            s.setblocking(False)
        relay = CSplice(
            CFrameTracker(),
            CFrameTracker(),
            a_near.fileno(),
            b_near.fileno(),
            lambda kind, n: heard.append((kind, n)),
            size,
            0,
            steady,
        )
        for chunk in chunks:
            a_far.sendall(chunk)
            select.select([a_near], [], [], 1.0)
            relay.read_client()
    finally:
        for s in (a_far, a_near, b_far, b_near):
            s.close()
    return heard


def test_steady_is_reported_once_after_that_many_reads() -> None:
    """The C side: SPLICE_STEADY (6) once, at the read that makes the count; never with steady=0."""
    frame = _masked(b"x")
    assert _steady_news(3, [frame] * 2) == []
    assert _steady_news(3, [frame] * 6) == [(splice_module.STEADY, 0)]
    assert _steady_news(0, [frame] * 6) == []


def test_a_tunnel_that_blocks_goes_back_to_the_workers_set_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    """A direction that blocks (a slow reader) takes its tunnel from the
    loop's set back to the worker's, and it never moves again: its changes
    of interest cost one epoll_ctl there."""
    monkeypatch.setattr(splice_module, "STEADY_AFTER", 1)

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        spliced = tunnel.spliced
        assert spliced is not None
        client.send(_masked(b"first"))  # its first read: steady (1)
        assert await _recv(upstream, len(_masked(b"first"))) == _masked(b"first")
        assert spliced.poller is splice_module.loop_watch()
        chunk = struct.pack("!BBQ", 0x82, 127, 1 << 40) + b"\x07" * 65536
        sent = 0
        deadline = time.monotonic() + 10
        while not spliced.blocked[1] and time.monotonic() < deadline:
            try:
                sent += upstream.send(chunk if sent == 0 else b"\x07" * 65536)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        assert spliced.blocked[1] and spliced.has_blocked
        assert spliced.poller is splice_module.poller()
        assert not any(fd in splice_module.loop_watch().events for fd in spliced.fds)
        assert len(await _recv(client, sent, limit=10)) == sent  # all of it, once the client reads
        await _until(lambda: not spliced.blocked[1])
        for _ in range(5):  # more reads: STEADY is not reported again, and would not move it
            client.send(_masked(b"again"))
            assert await _recv(upstream, len(_masked(b"again"))) == _masked(b"again")
        assert spliced.poller is splice_module.poller() and all(_in_poller(fd) for fd in spliced.fds)
        tunnel.close()
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_a_read_that_fills_the_buffer_means_never_steady() -> None:
    """A flood or a bulk transfer (a read fills the buffer) is never reported steady."""
    # more than the 16-byte buffer first (a 1 TiB frame's start: the rest is payload)
    assert _steady_news(3, [HUGE_FRAME + b"\x01" * 20] + [b"\x01"] * 5, size=16) == []


@pytest.mark.parametrize("path", ["spliced", "transports"])
def test_a_closed_tunnel_goes_by_reference_counting(path: str) -> None:
    """Nothing of a closed tunnel is left for the cycle collector: the
    tunnel, its sides and its relay are freed when the last reference goes
    (a cycle per connection cost W5 ~8 % of the proxy's CPU: bench/PROFILE.md,
    "W5, round 6").  Spliced (closed by the tunnel), or still on the
    transports with a side read through its C relay (closed by the client's end)."""

    async def scenario() -> None:
        if path == "spliced":
            tunnel, _, client, upstream = await _spliced()
            assert tunnel.spliced is not None
            refs = [weakref.ref(x) for x in (tunnel, tunnel.spliced, tunnel.client_side, tunnel.upstream_side)]
            tunnel.close()
        else:
            tunnel, _, client, upstream = await _tunnel()
            frame = _masked(b"early")
            client.send(frame)
            assert await _recv(upstream, len(frame)) == frame
            assert tunnel.spliced is None and "data_received" in vars(tunnel.client_side)
            refs = [weakref.ref(x) for x in (tunnel, tunnel.client_side, tunnel.upstream_side)]
            client.close()
            await _closed_within(tunnel, 5.0)
            assert tunnel.closed
        del tunnel
        await asyncio.sleep(0.05)  # the transports' connection_lost, the loop's cancelled handles
        assert [r() for r in refs] == [None] * len(refs)
        for s in (client, upstream):
            s.close()

    gc.disable()
    try:
        _run(scenario())
    finally:
        gc.enable()
