"""Passing an upstream's (non-101) answer to the client, and ``send_timeout``.

The head is rewritten as nginx frames it (its own Server and Date, hop-by-hop
headers dropped, chunked to an HTTP/1.1 client when the length is unknown,
close-delimited to an HTTP/1.0 one); the body is streamed as it arrives,
with backpressure: while the client's write buffer is full the upstream is
not read (``ClientConnection.pause_writing``).

``send_timeout`` (ngx_http_writer() / the upstream's downstream write timer):
a write to the client that stays blocked that long ends the request -- the
client connection is closed, and with it the upstream one ("client timed out
... while sending to client").  As in the tunnel (see ``tunnel``), the timer
runs from the transport's ``pause_writing`` to its ``resume_writing``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ngxws.http.request import RequestHead
from ngxws.http.responses import response_head, status_line
from ngxws.proxy.upstream_response import HIDDEN_RESPONSE_HEADERS, UpstreamResponse

if TYPE_CHECKING:
    from ngxws.proxy.context import RequestIO


def _status_line(override: int | None, response: UpstreamResponse) -> str:
    if override is not None and override != response.status:
        return status_line(override)
    return f"HTTP/1.1 {response.status} {response.reason}".rstrip()


async def pass_response(
    conn: RequestIO,
    head: RequestHead,
    status_override: int | None,
    response: UpstreamResponse,
    keep: bool,
    headers_filter: Callable[[int, list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
) -> bool:
    """Stream the answer to the client; return whether the connection stays open."""
    known_length = response.content_length is not None and not response.chunked
    chunked = not known_length and head.version == "1.1"
    if not known_length and not chunked:
        keep = False  # HTTP/1.0 client, unknown length: close-delimited
    # WWW-Authenticate of a 401/403 that error_page sent here: nginx keeps it in headers_out
    headers = [*conn.error_headers, *((n, v) for n, v in response.headers if n.lower() not in HIDDEN_RESPONSE_HEADERS)]
    if headers_filter is not None:  # add_header / expires (proxy/header_phase.py)
        headers = headers_filter(status_override or response.status, headers)
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    conn.write(
        response_head(
            _status_line(status_override, response), headers, connection="keep-alive" if keep else "close"
        )
    )
    transport = conn.transport
    assert transport is not None
    if chunked and head.method != "HEAD":
        response.start_body(lambda b: transport.write(b"%x\r\n%b\r\n" % (len(b), b)))
    else:
        response.start_body(transport.write)
    await response.body_done
    if chunked and head.method != "HEAD" and response.error is None:
        # an upstream error (proxy_read_timeout...) leaves the answer truncated
        conn.write(b"0\r\n\r\n")
    if conn.upstream_transport is not None:
        conn.upstream_transport.close()
        conn.upstream_transport = None
    if response.error is not None:
        conn.worker.log_error(response.error)
        return False
    return keep


class SendTimer:
    """``send_timeout`` for one client connection's blocked writes."""

    __slots__ = ("seconds", "_handle")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._handle: asyncio.TimerHandle | None = None

    def start(self, expired: Callable[[], None]) -> None:
        """The write buffer filled: the client has ``seconds`` to drain it."""
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.seconds, expired)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
