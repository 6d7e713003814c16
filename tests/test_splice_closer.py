"""Who closed a spliced tunnel, now that the C relay notes a direction's
first close frame (``Splice.first_close``) instead of calling Python for it.

The rule is unchanged (breakdown.CLOSERS): the first close frame or ngxws
reason wins.  A close frame the relay read counts from the moment it was
read, so an ngxws reason that comes later (conn_age, a timeout, a stop)
does not take its place, and one that came earlier keeps its own."""

from __future__ import annotations

import asyncio

import pytest
from test_splice import _close, _recv, _run, _spliced, _unmasked, _until


@pytest.mark.parametrize("first", ["client", "upstream"])
def test_close_frame_then_ngxws_reason(first: str) -> None:
    """A close frame read by the relay, then a timeout: the frame's sender closed."""

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        if first == "client":
            frame = _close(1000, b"bye")
            client.send(frame)
            assert await _recv(upstream, len(frame)) == frame
        else:
            frame = _close(1001, b"going", masked=False)
            upstream.send(frame)
            assert await _recv(client, len(frame)) == frame
        assert tunnel.spliced is not None and tunnel.spliced.relay.first_close == (0 if first == "client" else 1)
        assert tunnel.closer == ""  # noted in C, not reported
        tunnel.closed_by("ngxws_timeout")
        tunnel.close(reason="upstream timed out")
        assert tunnel.final_closer() == first
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_ngxws_reason_then_close_frames() -> None:
    """A close of ours waiting for the upstream's frame end, then both close
    frames: ngxws's reason came first and stays."""

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        frame = _unmasked(b"z" * 60)
        upstream.send(frame[:20])  # in the middle of a frame: the close of ours waits
        assert await _recv(client, 20) == frame[:20]
        tunnel.close_with(4001, "Connection is Aged")
        assert not tunnel.closed
        c_close = _close(1000, b"bye")
        client.send(c_close)  # reading the client stopped: not relayed now
        await asyncio.sleep(0.1)
        upstream.send(frame[20:])
        await _until(lambda: tunnel.closed)
        assert tunnel.final_closer() == "ngxws_age"
        for s in (client, upstream):
            s.close()

    _run(scenario())


def test_first_of_two_close_frames() -> None:
    """Both directions' close frames: the relay keeps the first one's direction."""

    async def scenario() -> None:
        tunnel, worker, client, upstream = await _spliced()
        u_close, c_close = _close(1001, b"going", masked=False), _close(1000, b"bye")
        upstream.send(u_close)
        assert await _recv(client, len(u_close)) == u_close
        client.send(c_close)
        assert await _recv(upstream, len(c_close)) == c_close
        assert tunnel.spliced is not None and tunnel.spliced.relay.first_close == 1
        client.close()
        await _until(lambda: tunnel.closed)
        assert tunnel.final_closer() == "upstream"
        upstream.close()

    _run(scenario())
