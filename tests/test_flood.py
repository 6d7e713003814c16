"""A logged flood: the worker stays responsive, and a fast stop loses no ws_log line.

Many tunnels write small client frames as fast as ngxws takes them, with a
``ws_log`` line for every frame.  While that runs, the stats page and a new
upgrade + echo must be answered promptly (a generous bound: the real
latencies are ``make bench`` W8's business).  Then SIGTERM: the master must
exit on its own (no worker killed after the grace period), and every frame
that reached the backend must have its line on disk -- ngxws writes a
frame's line before it forwards the frame, so ``lines >= frames the backend
got``; and no line can exist for a frame no client sent.

Backend, flood clients and probes are raw asyncio protocols in the test's
own loop (frames built by hand, counted by size: every flood frame has the
same length).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import pytest
from harness import (
    Ngxws,
    free_port,
    mask_frame,
    parse_stats,
    switching_protocols,
    upgrade_request,
    ws_conf,
)

FRAME = mask_frame(0x1, b"x" * 16)  # 22 bytes on the wire
BATCH = FRAME * (65536 // len(FRAME))
PROBE = mask_frame(0x1, b"probe")
PROBE_REPLY = b"\x81\x05probe"
PROMPT = 2.0  # generous: "answered during the flood", not a latency target


class Backend(asyncio.Protocol):
    """Answers the upgrade, then counts the bytes of every flood connection;
    on ``/echo`` answers one fixed probe frame."""

    received: dict[int, int] = {}
    open_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.head = b""
        self.upgraded = False
        self.echo = False
        self.n = 0
        Backend.open_count += 1

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            self.transport.write(switching_protocols(head))  # type: ignore[attr-defined]
            self.upgraded = True
            self.echo = head.startswith(b"GET /echo ")
            Backend.received[id(self)] = 0
        self.n += len(data)
        if self.echo:
            if self.n >= len(PROBE):
                self.n -= len(PROBE)
                self.transport.write(PROBE_REPLY)  # type: ignore[attr-defined]
            return
        Backend.received[id(self)] = self.n

    def connection_lost(self, exc: Exception | None) -> None:
        Backend.open_count -= 1


class Flooder(asyncio.Protocol):
    """Upgrades, then writes ``BATCH`` whenever the transport takes more."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.upgraded = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.paused = False
        self.stopped = False
        self.sent_frames = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.upgraded.done():
            return
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.upgraded.set_result(self.buf.startswith(b"HTTP/1.1 101"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.stopped = True
        if not self.upgraded.done():
            self.upgraded.set_result(False)

    def pump(self) -> None:
        for _ in range(4):
            if self.paused or self.stopped or self.transport.is_closing():
                return
            self.transport.write(BATCH)
            self.sent_frames += len(BATCH) // len(FRAME)
        asyncio.get_running_loop().call_later(0.001, self.pump)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()


async def _stat_get(port: int) -> tuple[float, str]:
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /websocket_status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    body = await reader.read(-1)
    writer.close()
    assert body.startswith(b"HTTP/1.1 200"), body[:80]
    return time.monotonic() - start, body.partition(b"\r\n\r\n")[2].decode()


async def _upgrade_echo(port: int) -> float:
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request("/echo"))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head[:80]
    writer.write(PROBE)
    assert await reader.readexactly(len(PROBE_REPLY)) == PROBE_REPLY
    elapsed = time.monotonic() - start
    writer.transport.abort()
    return elapsed


def _conf(port: int, backend: int, log: Path, workers: int) -> str:
    log_lines = (
        f'ws_log {log}; ws_log_format "$ws_packet_source"; '
        'ws_log_format open "open"; ws_log_format close "close";'
    )
    main = f"worker_processes {workers};\npid ngxws.pid;\nerror_log error.log notice;\n"
    return ws_conf(port, backend, log_lines, main_extra=main)


@pytest.mark.parametrize("workers", [1, 2])
def test_logged_flood_stays_responsive_and_stop_keeps_every_line(
    tmp_path: Path, workers: int
) -> None:
    tunnels = 32
    log = tmp_path / "ws.log"
    backend_sock = socket.socket()
    backend_sock.bind(("127.0.0.1", 0))
    backend_sock.listen(256)
    port = free_port()
    (tmp_path / "nginx.conf").write_text(
        _conf(port, backend_sock.getsockname()[1], log, workers)
    )
    server = Ngxws(tmp_path / "nginx.conf", tmp_path, port)
    Backend.received = {}
    Backend.open_count = 0

    async def scenario() -> tuple[list[Flooder], list[float], list[float], str]:
        loop = asyncio.get_running_loop()
        backend = await loop.create_server(Backend, sock=backend_sock)
        flooders: list[Flooder] = []
        for _ in range(tunnels):
            _, f = await loop.create_connection(
                lambda: Flooder(upgrade_request("/flood")), "127.0.0.1", port
            )
            flooders.append(f)
        assert all(await asyncio.wait_for(asyncio.gather(*(f.upgraded for f in flooders)), 10))
        for f in flooders:
            f.pump()
        await asyncio.sleep(1.5)  # the flood is on: every tunnel has been logging for a while
        stat_times: list[float] = []
        echo_times: list[float] = []
        page = ""
        for _ in range(10):
            elapsed, page = await asyncio.wait_for(_stat_get(port), 30)
            stat_times.append(elapsed)
            echo_times.append(await asyncio.wait_for(_upgrade_echo(port), 30))
        # Fast stop in the middle of the flood.
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while server.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for f in flooders:
            f.stopped = True
        # The backend reads what the proxy forwarded, up to the proxy's close.
        deadline = time.monotonic() + 10
        while Backend.open_count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        backend.close()
        for f in flooders:
            f.transport.abort()
        return flooders, stat_times, echo_times, page

    try:
        flooders, stat_times, echo_times, page = asyncio.run(
            asyncio.wait_for(scenario(), 120)
        )
    finally:
        code, _, err = server.stop(timeout=5)
        backend_sock.close()
    error_log = (tmp_path / "error.log").read_text()
    assert code == 0, err
    assert "did not exit in time" not in error_log, error_log[-2000:]
    assert max(stat_times) < PROMPT, stat_times
    assert max(echo_times) < PROMPT, echo_times
    stats = parse_stats(page)
    assert stats["client_frames"] > 0 and stats["active"] >= tunnels

    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""  # whole lines only
    counts: dict[bytes, int] = {}
    for line in lines[:-1]:
        counts[line] = counts.get(line, 0) + 1
    assert set(counts) <= {b"client", b"upstream", b"open", b"close"}, set(counts)
    backend_frames = sum(n // len(FRAME) for n in Backend.received.values())
    sent_frames = sum(f.sent_frames for f in flooders) + 10  # + the probes' frames
    assert backend_frames > 0
    # every frame that reached the backend was logged; nothing logged that was not sent
    assert backend_frames <= counts[b"client"] <= sent_frames, (
        backend_frames,
        counts[b"client"],
        sent_frames,
    )
    assert counts[b"upstream"] == 10  # the probes' echoes
    assert counts[b"open"] == counts[b"close"] == tunnels + 10

