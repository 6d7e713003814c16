"""Reading the upstream's response head (and, for plain HTTP, its body).

The same protocol object serves both cases: for a websocket handshake the
upstream's 101 ends the HTTP phase and the transport is handed to a
``Tunnel`` with whatever bytes came after the head; for a plain response the
body is streamed to the client as it arrives (backpressure both ways).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol, cast

import httptools

from ngxws.running import running_loop

# Response headers nginx does not pass on from the upstream: the framing
# and hop-by-hop ones, always (it writes its own) ...
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"})
# ... and ngx_http_proxy_hide_headers, which proxy_pass_header can let through
# (and proxy_hide_header adds to)
HIDDEN_BY_DEFAULT = frozenset(
    {
        "date",
        "server",
        "x-pad",
        "x-accel-expires",
        "x-accel-redirect",
        "x-accel-limit-rate",
        "x-accel-buffering",
        "x-accel-charset",
    }
)
HIDDEN_RESPONSE_HEADERS = HOP_BY_HOP | HIDDEN_BY_DEFAULT
# what nginx writes of its own unless proxy_pass_header lets the upstream's through
OWN_HEADERS = frozenset({"server", "date"})


def hidden_headers(hide: tuple[str, ...], passed: tuple[str, ...]) -> frozenset[str]:
    """ngx_http_upstream_hide_headers_hash(): what a location does not pass on."""
    if not hide and not passed:
        return HIDDEN_RESPONSE_HEADERS
    return HOP_BY_HOP | ((HIDDEN_BY_DEFAULT | {h.lower() for h in hide}) - {p.lower() for p in passed})


class SwitchHead(Protocol):
    """What a 101 is read for: the status, reason, headers and the bytes
    after the head (an ``UpstreamResponse``, or ``head101``'s fast read)."""

    @property
    def status(self) -> int: ...

    @property
    def reason(self) -> str: ...

    @property
    def headers(self) -> list[tuple[str, str]]: ...

    @property
    def leftover(self) -> bytes: ...


class UpstreamResponse(asyncio.Protocol):
    """httptools callbacks for one upstream response."""

    def __init__(self, head_only: bool, read_timeout: float | None = None) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        # proxy_read_timeout between two reads of the body (nginx arms it on
        # the upstream's read event while it waits for data)
        self._read_timeout = read_timeout
        self._last_read = 0.0
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.reason = ""
        self.version = "1.1"
        self.headers: list[tuple[str, str]] = []
        self.content_length: int | None = None
        self.chunked = False
        self.leftover = b""
        self.upgraded = False
        loop = running_loop()
        self.head_done: asyncio.Future[None] = loop.create_future()
        self.body_done: asyncio.Future[None] = loop.create_future()
        # Set by the client side once the head is sent: where body bytes go.
        self.on_body_chunk: Callable[[bytes], None] | None = None
        self._pending_body: list[bytes] = []
        self.on_pause: Callable[[], None] | None = None
        self.on_resume: Callable[[], None] | None = None
        self.error: str | None = None
        self._write_paused = False
        self._lost = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # a 101 passed on as an answer (unasked_switch): raw bytes until EOF
        self._raw = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._last_read = time.monotonic()
        if self._raw:
            self.on_body(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.leftover = data[exc.args[0] :]
            self.upgraded = True
            if self.transport is not None:
                self.transport.pause_reading()
            self._finish_head()
        except httptools.HttpParserError as exc:
            self._fail(f"upstream sent invalid response: {exc}")

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake_writer()
        if not self.head_done.done():
            self._fail("upstream prematurely closed connection while reading response header")
            return
        if not self.body_done.done():
            if self._raw or (self.content_length is None and not self.chunked):
                # close-delimited body: EOF is its end
                self.body_done.set_result(None)
            else:
                self.error = "upstream prematurely closed connection while reading upstream"
                self.body_done.set_result(None)

    def pause_writing(self) -> None:
        # the request body fills the upstream's socket: the sender waits in drain()
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    async def drain(self) -> None:
        """Return once the transport takes more (at once if it does now);
        ConnectionError once the upstream is gone."""
        if self._lost:
            raise ConnectionError("upstream closed the connection")
        if not self._write_paused:
            return
        waiter = self._drain_waiter = running_loop().create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None
        if self._lost:
            raise ConnectionError("upstream closed the connection")

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        n = name.decode("latin-1")
        v = value.decode("latin-1")
        low = n.lower()
        if low == "content-length":
            try:
                self.content_length = int(v)
            except ValueError:
                self.content_length = None
        elif low == "transfer-encoding" and "chunked" in v.lower():
            self.chunked = True
        self.headers.append((n, v))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.version = self._parser.get_http_version()
        if self.transport is not None and self.status != 101:
            self.transport.pause_reading()  # resumed once the client has the head
        if self._head_only or self.status in (204, 304) or 100 <= self.status < 200:
            self.content_length = 0
            self.chunked = False
            if self.status != 101:
                self._finish_head()
                self.body_done.set_result(None) if not self.body_done.done() else None
                return
        if self.status != 101:
            self._finish_head()

    def on_body(self, body: bytes) -> None:
        if not body:
            return
        if self.on_body_chunk is not None:
            self.on_body_chunk(body)
        else:
            self._pending_body.append(body)

    def on_message_complete(self) -> None:
        if self.status == 101:
            return  # the upgrade exception follows
        if not self.body_done.done():
            self.body_done.set_result(None)

    def read_rest_as_body(self) -> None:
        """After a 101 the parser stops: what follows the head, and every
        later read until the upstream closes, is the body (unasked_switch)."""
        self._raw = True
        self.content_length = None
        self.chunked = False
        if self.leftover:
            self._pending_body.append(self.leftover)
            self.leftover = b""
        if self._lost:  # it closed already: that was the end, not an error
            self.error = None
            if not self.body_done.done():
                self.body_done.set_result(None)

    def start_body(self, sink: Callable[[bytes], None]) -> None:
        """Client has the head: stream the body to ``sink`` from now on."""
        self.on_body_chunk = sink
        for chunk in self._pending_body:
            sink(chunk)
        self._pending_body.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        if self._read_timeout is not None and not self.body_done.done():
            self._last_read = time.monotonic()
            timer = running_loop().call_later(self._read_timeout, self._check_idle)
            self.body_done.add_done_callback(lambda _: timer.cancel())

    def _check_idle(self) -> None:
        if self.body_done.done() or self._read_timeout is None or self.transport is None:
            return
        now = time.monotonic()
        if not self.transport.is_reading():  # paused for a slow client: no read is awaited
            self._last_read = now
        idle = now - self._last_read
        if idle >= self._read_timeout:
            self._fail("upstream timed out (110: Connection timed out) while reading upstream")
            return
        timer = running_loop().call_later(self._read_timeout - idle, self._check_idle)
        self.body_done.add_done_callback(lambda _: timer.cancel())

    def _finish_head(self) -> None:
        if not self.head_done.done():
            self.head_done.set_result(None)

    def _fail(self, why: str) -> None:
        self.error = why
        if not self.head_done.done():
            self.head_done.set_exception(ConnectionError(why))
        if not self.body_done.done():
            self.body_done.set_result(None)
        if self.transport is not None:
            self.transport.close()
