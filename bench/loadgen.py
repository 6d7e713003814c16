"""The load generator's clients: raw ``asyncio.Protocol`` objects on uvloop.

Each client writes a pre-built upgrade request, checks for ``101``, then does
what its workload needs with frames encoded before the first connection was
opened (``wire.py``).  Nothing here builds a frame on the hot path:

- :class:`FloodClient` writes one pre-joined batch of frames per ``write()``
  and stops when the transport calls ``pause_writing`` (until ``resume_writing``).
- :class:`EchoClient` keeps exactly one frame in flight and times each round trip.
- :class:`ChurnClient` sends one frame and a close frame, waits for the
  server's close frame and the end of the connection.
- :class:`IdleClient` only upgrades; :func:`tick_frames` sends W7's paced frames.

:func:`open_clients` opens many of them with bounded concurrency and timeouts.
Flood and echo clients then wait for ``start()``, called once all clients of a
workload are open: a client that floods while others still upgrade would
measure the proxy's fairness towards new connections, not its throughput.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 16384
_LINGER_RESET = struct.pack("ii", 1, 0)


class UpgradeFailed(Exception):
    """The proxy answered the upgrade with something other than 101, or not at all."""


@dataclass
class LoadStats:
    """Client-side counters shared by the clients of one workload."""

    round_trips: int = 0
    connections_done: int = 0
    errors: int = 0
    recording: bool = False
    latencies: list[float] = field(default_factory=list)
    last_error: str = ""


class UpgradingClient(asyncio.Protocol):
    """Base client: the hand-made HTTP upgrade, then :meth:`on_open` / :meth:`on_ws_data`."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self._head = bytearray()
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.is_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.is_open:
            self.on_ws_data(data)
            return
        self._head += data
        end = self._head.find(_HEAD_END)
        if end < 0:
            if len(self._head) > _MAX_HEAD:
                self._fail_upgrade("response head too long")
            return
        status = bytes(self._head[:end]).split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.1 101"):
            self._fail_upgrade(status.decode("latin-1")[:80] or "empty response")
            return
        rest = bytes(self._head[end + 4 :])
        self._head.clear()
        self.is_open = True
        if not self.upgraded.done():
            self.upgraded.set_result(None)
        self.on_open()
        if rest:
            self.on_ws_data(rest)

    def _fail_upgrade(self, why: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(UpgradeFailed(why))
        assert self.transport is not None
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(
                UpgradeFailed(f"connection closed before 101 ({exc or 'EOF'})")
            )
        if not self.closed.done():
            self.closed.set_result(None)
        self.is_open = False

    def on_open(self) -> None:
        """Called once, right after the 101."""

    def on_ws_data(self, data: bytes) -> None:
        """Bytes from the server after the 101."""


class IdleClient(UpgradingClient):
    """Upgrades and holds the connection (W6); whatever arrives is ignored."""


class FloodClient(UpgradingClient):
    """Writes a pre-joined batch of frames as fast as the transport takes them (W1-W3)."""

    # Writes per loop turn before yielding, so one client cannot starve the others.
    WRITES_PER_TURN = 4

    def __init__(self, request: bytes, batch: bytes) -> None:
        super().__init__(request)
        self._batch = batch
        self._paused = False
        self._started = False
        self._stopped = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.set_write_buffer_limits(high=max(4 * len(self._batch), 1 << 20))

    def start(self) -> None:
        """Begin the flood (called once every client of the workload is open)."""
        self._started = True
        self._pump()

    def stop(self) -> None:
        """Stop writing (the transport is aborted right after by the workload)."""
        self._stopped = True

    def _pump(self) -> None:
        transport = self.transport
        assert transport is not None
        if not self._started:
            return
        for _ in range(self.WRITES_PER_TURN):
            if self._paused or self._stopped or transport.is_closing():
                return
            transport.write(self._batch)
        asyncio.get_running_loop().call_soon(self._pump)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()


class EchoClient(UpgradingClient):
    """One frame in flight; each complete echo is a round trip, timed (W4)."""

    def __init__(self, request: bytes, frame: bytes, reply_size: int, stats: LoadStats) -> None:
        super().__init__(request)
        self._frame = frame
        self._reply_size = reply_size
        self._stats = stats
        self._pending = 0
        self._sent_at = 0.0
        self._stopped = False

    def start(self) -> None:
        """Send the first frame (called once every client of the workload is open)."""
        self._send()

    def stop(self) -> None:
        """Send no further frame."""
        self._stopped = True

    def _send(self) -> None:
        if self._stopped:
            return
        assert self.transport is not None
        self._sent_at = time.perf_counter()
        self.transport.write(self._frame)

    def on_ws_data(self, data: bytes) -> None:
        self._pending += len(data)
        if self._pending < self._reply_size:
            return
        now = time.perf_counter()
        self._pending -= self._reply_size
        stats = self._stats
        stats.round_trips += 1
        if stats.recording:
            stats.latencies.append(now - self._sent_at)
        self._send()


class ChurnClient(UpgradingClient):
    """Upgrade, one frame and a close frame; done when the server's close arrived and the
    connection ended (W5)."""

    def __init__(self, request: bytes, frames: bytes) -> None:
        super().__init__(request)
        self._frames = frames
        self._received = bytearray()
        self.got_close = False

    def on_open(self) -> None:
        assert self.transport is not None
        self.transport.write(self._frames)

    def on_ws_data(self, data: bytes) -> None:
        if self.got_close:
            return
        self._received += data
        # The backend sends nothing but its close frame on this path (0x88 = FIN + close).
        if len(self._received) >= 2 and self._received[0] == 0x88:
            need = 2 + (self._received[1] & 0x7F)
            if len(self._received) >= need:
                self.got_close = True
                assert self.transport is not None
                # End with RST (SO_LINGER 0): no TIME_WAIT on this leg, so the
                # churn of one cell does not fill the port space of the next.
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                self.transport.close()


ClientT = TypeVar("ClientT", bound=UpgradingClient)


async def connect(factory: Callable[[], ClientT], host: str, port: int, timeout: float) -> ClientT:
    """Open one client and wait for its 101, within ``timeout`` seconds in all."""
    loop = asyncio.get_running_loop()

    async def attempt() -> ClientT:
        _, client = await loop.create_connection(factory, host, port)
        try:
            await client.upgraded
        except BaseException:
            if client.transport is not None:
                client.transport.abort()
            raise
        return client

    return await asyncio.wait_for(attempt(), timeout)


async def open_clients(
    factory: Callable[[], ClientT],
    host: str,
    port: int,
    count: int,
    *,
    concurrency: int = 200,
    timeout: float = 10.0,
) -> list[ClientT]:
    """Open ``count`` upgraded clients, ``concurrency`` at a time; all or an exception.

    On failure every client opened so far is aborted and the first error is
    raised with how many failed.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one() -> ClientT:
        async with gate:
            return await connect(factory, host, port, timeout)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    clients = [r for r in results if isinstance(r, UpgradingClient)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        abort_all(clients)
        first = failures[0]
        raise UpgradeFailed(
            f"{len(failures)} of {count} connections failed; first: {type(first).__name__}: "
            + (str(first) or f"no 101 within {timeout:g} s")
        )
    return clients


def abort_all(clients: Sequence[UpgradingClient]) -> None:
    """Drop every connection at once, without waiting for buffered data to drain."""
    for client in clients:
        if client.transport is not None and not client.transport.is_closing():
            client.transport.abort()


async def tick_frames(
    clients: Sequence[UpgradingClient],
    frame: bytes,
    per_client_rate: float,
    stop: asyncio.Event,
    tick: float = 0.005,
) -> int:
    """Send ``frame`` to each client ``per_client_rate`` times a second until ``stop``.

    The sends are spread evenly: the n-th send overall goes to client
    ``n % len(clients)`` at ``n / total_rate`` seconds, so every client sends
    at the same steady rate and no burst lines up.  Returns frames sent.
    """
    total_rate = per_client_rate * len(clients)
    start = time.monotonic()
    sent = 0
    n_clients = len(clients)
    while not stop.is_set():
        due = int((time.monotonic() - start) * total_rate)
        while sent < due:
            transport = clients[sent % n_clients].transport
            if transport is not None and not transport.is_closing():
                transport.write(frame)
            sent += 1
        await asyncio.sleep(tick)
    return sent
