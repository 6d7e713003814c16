"""``auth_request URI``: the subrequest ngx_http_auth_request_module sends.

nginx builds the subrequest with ngx_http_subrequest(): method ``GET`` (but
``$request_method`` and ``$request_uri`` are the client's), the
URI given (no arguments), every header of the client's request, no body
(the module hands it an empty request body, though the client's
``Content-Length`` is still announced), ``$request_uri`` still the client's.  It runs the location the URI matches from its rewrite phase,
skips the access phase (subrequests have none), and only the response
head counts (``header_only``): its status, and its headers for
``auth_request_set`` (``$upstream_http_NAME``, ``$upstream_status``) and
for ``WWW-Authenticate`` on a 401.

What ngxws runs in that location: ``if``/``return`` (the status is the
return code), ``ws_stat`` and ``stub_status`` (200), ``proxy_pass`` (the upstream's status; 502
when no peer answers, 504 on a timeout, as nginx's upstream module
finalizes the subrequest); anything else is 404 (nginx would look for a
static file ngxws does not serve).  A 101 ends the client's request when
that carried ``Upgrade`` (``SubrequestResult.terminated``); otherwise it is
a status like any other (the module's "unexpected status": 500).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngxws.config.model import Server
from ngxws.http.request import RequestHead
from ngxws.http.rewrite import run_location_script
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    proxy_host_of,
    proxy_uri,
)
from ngxws.proxy.deadline import within
from ngxws.proxy.upstream import Attempts, UpstreamUnavailable, connect_upstream
from ngxws.proxy.upstream_response import UpstreamResponse
from ngxws.routing.locations import match_location
from ngxws.tls import upstream_tls

if TYPE_CHECKING:
    from ngxws.proxy.context import RequestIO


@dataclass(frozen=True)
class SubrequestResult:
    """The auth subrequest's status and response headers (in order), and the
    variables its ``auth_request_set`` lines computed from them."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    # the upstream switched protocols for a client request that carried
    # Upgrade: ngx_http_upstream_upgrade() refuses that in a subrequest
    # ("connection upgrade in subrequest") and finalizes it with NGX_ERROR,
    # which terminates the client's request: its connection is closed
    # without an answer
    terminated: bool = False

    def challenges(self) -> list[tuple[str, str]]:
        """Its ``WWW-Authenticate``, which nginx copies onto a 401: the first
        only (1.22 keeps one pointer per upstream header; 1.23 chains them)."""
        first = next(((n, v) for n, v in self.headers if n.lower() == "www-authenticate"), None)
        return [first] if first is not None else []


async def auth_subrequest(
    conn: RequestIO,
    head: RequestHead,
    server: Server,
    uri: str,
    sets: tuple[tuple[str, str], ...],
) -> SubrequestResult:
    """Run ``auth_request uri`` for the client's ``head``; evaluate ``sets``
    (``auth_request_set`` pairs) in the subrequest, as the module does."""
    sub = RequestHead(
        method=head.method,  # $request_method is the client's; the request line says GET
        target=uri,
        version=head.version,
        headers=head.headers,
        keep_alive=head.keep_alive,
        client_uri=head.client_uri or head.request_uri,
    )
    sub.args = None  # ngx_http_subrequest(r, uri, NULL, ...): no arguments
    status, headers, v = await _run(conn, sub, head, server)
    if v is None:
        v = conn.variables(sub, server, ())
    v.upstream_status = str(status) if headers is not None else ""
    v.upstream_headers = headers or ()
    variables = tuple((name, v.render(value)) for name, value in sets)
    if status == 101 and headers is not None and head.header("upgrade") is not None:
        conn.worker.log_error(f'connection upgrade in subrequest, request: "{head.request_line}"')
        return SubrequestResult(status, headers, variables, terminated=True)
    return SubrequestResult(status, headers or (), variables)


async def _run(
    conn: RequestIO, sub: RequestHead, head: RequestHead, server: Server
) -> tuple[int, tuple[tuple[str, str], ...] | None, RequestVariables | None]:
    """(status, upstream response headers or None when no upstream answered, variables)."""
    match = match_location(server.locations, sub.path)
    if match is None:
        return 404, None, None
    if match.redirect:
        return 301, None, None
    loc = match.location
    v = conn.variables(sub, server, match.captures)
    script = run_location_script(loc, v)  # no file tests in a subrequest's script
    if script.ret is not None:
        return script.ret.code, None, v
    loc = script.location or loc
    if loc.ws_stat or loc.stub_status:
        return 200, None, v
    if loc.proxy_pass is None:
        return 404, None, v
    worker = conn.worker
    try:
        pp = conn.proxy_target(loc.proxy_pass, v)
        selector = await worker.pools.selector_for(pp, loc.proxy, loc.proxy_pass.has_variables)
    except UpstreamUnavailable as exc:
        worker.log_error(f"{exc} while sending auth request {sub.path}")
        return exc.status, None, v
    v.proxy_host = proxy_host_of(pp)
    length = head.header("content-length")
    if length is not None and length.isdigit():
        # $proxy_internal_body_length is the client's length, though no body
        # follows (hence the guides' proxy_set_header Content-Length "")
        v.body_length = int(length)
    uri = proxy_uri(loc.proxy_pass, loc.pattern, loc.modifier, v)  # the subrequest's own URI
    key = conn.remote_addr
    if selector.balance == "hash" and selector.hash_key:
        key = v.render(selector.hash_key)
    response = UpstreamResponse(head_only=True)
    try:
        link = await connect_upstream(
            selector, loc.proxy, lambda: response, Attempts(selector, key, loc.proxy), tls=upstream_tls(pp, loc.proxy)
        )
    except UpstreamUnavailable as exc:
        worker.log_error(f"{exc} while sending auth request {sub.path}, request: {head.request_line}")
        return exc.status, None, v
    try:
        raw = build_upstream_head(uri, loc.proxy, v)
        link.transport.write(b"GET" + raw[raw.index(b" ") :])  # ngx_http_subrequest(): always GET
        await within(response.head_done, loc.proxy.read_timeout)
    except asyncio.TimeoutError:
        worker.log_error(f"upstream timed out in auth request {sub.path}")
        return 504, None, v
    except ConnectionError as exc:
        worker.log_error(f"{exc} in auth request {sub.path}")
        return 502, None, v
    finally:
        link.transport.close()  # header_only: the body is never read
    return response.status, tuple(response.headers), v
