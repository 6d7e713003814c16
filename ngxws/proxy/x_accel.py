"""An upstream's ``X-Accel-Redirect``: the request is redirected internally.

ngx_http_upstream_process_headers(): unless ``proxy_ignore_headers
X-Accel-Redirect``, an answer carrying the header (whatever its status) is
not passed on: the upstream connection is finalized (its body discarded),
the upstream headers whose ``redirect`` flag is set in
ngx_http_upstream_headers_in[] are copied to the final answer (``COPIED``),
and the request goes to ``@name`` (ngx_http_named_location(), the method
kept) or to the URI (ngx_http_internal_redirect(), the method GET unless
HEAD), whose args ngx_http_parse_unsafe_uri() splits off -- a ``..``
segment there is a 404 (ngxws.http.x_accel).  The redirect itself is the engine's
(``ngxws.http.engine.internal_redirect``), counted with error_page's hops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.http.engine import Action, Content, internal_redirect, on_error
from ngxws.http.x_accel import copied_of, split_unsafe
from ngxws.proxy.pending import Pending
from ngxws.proxy.request_body import forget

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.proxy.context import RequestIO
    from ngxws.proxy.upstream_response import UpstreamResponse

__all__ = ["accel_redirect", "follow", "release", "target_of"]


def target_of(loc: Location, response: UpstreamResponse) -> str | None:
    """The X-Accel-Redirect value to follow (the first such line:
    ngx_http_upstream_process_header_line keeps the first), or None."""
    if loc.proxy.ignore_x_accel_redirect:
        return None
    return next((v for n, v in response.headers if n.lower() == "x-accel-redirect"), None)


def follow(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, response: UpstreamResponse, target: str
) -> Action:
    """Finalize the upstream and redirect to ``target``: what the engine
    says to do next (a file, another proxy, a page)."""
    if conn.upstream_transport is not None:  # its body is not read
        conn.upstream_transport.close()
        conn.upstream_transport = None
    keep = pending.head is not None and pending.head.keep_alive
    pending.accel = copied = copied_of(response.headers)
    conn.error_headers = [*conn.error_headers, *copied.headers]  # r->headers_out.headers, whatever answers
    world = conn.worker.world
    if target.startswith("@"):
        return internal_redirect(world, conn, pending, server, loc, target, keep)
    split = split_unsafe(target)
    if split is None:
        world.log_error(f'unsafe URI "{target}" was detected')
        return on_error(world, conn, 404, pending, server, loc, keep)
    uri, args = split
    return internal_redirect(world, conn, pending, server, loc, uri if args is None else f"{uri}?{args}", keep)


def release(pending: Pending, action: Action) -> None:
    """The redirected request is answered: stop what still sends its body
    to the new upstream (the client connection forgets the original)."""
    if isinstance(action, Content) and isinstance(action.state, Pending) and action.state is not pending:
        forget(action.state.sender, None)


async def accel_redirect(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, response: UpstreamResponse
) -> bool | None:
    """ngx_http_upstream_process_headers()'s redirect for an answer that is
    not a 101 (proxy_http, and a request that asked to upgrade): whether
    the connection stays open, None when the answer is passed on."""
    target = target_of(loc, response)
    if target is None:
        return None
    action = follow(conn, pending, server, loc, response, target)
    try:
        return await conn.carry(action)
    finally:
        release(pending, action)
