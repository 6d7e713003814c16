"""A 101 the client never asked for, passed on as nginx passes it.

nginx enters upgraded mode only when the client's request carried an
``Upgrade`` header (``ngx_http_proxy_process_header``: ``if
(r->headers_in.upgrade) u->upgrade = 1``).  A location that sets
``Upgrade`` itself (``proxy_set_header Upgrade "websocket"`` on every
request, as some Jupyter notes do) gets a 101 for a plain GET; nginx then
sends that 101 like any other answer: the status line, its own Server and
Date, ``Connection: upgrade`` (``ngx_http_header_filter`` writes it for
every 101), the upstream's headers with ``Upgrade``, and as the body every
byte the upstream sends until it closes -- not chunked
(``ngx_http_chunked_header_filter`` leaves 1xx alone), not a tunnel (the
client's later bytes are never relayed) -- then the client connection is
closed.  Until ``postpone_output`` bytes (1460) are there, or the upstream
has closed, ngx_http_write_filter holds the output back: a backend that
switches and then waits for frames that never come leaves the client
without a byte, the head included, until it closes.

Nothing goes from the client to the upstream after the request, so this
is not the h2c smuggling ``upgrade.refuse_switch`` guards against (that is
a 101 to a request that did carry ``Upgrade``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ngxws.config.model import Location, Server
from ngxws.http.request import RequestHead
from ngxws.proxy.handshake import switching_head
from ngxws.proxy.header_phase import filtered
from ngxws.proxy.response_pass import release_upstream
from ngxws.proxy.upstream_response import UpstreamResponse, hidden_headers

if TYPE_CHECKING:
    from ngxws.proxy.context import RequestIO

# ngx_http_write_filter's default postpone_output
POSTPONE_OUTPUT = 1460


class Postponed:
    """Output held back until ``POSTPONE_OUTPUT`` bytes are there (or
    ``flush``), then written through as it comes."""

    __slots__ = ("_write", "_held", "_size")

    def __init__(self, write: Callable[[bytes], object], first: bytes) -> None:
        self._write = write
        self._held: list[bytes] | None = [first]
        self._size = len(first)

    def __call__(self, data: bytes) -> None:
        if self._held is None:
            self._write(data)
            return
        self._held.append(data)
        self._size += len(data)
        if self._size >= POSTPONE_OUTPUT:
            self.flush()

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._write(b"".join(held))


def unasked(head: RequestHead, response: UpstreamResponse) -> bool:
    """A 101 nginx passes on as an answer: the request had no ``Upgrade``."""
    return response.status == 101 and head.header("upgrade") is None


async def pass_unasked_switch(
    conn: RequestIO, head: RequestHead, server: Server, loc: Location, response: UpstreamResponse
) -> bool:
    """Send the 101 head, then the upstream's bytes until it closes; the
    client connection is not kept (the answer is close-delimited)."""
    answer = switching_head(
        response, lambda status, h: filtered(conn, loc, server, head, status, h, proxied=True),
        hidden_headers(loc.proxy.hide_headers, loc.proxy.pass_headers),
    )
    transport = conn.transport
    assert transport is not None
    conn.send_timer.seconds = loc.send_timeout
    out = Postponed(transport.write, answer)
    if head.method != "HEAD":  # a HEAD's answer is its head (r->header_only)
        response.read_rest_as_body()
        response.start_body(out)
        await response.body_done
    out.flush()
    release_upstream(conn, response)
    return False
