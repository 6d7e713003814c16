"""The shell that carries out the engine's actions (``ngxws.http.engine``).

The engine decides, synchronously and without I/O; this module does what
it says on the client connection: writes the page, redirect or ``return``
text through the headers filter, sleeps limit_req's delay, runs the
auth_request subrequest, and runs the content handler -- the statistics
page, static files (``static_phase``), the proxy (``proxy_http`` here) or
the websocket upgrade (``upgrade``).  A wait resumes the engine with what
came of it; each resumption is a step of the engine's own bounded phases
(one delay per request, one subrequest per access phase), so the recursion
is too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from ngxws.accounting.connstats import stub_page
from ngxws.http.content import Static, StatsPage, StubStatus, Upgrade
from ngxws.http.engine import (
    Action,
    AuthSubrequest,
    Close,
    Content,
    Delay,
    ErrorPage,
    Plain,
    Redirect,
    Respond,
    after_auth,
    after_delay,
)
from ngxws.http.request import RequestHead
from ngxws.http.responses import (
    build_response,
    error_body,
    error_response,
    error_type,
    has_page,
    redirect_response,
)
from ngxws.proxy.auth_request import auth_subrequest
from ngxws.proxy.gzip_phase import gzip_plan
from ngxws.proxy.header_phase import ProxiedHeaders, charset_of, filtered, redirect_location, typed
from ngxws.proxy.pending import Pending
from ngxws.proxy.response_pass import intercepted, pass_response
from ngxws.proxy.static_phase import serve_static
from ngxws.proxy.unasked_switch import pass_unasked_switch, unasked
from ngxws.proxy.upgrade import proxy_upgrade, refuse_switch
from ngxws.proxy.upstream import UpstreamUnavailable
from ngxws.proxy.x_accel import accel_redirect
from ngxws.sinks.statsformats import stats_body

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.proxy.context import RequestIO

__all__ = ["carry_out"]


async def carry_out(conn: RequestIO, action: Action) -> bool:
    """Do what ``action`` says; return whether the connection stays open."""
    if isinstance(action, Content):
        pending = cast(Pending, action.state)
        handler = action.handler
        if isinstance(handler, StatsPage):
            assert pending.head is not None
            return answer_stats(conn, pending.head, action.keep, action.loc)
        if isinstance(handler, StubStatus):
            head = pending.head
            assert head is not None
            if head.method not in ("GET", "HEAD"):
                return await conn.answer_error(405, pending, action.server, action.loc, action.keep)
            page = stub_page(conn.worker.counters)
            return await carry_out(conn, Respond(200, page, "text/plain", head, action.server, action.loc,
                                                 action.keep, [], head.method == "HEAD"))  # fmt: skip
        if isinstance(handler, Static):
            return await serve_static(conn, pending, action.server, action.loc, action.captures, action.keep)
        if isinstance(handler, Upgrade):
            return await proxy_upgrade(conn, pending, action.server, action.loc, action.captures)
        return await proxy_http(conn, pending, action.server, action.loc, action.captures)
    if isinstance(action, ErrorPage):
        head, loc, status = action.head, action.loc, action.status
        headers = filtered(conn, loc, action.server, head, status, action.headers)
        charset = charset_of(loc, status)
        length = len(error_body(status)) if has_page(status) else 0
        vary, gz, chunked, keep = gzip_plan(loc, head, status, error_type(status, charset), length, headers, action.keep)
        conn.write(error_response(status, keep_alive=keep, extra_headers=headers, head_only=head.method == "HEAD", charset=charset,
                                  vary=vary, gzip=gz, chunked=chunked))  # fmt: skip
        return keep
    if isinstance(action, Redirect):
        head, loc, status = action.head, action.loc, action.status
        url = action.url
        if url.startswith("/"):
            url = redirect_location(conn, head, action.server, loc, url)
        headers = filtered(conn, loc, action.server, head, status, action.headers)
        charset = charset_of(loc, status) if action.charset else None
        conn.write(redirect_response(status, url, keep_alive=action.keep, extra_headers=headers, charset=charset,
                                     completed=url != action.url, at=len(action.headers)))  # fmt: skip
        return action.keep
    if isinstance(action, Respond):
        head, loc, status = action.head, action.loc, action.status
        headers = filtered(conn, loc, action.server, head, status, action.headers)
        ctype = None if action.content_type is None else typed(loc, status, action.content_type)
        length = len(action.body) if action.length is None else action.length
        vary, gz, chunked, keep = gzip_plan(loc, head, status, ctype, length, headers, action.keep)
        conn.write(build_response(status, action.body, content_type=ctype, keep_alive=keep, head_only=action.head_only, extra_headers=headers, length=action.length,
                                  vary=vary, gzip=gz, chunked=chunked))  # fmt: skip
        return keep
    if isinstance(action, Delay):
        await asyncio.sleep(action.ms / 1000)  # a client that goes away meanwhile cancels it
        return await carry_out(conn, after_delay(conn.worker.world, conn, action.paused))
    if isinstance(action, AuthSubrequest):
        sub = await auth_subrequest(conn, action.head, action.server, action.uri, action.sets)
        if sub.terminated:  # no answer: the connection is closed
            return False
        resumed = after_auth(conn.worker.world, conn, action.paused, sub.status, sub.variables, sub.challenges())
        return await carry_out(conn, resumed)
    if isinstance(action, Plain):
        conn.write(error_response(action.status))
        return False
    assert isinstance(action, Close)
    return False


def answer_stats(conn: RequestIO, head: RequestHead, keep: bool, loc: Location | None = None) -> bool:
    """``ws_stat``: the module's page (text, ?format=prometheus|json|html),
    through nginx's output filters (gzip) like any content handler's."""
    if head.method not in ("GET", "HEAD"):
        conn.write(error_response(405, keep_alive=keep))
        return keep
    body, ctype = stats_body(conn.worker.counters, head.args, head.header("accept"))
    vary, gz, chunked, keep = gzip_plan(loc, head, 200, ctype, len(body), [], keep)
    conn.write(build_response(200, body, content_type=ctype, keep_alive=keep, head_only=head.method == "HEAD",
                              vary=vary, gzip=gz, chunked=chunked))  # fmt: skip
    return keep


async def proxy_http(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, captures: tuple[str, ...]
) -> bool:
    """ngx_http_proxy_handler() for a request that does not switch protocols."""
    head = pending.head
    assert head is not None
    keep = head.keep_alive
    try:
        response, _addr = await conn.open_upstream(pending, server, loc, captures)
    except UpstreamUnavailable as exc:
        conn.worker.log_upstream_failure(exc, head.request_line)
        return await conn.answer_error(exc.status, pending, server, loc, keep)
    if unasked(head, response):  # nginx passes it on as an answer
        return await pass_unasked_switch(conn, head, server, loc, response)
    if response.status == 101:  # a switch to a request that carried Upgrade
        return await refuse_switch(conn, pending, server, loc, response)
    kept = intercepted(conn, loc, response)
    if kept is not None:  # proxy_intercept_errors: the location's error_page answers
        return await conn.answer_error(response.status, pending, server, loc, keep, kept)
    followed = await accel_redirect(conn, pending, server, loc, response)
    if followed is not None:  # X-Accel-Redirect: an internal redirect (proxy/x_accel.py)
        return followed
    conn.send_timer.seconds = loc.send_timeout
    return await pass_response(conn, head, pending.status_override, response, keep, ProxiedHeaders(conn, loc, server, head))
