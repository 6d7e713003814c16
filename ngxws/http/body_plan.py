"""What nginx does with a request's body, decided from its head and the
location it reaches (no I/O).

- A proxied location reads the whole body before the upstream is
  contacted (``proxy_request_buffering on``), and answers
  ``Expect: 100-continue`` with ``100 Continue`` when it starts reading.
- Any other answer is sent without waiting for the body, which nginx
  discards (ngx_http_discard_request_body).  A ``return`` that sends a
  response (a code below 400, or any code with a text or URL: it goes
  through ngx_http_send_response) tests Expect first and so sends
  ``100 Continue`` too; error pages do not (ngx_http_special_response_handler
  sets expect_tested).
"""

from __future__ import annotations

from dataclasses import dataclass

from ngxws.config.model import Location, Return, Server
from ngxws.config.rewrite import scripted
from ngxws.http.request import RequestHead
from ngxws.routing.locations import LocationMatch, match_location
from ngxws.routing.servers import VirtualHosts


@dataclass(frozen=True)
class BodyPlan:
    limit: int  # client_max_body_size of the location (0: none)
    proxied: bool  # the body is read and goes upstream
    at_once: bool  # answered without waiting for the body
    sends_continue: bool  # "Expect: 100-continue" gets "100 Continue"


def _sends_response(ret: Return) -> bool:
    return ret.code != 444 and (ret.code < 400 or ret.text is not None)


# plan_body's answers: a function of the config objects alone
_PLANS: dict[tuple[int, int, bool], tuple[Server, Location | None, BodyPlan]] = {}
_PLANS_LIMIT = 4096


def plan_body(server: Server, match: LocationMatch | None) -> BodyPlan:
    """``plan_body_uncached``'s answer, made once per server and location."""
    loc = match.location if match is not None else None
    redirect = match is not None and match.redirect
    key = (id(server), id(loc), redirect)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is server and hit[1] is loc:
        return hit[2]
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
    plan = plan_body_uncached(server, match)
    _PLANS[key] = (server, loc, plan)
    return plan


def plan_body_uncached(server: Server, match: LocationMatch | None) -> BodyPlan:
    """The plan for a request on ``server`` whose URI matched ``match``.

    Where the outcome depends on the request (``if`` blocks, access
    checks, limits on a proxied location) the body is waited for, as when it
    is proxied, and no 100 is sent early."""
    if scripted(server.rewrites):
        return BodyPlan(server.client_max_body_size, False, False, False)
    if server.return_ is not None:
        return BodyPlan(server.client_max_body_size, False, True, _sends_response(server.return_))
    if match is None:
        return BodyPlan(server.client_max_body_size, False, True, False)  # 404
    loc: Location = match.location
    if match.redirect:
        return BodyPlan(loc.client_max_body_size, False, True, False)
    if scripted(loc.rewrites) or loc.access.restricted or loc.limits.any:
        return BodyPlan(loc.client_max_body_size, False, loc.proxy_pass is None and loc.return_ is None, False)
    if loc.return_ is not None:
        return BodyPlan(loc.client_max_body_size, False, True, _sends_response(loc.return_))
    if loc.proxy_pass is not None:
        return BodyPlan(loc.client_max_body_size, True, False, True)
    return BodyPlan(loc.client_max_body_size, False, True, False)


def body_plan_for(vhosts: VirtualHosts, head: RequestHead) -> tuple[BodyPlan, Location | Server]:
    """Find config for a request head, as nginx runs it before the body is
    read: the plan, and the location (or server) whose client_body_*
    settings apply."""
    server = vhosts.select(head.uri_host or head.host)
    match = match_location(server.locations, head.path)
    scope: Location | Server = server
    if match is not None and not scripted(server.rewrites) and server.return_ is None:
        scope = match.location
    return plan_body(server, match), scope


def over_declared_length(head: RequestHead, limit: int) -> bool:
    """ngx_http_core_find_config_phase(): a Content-Length over
    client_max_body_size is a 413 before any byte of the body is read
    (the engine answers it once the location is found)."""
    declared = head.header("content-length")
    return bool(limit) and declared is not None and declared.isdigit() and int(declared) > limit
