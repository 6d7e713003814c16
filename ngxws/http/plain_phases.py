"""A request whose phases before the content handler can neither stop nor
change it: where it goes decided without running them (``engine.start``'s
first step; the phases stay the oracle and take every other request).

nginx runs every phase handler for every request, but for a request on a
plain connection, to a server with no server rewrites and no regex name,
whose location has no rewrite script, no ``limit_except``, is not
``internal``, has no realip, ``limit_req``/``limit_conn`` or access
checks and no named captures, each of them declines: the content handler
of the location ``find config`` picks (``ngxws.http.content.decide``)
answers.  What the phases would leave on the connection for it is the
same as they leave (``$remote_user``, realip's view of the peer, the
request's fresh ``set``/``auth_request_set`` variables, no named
captures); what the location itself allows is noted once per location.
tests/test_plain_phases.py compares the two over a table of confs and
requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.access import basic_user
from ngxws.config.memo import PerObject
from ngxws.http.content import Action as Handler
from ngxws.http.content import Error, decide
from ngxws.routing.locations import match_location

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.http.engine import Connection, State
    from ngxws.routing.servers import VirtualHosts

__all__ = ["plain_request"]

# a location's content handlers (without, with an Upgrade) when no phase
# before the content can act on its requests; None: the phases run
_Handlers = tuple[Handler | None, Handler | None] | None



def _handlers(loc: Location) -> _Handlers:
    if (
        loc.limit_except is not None  # limited() may pick another configuration
        or loc.internal
        or loc.rewrites
        or loc.realip.trusted
        or loc.limits.any
        or loc.access.restricted
        or ("(?<" in loc.pattern or "(?P<" in loc.pattern)  # named captures: $name
    ):
        return None
    found = tuple(None if isinstance(h, Error) else h for h in (decide(loc, False), decide(loc, True)))
    return found[0], found[1]


handlers_of: PerObject[Location, _Handlers] = PerObject(_handlers)
"""``_handlers`` of a location, noted once per location."""


def plain_request(
    conn: Connection, vhosts: VirtualHosts, state: State
) -> tuple[Handler, Server, Location, tuple[str, ...]] | None:
    """(content handler, server, location, captures) of a request no phase
    can act on, with the connection's per-request values set as the phases
    set them; None (nothing changed) when the phases are to run."""
    head = state.head
    assert head is not None
    if conn.tls is not None or state.error or vhosts.regexes:  # 421/495/496, 413, server name captures
        return None
    index = head.header_map
    server = vhosts.select(head.uri_host or index.get("host"))
    if server.rewrites:
        return None
    match = match_location(server.locations, head.path)
    if match is None or match.redirect:  # 404 / the server's own, the auto-redirect
        return None
    loc = match.location
    handlers = handlers_of(loc)
    if handlers is None:
        return None
    handler = handlers[1] if state.upgrade else handlers[0]
    if handler is None:  # the content phase's error page
        return None
    # engine.start's values for the request (realip of the server; the
    # location's declines: no realip there)
    auth = index.get("authorization")
    conn.remote_user = basic_user(auth) if auth is not None else ""
    conn.remote_addr, conn.remote_port = conn.address.begin_request(server.realip, head.headers)
    conn.auth_vars, conn.error_headers = {}, []
    conn.requests += 1
    conn.request_id = ""
    conn.script_named = {}
    conn.script_vars = {}
    return handler, server, loc, match.captures if loc.modifier in ("~", "~*") else ()
