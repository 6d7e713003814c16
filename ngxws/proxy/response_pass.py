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

from ngxws.http.gzip_filter import GzipStream, compressed_headers, decide
from ngxws.http.request import RequestHead
from ngxws.http.responses import response_head, status_line
from ngxws.proxy.gzip_phase import compressing, finished
from ngxws.proxy.upstream_response import HIDDEN_RESPONSE_HEADERS, OWN_HEADERS, UpstreamResponse
from ngxws.running import running_loop

if TYPE_CHECKING:
    from ngxws.config.model import Location
    from ngxws.proxy.context import RequestIO
    from ngxws.proxy.header_phase import ProxiedHeaders


def _status_line(override: int | None, response: UpstreamResponse) -> str:
    if override is not None and override != response.status:
        return status_line(override)
    return f"HTTP/1.1 {response.status} {response.reason}".rstrip()


def intercepted(conn: RequestIO, loc: Location, response: UpstreamResponse) -> list[tuple[str, str]] | None:
    """ngx_http_upstream_intercept_errors(): with ``proxy_intercept_errors
    on``, an answer of 300 or more that an ``error_page`` of the location
    names is not passed on (the upstream connection is closed): the caller
    finalizes the request with its status.  Returns the headers kept for
    that answer (a 401's WWW-Authenticate), None when not intercepted."""
    status = response.status
    if not loc.proxy.intercept_errors or status < 300:
        return None
    if not any(status in page.codes for page in loc.error_pages):
        return None
    if conn.upstream_transport is not None:
        conn.upstream_transport.close()
        conn.upstream_transport = None
    if status != 401:
        return []
    return [(n, v) for n, v in response.headers if n.lower() == "www-authenticate"]


def _slot_first(headers: list[tuple[str, str]]) -> int:
    """Move the upstream's Content-Type and Content-Length to the front, in
    that order (ngx_http_upstream copies them into r->headers_out's own
    fields, which ngx_http_header_filter writes before Connection; the
    other headers keep their order in its list); returns how many moved."""
    moved = 0
    for name in ("content-type", "content-length"):
        at = next((i for i in range(moved, len(headers)) if headers[i][0].lower() == name), None)
        if at is not None:
            headers.insert(moved, headers.pop(at))
            moved += 1
    return moved


async def pass_response(
    conn: RequestIO,
    head: RequestHead,
    status_override: int | None,
    response: UpstreamResponse,
    keep: bool,
    proxied: ProxiedHeaders | None = None,
) -> bool:
    """Stream the answer to the client; return whether the connection stays open."""
    known_length = response.content_length is not None and not response.chunked
    chunked = not known_length and head.version == "1.1"
    if not known_length and not chunked:
        keep = False  # HTTP/1.0 client, unknown length: close-delimited
    # WWW-Authenticate of a 401/403 that error_page sent here: nginx keeps it in headers_out
    hidden = proxied.hidden() if proxied is not None else HIDDEN_RESPONSE_HEADERS
    headers = [*conn.error_headers, *((n, v) for n, v in response.headers if n.lower() not in hidden)]
    completed = None
    zipping = proxied is not None and proxied.loc.gzip.enabled
    encoded = zipping and any(n.lower() == "content-encoding" and v for n, v in headers)
    if proxied is not None:  # proxy_redirect, add_header / expires (proxy/header_phase.py)
        completed = proxied.rewrite(headers)
        headers = proxied.filter(status_override or response.status, headers)
    vary, gz = False, None
    if zipping:  # the gzip filter, after the headers filter (http/gzip_filter.py)
        assert proxied is not None
        # r->headers_out.content_length_n: the upstream's Content-Length (a HEAD's too)
        length = next((int(v) for n, v in headers if n.lower() == "content-length" and v.isdigit()), -1)
        vary, gz = decide(proxied.loc.gzip, head, status_override or response.status, headers, length, encoded)
        if gz is not None:
            headers = compressed_headers(headers)
            stream = GzipStream(gz, length, flush=not proxied.loc.proxy.buffering)
            # the length cleared: chunked (ngx_http_chunked_header_filter leaves a HEAD alone) or close-delimited
            chunked = head.version == "1.1" and head.method != "HEAD"
            keep = keep and (chunked or head.method == "HEAD")
    slots = _slot_first(headers)
    if completed is not None:  # a Location the header filter completed: its own slot
        at = next((i for i, h in enumerate(headers) if h is completed), None)
        if at is not None:
            headers.insert(slots, headers.pop(at))
            slots += 1
    if chunked:
        headers.insert(slots, ("Transfer-Encoding", "chunked"))
        slots += 1
    conn.write(
        response_head(
            _status_line(status_override, response), headers, connection="keep-alive" if keep else "close",
            fixed=slots, own=OWN_HEADERS <= hidden, vary=vary,
        )
    )  # fmt: skip
    transport = conn.transport
    assert transport is not None
    if gz is not None and head.method != "HEAD":
        response.start_body(compressing(stream, transport.write, chunked))
    elif chunked and head.method != "HEAD":
        response.start_body(lambda b: transport.write(b"%x\r\n%b\r\n" % (len(b), b)))
    else:
        response.start_body(transport.write)
    await response.body_done
    if gz is not None and head.method != "HEAD" and response.error is None:
        conn.write(finished(stream, chunked))
    elif chunked and head.method != "HEAD" and response.error is None:
        # an upstream error (proxy_read_timeout...) leaves the answer truncated
        conn.write(b"0\r\n\r\n")
    return release_upstream(conn, response) and keep


def release_upstream(conn: RequestIO, response: UpstreamResponse) -> bool:
    """The answer is passed on: its upstream connection closed, a read error
    logged; whether it went well."""
    if conn.upstream_transport is not None:
        conn.upstream_transport.close()
        conn.upstream_transport = None
    if response.error is not None:
        conn.worker.log_error(response.error)
        return False
    return True


class SendTimer:
    """``send_timeout`` for one client connection's blocked writes."""

    __slots__ = ("seconds", "_handle")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._handle: asyncio.TimerHandle | None = None

    def start(self, expired: Callable[[], None]) -> None:
        """The write buffer filled: the client has ``seconds`` to drain it."""
        if self._handle is None:
            self._handle = running_loop().call_later(self.seconds, expired)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
