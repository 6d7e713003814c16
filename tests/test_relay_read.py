"""The unlogged relay's read handler, in C (``_speedups.Relay``) and in Python
(``_Side._read_unlogged``, what runs without the extension): the same bytes
forwarded, the same counts, a large read charged to the turn and a small
one not, a lost stream closed, and a close frame of ours that waits for the
end of the upstream's frame (which takes the side off the fast path).

Driven on a real ``Tunnel`` over socket pairs on uvloop (the harness of
``test_tunnel_timeouts``)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from test_tunnel_timeouts import _closed_within, _run, _tunnel

from ngxws.proxy import tunnel as tunnel_module
from ngxws.proxy.turns import SMALL_READ, UNLOGGED_SHIFT
from ngxws.ws.frames import CRelay

HANDLERS = [
    pytest.param("c", id="c", marks=pytest.mark.skipif(CRelay is None, reason="C extension not built")),
    pytest.param("py", id="py"),
]


def _masked(payload: bytes, opcode: int = 0x2) -> bytes:
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload  # zero mask


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    sock.setblocking(True)
    sock.settimeout(5)
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk, "closed early"
        got += chunk
    return got


@pytest.fixture(params=HANDLERS)
def handler(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "py":
        monkeypatch.setattr(tunnel_module, "CRelay", None)
    return str(request.param)


def test_frames_are_forwarded_and_counted_and_only_large_reads_charged(handler: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(30, 30)
        side = tunnel.client_side
        assert "data_received" not in vars(side)  # an idle side holds no handler
        turns = side.turns
        small = _masked(b"x" * 100)
        left = turns.left
        side.data_received(small)  # the first read takes the fast path
        read = side.data_received
        assert (type(read).__name__ == "builtin_function_or_method") == (handler == "c")
        read(small)
        assert turns.left == left  # small reads are not charged
        assert _recv_exactly(upstream, 2 * len(small)) == 2 * small
        big = _masked(b"y" * 120) * (SMALL_READ // 100)
        assert len(big) > SMALL_READ
        read(big)
        assert turns.left == left - (len(big) >> UNLOGGED_SHIFT)
        assert _recv_exactly(upstream, len(big)) == big
        frames = 2 + SMALL_READ // 100
        slots = worker.counters.array.tolist()
        assert slots[1:4] == [frames, 200 + 120 * (frames - 2), 2 * len(small) + len(big)]
        assert side.tracker.reads == 3
        tunnel.close()
        client.close()
        upstream.close()

    _run(scenario())


def test_a_spent_turn_stops_reading_until_the_next(handler: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(30, 30)
        side = tunnel.client_side
        turns = side.turns
        turns.left = 1  # this turn is all but spent
        big = _masked(b"z" * 120) * 40
        side.data_received(big)
        assert turns.left <= 0 and side.queued and turns.waiting == 1
        await asyncio.sleep(0.05)  # the next turn refills and lets the side read again
        assert not side.queued and turns.left > 0
        assert _recv_exactly(upstream, len(big)) == big
        tunnel.close()
        client.close()
        upstream.close()

    _run(scenario())


def test_a_stream_that_cannot_be_followed_closes_the_tunnel(handler: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(30, 30)
        bad = bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0"  # length's top bit set
        tunnel.client_side.data_received(bad)
        assert tunnel.closed and tunnel.closer == "ngxws_error"
        assert worker.info == ["websocket tunnel closed: frame length cannot be followed"]
        client.close()
        upstream.close()

    _run(scenario())


def test_a_close_of_ours_waits_for_the_end_of_the_upstream_frame(handler: str) -> None:
    async def scenario() -> None:
        tunnel, worker, client, upstream = await _tunnel(30, 30)
        frame = bytes((0x82, 100)) + b"u" * 100  # unmasked, from the upstream
        upstream.send(frame[:50])
        await asyncio.sleep(0.05)
        assert _recv_exactly(client, 50) == frame[:50]
        tunnel.close_with(4001, "Connection is Aged")
        assert not tunnel.closed  # mid-frame: the close frame waits
        assert "data_received" not in vars(tunnel.upstream_side)  # off the fast path
        upstream.send(frame[50:])
        await _closed_within(tunnel, 3.0)
        assert tunnel.closed and tunnel.closer == "ngxws_age"
        tail = len(frame) - 50
        rest = _recv_exactly(client, tail + 2 + 2 + len("Connection is Aged"))
        assert rest[:tail] == frame[50:]
        assert rest[tail:] == bytes((0x88, 20)) + (4001).to_bytes(2, "big") + b"Connection is Aged"
        client.close()
        upstream.close()

    _run(scenario())
