"""Sending a request body to the upstream, as fast as both ends allow.

The body is a ``RequestBody`` (ngxws.http.body): complete in memory or a
temp file when ``proxy_request_buffering`` is on, a pipe fed by the client
when it is off.  Each piece goes out as the upstream's socket takes it: a
full write buffer waits in ``UpstreamResponse.drain()``, and a write that
stays blocked for ``proxy_send_timeout`` ends the request as nginx's
ngx_http_upstream_send_request() timer does ("upstream timed out ... while
sending request to upstream", 504).  A streamed chunked body goes out
re-chunked, ended by the last chunk, as ngx_http_proxy_body_output_filter()
sends it to an HTTP/1.1 upstream.

``client_body_timeout`` is the client side's: ``ReadTimer``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from ngxws.config.model import Location, Server
from ngxws.http.body import RequestBody
from ngxws.http.request import RequestHead
from ngxws.proxy.deadline import within
from ngxws.proxy.upstream_response import UpstreamResponse
from ngxws.running import running_loop

# one read of a temp file / one piece of a streamed body (nginx reads its
# temp file into client_body_buffer_size buffers; a bigger piece costs
# fewer loop turns and stays bounded)
_PIECE = 64 * 1024


async def send_body(
    transport: asyncio.Transport,
    response: UpstreamResponse,
    body: RequestBody,
    chunked: bool,
    send_timeout: float,
) -> None:
    """Write ``body`` to the upstream until it is all sent.

    Raises ``asyncio.TimeoutError`` (proxy_send_timeout) or
    ``ConnectionError`` (the upstream went away)."""
    loop = running_loop()
    while True:
        data = body.take(_PIECE)
        if data:
            if transport.is_closing():
                raise ConnectionError("upstream closed the connection")
            if chunked:
                transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
            else:
                transport.write(data)
            await within(response.drain(), send_timeout)
            continue
        if body.complete or body.closed:
            break
        # streaming: the client has not sent more yet (client_body_timeout
        # runs on the client side)
        waiter: asyncio.Future[None] = loop.create_future()
        body.on_data = functools.partial(_wake, waiter)
        try:
            await waiter
        finally:
            body.on_data = None
    if chunked and body.complete and not transport.is_closing():
        transport.write(b"0\r\n\r\n")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def open_body(head: RequestHead, scope: Location | Server, proxied: bool) -> RequestBody | None:
    """The body store for a request that has one (None: no body).

    Streamed only where ngx_http_proxy_handler() sets request_body_no_buffering:
    ``proxy_request_buffering off`` and, for a chunked body, an HTTP/1.1
    upstream (to an HTTP/1.0 one nginx must send a length, so it buffers)."""
    chunked = head.header("transfer-encoding") is not None
    declared = head.header("content-length")
    length = declared.strip() if declared is not None else ""
    if not chunked and not (length.isdigit() and int(length) > 0):
        return None
    # (nor with proxy_set_body: its text is sent, the client's body read whole first)
    streaming = proxied and not scope.proxy.request_buffering and scope.proxy.set_body is None and (
        not chunked or scope.proxy.http_version == "1.1"
    )
    return RequestBody(scope.client_body_buffer_size, scope.client_body_temp_path, streaming)


def upstream_framing(head: RequestHead, body: RequestBody | None) -> tuple[int | None, bool]:
    """(Content-Length, chunked) of the body nginx sends upstream: a buffered
    body goes with its length (a chunked one de-chunked); a streamed one with
    the client's Content-Length, or chunked if the rest is still to come."""
    if body is None:
        has = head.header("content-length") is not None or head.header("transfer-encoding")
        return (0 if has else None), False
    if not body.streaming or (body.complete and body.size <= body.buffer_size):
        # ngx_http_proxy_create_request(): chunked only while the body is
        # still being read ("r->reading_body"); one the first read took
        # whole (it came with the head and fits the buffer) goes with its length
        return body.size, False
    if head.header("transfer-encoding") is not None:
        return None, True
    return int(head.header("content-length") or 0), False


def forget(sender: asyncio.Task[None] | None, body: RequestBody | None) -> None:
    """The request is over: stop sending, give the memory / temp file back."""
    if sender is not None:
        if sender.done():
            if not sender.cancelled():
                sender.exception()  # seen: no "never retrieved" warning
        else:
            sender.cancel()
    if body is not None:
        body.close()


class ReadTimer:
    """``client_body_timeout``: "set only for a period between two successive
    read operations".  One timer per body, re-armed lazily: a read only notes
    the time (``touch``), the timer checks it when it fires.  While ngxws
    itself stops reading (a pipelined request waits, or the upstream is
    slower than the client) the client is not stalling: the clock restarts."""

    __slots__ = ("seconds", "last", "_transport", "_expired", "_handle", "_loop")

    def __init__(self, transport: asyncio.Transport, seconds: float, expired: Callable[[], None]) -> None:
        self._loop = running_loop()
        self.seconds = seconds
        self.last = self._loop.time()
        self._transport = transport
        self._expired = expired
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(seconds, self._fire)

    def touch(self) -> None:
        self.last = self._loop.time()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        now = self._loop.time()
        if not self._transport.is_reading():
            self.last = now
        left = self.last + self.seconds - now
        if left > 0:
            self._handle = self._loop.call_later(left, self._fire)
            return
        self._handle = None
        self._expired()
