"""nginx's request phases as a sans-I/O engine: a request head and the
connection's facts in, an *action* out.

As python-websockets and h11 keep the protocol apart from the I/O, this
module runs what ngx_http_core_module's phase engine runs for one request
-- the TLS checks of ngx_http_process_request() (421/495/496), server
rewrite, find config (404, the auto-redirect 301, the 413 on a declared
body length), location rewrite, post-rewrite (``ngxws.http.rewrite``),
preaccess (the location's realip, ``limit_req``, ``limit_conn``), access
(allow/deny, auth_basic, auth_request, ``satisfy``), and content
(``ngxws.http.content``) -- plus what nginx does with an error it makes
itself (``error_page``) and with ``return``.  It opens no socket, awaits
nothing, and reads files, the clock and the limit zones only through the
``World`` it is given.

What it returns is an action for the shell (``ngxws.proxy.actions``) to
carry out: write a page (``ErrorPage``, ``Redirect``, ``Respond``,
``Plain``), close (``Close``), run a content handler (``Content``: stats
page, static files, proxy, upgrade), or -- when a phase must wait for the
world -- ``Delay`` (limit_req's delay) and ``AuthSubrequest``
(auth_request's subrequest), after which the shell resumes the engine with
``after_delay`` / ``after_auth``.  Everything is synchronous and allocates
no more than the request needs: the upgrade path calls ``start`` for every
websocket handshake.

The engine reads and writes the per-request state nginx keeps in
ngx_http_request_t through two narrow protocols: ``Connection`` (the
connection's facts and the request's variables) and ``State`` (the request
across its internal redirects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from ngxws.access import access_verdict, basic_user, check_basic_auth
from ngxws.client_certs import ConnectionTLS, request_status
from ngxws.config.limits import Limits
from ngxws.config.model import ErrorPage as ErrorPageConf
from ngxws.config.model import Location, Return, Server
from ngxws.http.access_phase import OK, Verdicts
from ngxws.http.content import Action as Handler
from ngxws.http.content import Error, decide
from ngxws.http.plain_phases import plain_request
from ngxws.http.realip import ClientAddress
from ngxws.http.request import RequestHead
from ngxws.http.rewrite import Routed, Stat, content_type_for, limited, route, run_location_script
from ngxws.http.upstream_request import RequestVariables
from ngxws.limits.preaccess import KeyOf, log_context
from ngxws.limits.state import RequestLimits
from ngxws.routing.locations import find_named
from ngxws.routing.servers import VirtualHosts

__all__ = [
    "Action", "AuthSubrequest", "Close", "Connection", "Content", "Delay", "ErrorPage", "LimitCheck",
    "Paused", "Plain", "Redirect", "Respond", "State", "World", "after_auth", "after_delay", "at_location",
    "internal_redirect", "on_error", "phases", "start",
]

# ngx_http_special_response_handler() drops keep-alive after these.
CLOSING_STATUSES = frozenset({400, 408, 413, 414, 494, 495, 496, 497, 500, 501})

_REDIRECTS = (301, 302, 303, 307, 308)


# -- what the engine is given ---------------------------------------------------


class LimitCheck(Protocol):
    """The limit zones (``ngxws.limits.preaccess.Limiter``): shared memory
    and a clock, so injected."""

    def limit_req(self, state: RequestLimits, limits: Limits, key_of: KeyOf, context: str) -> tuple[int, int]: ...

    def limit_conn(self, state: RequestLimits, limits: Limits, key_of: KeyOf, context: str) -> int: ...


@dataclass(frozen=True, slots=True)
class World:
    """Everything outside the request the engine may ask: one per worker."""

    stat: Stat  # if (-f ...) and its kin
    limiter: LimitCheck  # limit_req / limit_conn
    read_file: Callable[[str], bytes]  # auth_basic_user_file
    log_error: Callable[[str], None]  # the error log's [error] lines


class Connection(Protocol):
    """The connection's facts and the per-request values nginx keeps in
    ngx_http_request_t, as the engine reads and sets them."""

    address: ClientAddress  # the peer, and realip's view of it
    tls: ConnectionTLS | None
    remote_addr: str
    remote_port: int
    remote_user: str
    auth_vars: dict[str, str]  # auth_request_set
    error_headers: list[tuple[str, str]]  # WWW-Authenticate kept through error_page
    script_vars: dict[str, str]  # set $name
    script_named: Mapping[str, str]  # (?<name>...) of the last regex match
    requests: int  # $connection_requests
    request_id: str

    def variables(self, head: RequestHead, server: Server, captures: tuple[str, ...]) -> RequestVariables: ...


class State(Protocol):
    """A request across its internal redirects (``ngxws.proxy.pending.Pending``)."""

    head: RequestHead | None
    error: int  # 413: the declared body length is over the limit
    upgrade: bool
    redirects: int  # error_page hops
    error_page_done: bool  # r->error_page: no error_page applies any more
    status_override: int | None  # error_page's code for the final answer
    limits: RequestLimits

    def redirected(self, head: RequestHead) -> State:
        """The same request with a new head (error_page's internal redirect)."""
        ...


# -- actions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Close:
    """``return 444``: close without a response."""


@dataclass(frozen=True, slots=True)
class Plain:
    """nginx's built-in page for ``status`` before any location applies
    (the 413 of find config); the connection closes after it."""

    status: int


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """nginx's built-in page for ``status``: the headers filter of ``loc``
    runs on ``headers`` (WWW-Authenticate ...), labelled by its charset."""

    status: int
    head: RequestHead
    server: Server
    loc: Location | None
    keep: bool
    headers: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirect nginx writes: ``url`` (a path is completed as
    ngx_http_header_filter() does), ``loc``'s headers filter on ``headers``,
    ``charset``: its error page body labelled as ``return`` labels it."""

    status: int
    url: str
    head: RequestHead
    server: Server
    loc: Location | None
    keep: bool
    headers: list[tuple[str, str]]
    charset: bool = False


@dataclass(frozen=True, slots=True)
class Respond:
    """``return CODE text``: ``length`` -1 for no Content-Length (204)."""

    status: int
    body: bytes
    content_type: str | None
    head: RequestHead
    server: Server
    loc: Location | None
    keep: bool
    headers: list[tuple[str, str]]
    head_only: bool
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Content:
    """The location's content handler runs (``handler``: ngxws.http.content's
    StatsPage, Static, ProxyHTTP or Upgrade)."""

    handler: Handler
    state: State
    server: Server
    loc: Location
    captures: tuple[str, ...]
    keep: bool


class Paused:
    """Where a request waits for the world: the phase resumes from here."""

    __slots__ = ("state", "server", "loc", "captures", "keep", "v", "verdicts")

    def __init__(
        self,
        state: State,
        server: Server,
        loc: Location | None,
        captures: tuple[str, ...],
        keep: bool,
        v: RequestVariables,
        verdicts: Verdicts | None = None,
    ) -> None:
        self.state = state
        self.server = server
        self.loc = loc  # None: no location matched (the 404 follows the limits)
        self.captures = captures
        self.keep = keep
        self.v = v
        self.verdicts = verdicts


@dataclass(frozen=True, slots=True)
class Delay:
    """limit_req delays the request ``ms`` milliseconds; then ``after_delay``."""

    ms: int
    paused: Paused


@dataclass(frozen=True, slots=True)
class AuthSubrequest:
    """auth_request: the shell runs the subrequest to ``uri`` (evaluating
    ``sets``, auth_request_set's pairs, in it); then ``after_auth``."""

    uri: str
    sets: tuple[tuple[str, str], ...]
    head: RequestHead
    server: Server
    paused: Paused


Action = Close | Plain | ErrorPage | Redirect | Respond | Content | Delay | AuthSubrequest


# -- the phases -----------------------------------------------------------------


def start(world: World, conn: Connection, vhosts: VirtualHosts, state: State) -> Action:
    """One request from its head: every phase up to the action that answers it
    (a request no phase can act on goes straight to its content handler:
    ngxws.http.plain_phases)."""
    plain = plain_request(conn, vhosts, state)
    if plain is not None:
        head = state.head
        assert head is not None
        return Content(plain[0], state, plain[1], plain[2], plain[3], head.keep_alive)
    return phases(world, conn, vhosts, state)


def phases(world: World, conn: Connection, vhosts: VirtualHosts, state: State) -> Action:
    """Every phase of a request up to its action (the oracle of plain_phases)."""
    head = state.head
    assert head is not None
    host = head.uri_host or head.host
    server = vhosts.select(host)
    keep = head.keep_alive
    conn.remote_user = basic_user(head.header("authorization"))  # nginx's $remote_user
    conn.remote_addr, conn.remote_port = conn.address.begin_request(server.realip, head.headers)
    tls_status = request_status(conn.tls, server, vhosts, host)
    if tls_status:  # 421/495/496, before any phase; nginx closes after each
        return on_error(world, conn, tls_status, state, server, None, False)
    conn.auth_vars, conn.error_headers = {}, []
    conn.requests += 1
    conn.request_id = ""
    captures, conn.script_named = vhosts.name_captures(server, host)
    conn.script_vars = {}
    v = conn.variables(head, server, captures)
    routed = route(server, v, world.stat)  # rewrite phases + find config (http/rewrite.py)
    return _routed(world, conn, state, server, v, routed, keep)


def _routed(
    world: World, conn: Connection, state: State, server: Server, v: RequestVariables, routed: Routed, keep: bool
) -> Action:
    """Where the rewrite phases and find config led the request ``v.head``."""
    state.head = head = v.head
    conn.script_named = v.named
    loc = routed.location
    if state.error == 413 and loc is not None:  # find config checks the body first
        return Plain(413)
    if routed.ret is not None:
        return answer_return(world, conn, routed.ret, state, server, loc, v, keep, routed.redirect_url)
    if loc is None:
        if server.limits.any:
            paused = Paused(state, server, None, (), keep, v)
            waits = _preaccess(world, conn, paused, server.limits)
            if waits is not None:
                return waits
        return on_error(world, conn, 404, state, server, None, keep)
    if routed.status == 301:  # the auto-redirect to uri/
        target = head.path + "/" + (f"?{head.args}" if head.args is not None else "")
        return Redirect(301, target, head, server, loc, keep, [])
    if routed.status:  # 404 internal location, 500 rewrite cycle
        return on_error(world, conn, routed.status, state, server, loc, keep)
    if not routed.valid_location and loc.proxy_pass is not None and not loc.proxy_pass.has_variables:
        # rewrite ... break: proxy_pass sends the whole URI (r->valid_location = 0)
        loc = replace(loc, proxy_pass=replace(loc.proxy_pass, uri=None))
    return at_location(world, conn, state, server, loc, v.captures, keep, v)


def at_location(
    world: World,
    conn: Connection,
    state: State,
    server: Server,
    loc: Location,
    captures: tuple[str, ...],
    keep: bool,
    routed: RequestVariables | None = None,
) -> Action:
    """From the location rewrite phase on (also ``error_page ... @name``,
    try_files and index redirects); ``routed``: route() ran that phase
    already, with these variables."""
    head = state.head
    assert head is not None
    if routed is None:
        v = conn.variables(head, server, captures)
        script = run_location_script(loc, v, world.stat)
        if script.ret is not None:
            return answer_return(world, conn, script.ret, state, server, loc, v, keep, script.redirect_url)
        if script.uri_changed:  # the post-rewrite phase finds the location again
            return _routed(world, conn, state, server, v, route(server, v, world.stat, True, from_find=True), keep)
        assert script.location is not None
        loc, captures = script.location, v.captures
        # a rewrite here changes r->uri for the phases that follow (Jitsi's
        # "location @root_path { rewrite ^/(.*)$ /$custom_index break; }"
        # serves the index of "/"), as route() does for a found location
        # (proxy_pass has no URI part there: nothing else to adjust)
        state.head = head = v.head
    else:
        v = routed
    addr = conn.address.run(loc.realip, head.headers)  # PREACCESS: the location's realip
    conn.remote_addr, conn.remote_port = v.remote_addr, v.remote_port = addr
    if loc.limits.any:
        paused = Paused(state, server, loc, captures, keep, v)
        waits = _preaccess(world, conn, paused, loc.limits)
        if waits is not None:
            return waits
    return _access(world, conn, state, server, loc, captures, keep, v)


def _preaccess(world: World, conn: Connection, paused: Paused, limits: Limits) -> Action | None:
    """ngx_http_limit_req_handler() then (unless it delays)
    ngx_http_limit_conn_handler(); None to go on."""
    v = paused.v
    status, delay = world.limiter.limit_req(paused.state.limits, limits, _key_of(v), log_context(v))
    if status:
        return on_error(world, conn, status, paused.state, paused.server, paused.loc, paused.keep)
    if delay:
        return Delay(delay, paused)
    return _limit_conn(world, conn, paused, limits)


def _limit_conn(world: World, conn: Connection, paused: Paused, limits: Limits) -> Action | None:
    v = paused.v
    status = world.limiter.limit_conn(paused.state.limits, limits, _key_of(v), log_context(v))
    if status:
        return on_error(world, conn, status, paused.state, paused.server, paused.loc, paused.keep)
    return None


def _key_of(v: RequestVariables) -> KeyOf:
    def key_of(template: str) -> bytes:
        return v.render(template).encode("latin-1", "replace")

    return key_of


def after_delay(world: World, conn: Connection, paused: Paused) -> Action:
    """limit_req's delay is over: limit_conn, then on from the access phase."""
    loc = paused.loc
    limits = loc.limits if loc is not None else paused.server.limits
    refused = _limit_conn(world, conn, paused, limits)
    if refused is not None:
        return refused
    if loc is None:
        return on_error(world, conn, 404, paused.state, paused.server, None, paused.keep)
    return _access(world, conn, paused.state, paused.server, loc, paused.captures, paused.keep, paused.v)


def _access(
    world: World,
    conn: Connection,
    state: State,
    server: Server,
    loc: Location,
    captures: tuple[str, ...],
    keep: bool,
    v: RequestVariables,
) -> Action:
    """ngx_http_access_module, ngx_http_auth_basic_module and
    ngx_http_auth_request_module in nginx's order, combined by ``satisfy``
    (ngxws.http.access_phase.Verdicts)."""
    access = loc.access
    if access.restricted:
        head = state.head  # as the rewrite phases left it (a named location's too)
        assert head is not None
        verdicts = Verdicts(access.satisfy_any)
        if access.rules:
            verdict = access_verdict(access.rules, conn.remote_addr)
            if verdict == "deny":
                world.log_error(f'access forbidden by rule, client: {conn.remote_addr}, request: "{head.request_line}"')
            rc = None if verdict is None else (OK if verdict == "allow" else 403)
            denial = verdicts.add(rc)
            if denial is not None:
                return on_error(world, conn, denial.status, state, server, loc, keep, denial.headers or None)
        if not verdicts.passed and access.auth_basic is not None and access.auth_basic_user_file is not None:
            realm = v.render(access.auth_basic)
            result = check_basic_auth(access, head.header("authorization"), realm, world.read_file)
            if result.status == OK:
                conn.remote_user = result.user
            challenge = [("WWW-Authenticate", result.challenge)] if result.challenge else None
            denial = verdicts.add(result.status, challenge)
            if denial is not None:
                return on_error(world, conn, denial.status, state, server, loc, keep, denial.headers or None)
        if not verdicts.passed and access.auth_request is not None:
            paused = Paused(state, server, loc, captures, keep, v, verdicts)
            return AuthSubrequest(access.auth_request, access.auth_request_set, head, server, paused)
        denial = verdicts.result()
        if denial is not None:
            return on_error(world, conn, denial.status, state, server, loc, keep, denial.headers or None)
    return _content(world, conn, state, server, loc, captures, keep)


def after_auth(
    world: World,
    conn: Connection,
    paused: Paused,
    status: int,
    variables: tuple[tuple[str, str], ...],
    challenges: list[tuple[str, str]],
) -> Action:
    """The auth subrequest answered ``status``: the access phase ends."""
    verdicts = paused.verdicts
    loc = paused.loc
    assert verdicts is not None and loc is not None
    # set before the status is looked at: error_page targets read them
    conn.auth_vars.update(variables)
    if status in (401, 403):
        rc = status
    elif 200 <= status < 300:
        rc = OK
    else:
        world.log_error(f"auth request unexpected status: {status}")
        rc = 500
    denial = verdicts.add(rc, challenges if rc == 401 else None) or verdicts.result()
    if denial is not None:
        return on_error(world, conn, denial.status, paused.state, paused.server, loc, paused.keep, denial.headers or None)
    return _content(world, conn, paused.state, paused.server, loc, paused.captures, paused.keep)


def _content(
    world: World, conn: Connection, state: State, server: Server, loc: Location, captures: tuple[str, ...], keep: bool
) -> Action:
    handler = decide(loc, state.upgrade)  # CONTENT (ngxws.http.content)
    if isinstance(handler, Error):
        return on_error(world, conn, handler.status, state, server, loc, keep)
    return Content(handler, state, server, loc, captures, keep)


# -- errors and return ------------------------------------------------------------


def on_error(
    world: World,
    conn: Connection,
    status: int,
    state: State,
    server: Server,
    loc: Location | None,
    keep: bool,
    extra_headers: list[tuple[str, str]] | None = None,
) -> Action:
    """An error nginx generates itself: through ``error_page`` if one
    names the status, else nginx's built-in page."""
    head = state.head
    assert head is not None
    if status in CLOSING_STATUSES:
        keep = False  # ngx_http_special_response_handler(), before error_page
    conn.error_headers = [*conn.error_headers, *(extra_headers or ())]
    pages = loc.error_pages if loc is not None else server.error_pages
    if pages and not state.error_page_done:
        # ngx_http_special_response_handler(): without recursive_error_pages
        # in the location that erred, this is the request's last error_page
        own = loc if loc is not None else server.fallback
        if own is None or not own.recursive_error_pages:
            state.error_page_done = True
        page = next((p for p in pages if status in p.codes), None)
        if page is not None:
            if state.redirects >= _URI_CHANGES:
                # r->uri_changes ran out (every hop is an internal redirect)
                doing = "redirect to named location" if page.target.startswith("@") else "internally redirecting to"
                world.log_error(f'rewrite or internal redirection cycle while {doing} "{page.target}"')
                state.error_page_done = True
                return ErrorPage(500, head, server, loc, False, conn.error_headers)
            state.redirects += 1
            handled = _error_page(world, conn, page, status, state, server, keep, loc)
            if handled is not None:
                return handled
    # ngx_http_special_response_handler() sets err_status to this error: an
    # error made after an error_page hop answers with its own code
    return ErrorPage(status, head, server, loc, keep, conn.error_headers)


# NGX_HTTP_MAX_URI_CHANGES: internal redirects one request may make
_URI_CHANGES = 10


def _error_page(
    world: World, conn: Connection, page: ErrorPageConf, status: int, state: State, server: Server,
    keep: bool, loc: Location | None,
) -> Action | None:
    """``error_page``: a named location runs from its rewrite phase; a URI
    is an internal redirect (the location is looked up again); a URL is
    a 302.  None when the target does not exist (the built-in page is sent)."""
    head = state.head
    assert head is not None
    v = conn.variables(head, server, ())
    target = v.render(page.target)
    # nginx's err_status: without "=" the original code is kept, "="
    # takes the target's, "=CODE" sets one (a named location's too)
    state.status_override = status if page.response is None else (page.response or None)
    if target.startswith("@"):
        named = find_named(server.locations, target)
        if named is None:
            return None
        return at_location(world, conn, state, server, limited(named, head.method), (), keep)
    if target.startswith(("http://", "https://")):
        code = page.response if page.response in _REDIRECTS else 302
        # ngx_http_send_error_page(): a special response the headers
        # filter sees with the configuration of the location that erred
        return Redirect(code, target, head, server, loc, keep, conn.error_headers, charset=True)
    inner, v, routed = _redirect_route(world, conn, state, server, target)
    if routed.ret is not None:
        return answer_return(world, conn, routed.ret, inner, server, routed.location, v, keep, routed.redirect_url)
    if routed.location is None or routed.status == 500:
        return None
    # the location's variables as a new request's: the captures of the
    # route, the named ones of the client's request
    fresh = conn.variables(v.head, server, v.captures)
    fresh.status = v.status
    return at_location(world, conn, inner, server, routed.location, v.captures, keep, fresh)


def _redirect_route(
    world: World, conn: Connection, state: State, server: Server, target: str
) -> tuple[State, RequestVariables, Routed]:
    """ngx_http_internal_redirect() to ``target`` (a URI and its args): the
    method becomes GET unless it is HEAD; from the server rewrite phase on,
    through the same bounded loop as rewrites (ngxws.http.rewrite)."""
    head = state.head
    assert head is not None
    redirected = RequestHead(
        method="HEAD" if head.method == "HEAD" else "GET",
        target=target,
        version=head.version,
        headers=head.headers,
        keep_alive=head.keep_alive,
        client_uri=head.client_uri or head.request_uri,
    )
    inner = state.redirected(redirected)
    v = conn.variables(redirected, server, ())
    v.status = state.status_override or 0  # $status: nginx's err_status
    routed = route(server, v, world.stat, internal=True)
    inner.head = v.head
    return inner, v, routed


def internal_redirect(
    world: World, conn: Connection, state: State, server: Server, loc: Location, target: str, keep: bool
) -> Action:
    """An internal redirect the request itself asks for (an upstream's
    X-Accel-Redirect: ngxws.http.x_accel): ``target`` a URI (and args) or
    ``@name``, counted against NGX_HTTP_MAX_URI_CHANGES with error_page's
    hops; an error on the way is finalized as a new one."""
    head = state.head
    assert head is not None
    named = target.startswith("@")
    if state.redirects >= _URI_CHANGES:
        doing = "redirect to named location" if named else "internally redirecting to"
        world.log_error(f'rewrite or internal redirection cycle while {doing} "{target}"')
        state.error_page_done = True  # r->uri_changes is 0: no error_page applies
        return ErrorPage(500, head, server, loc, False, conn.error_headers)
    state.redirects += 1
    if named:  # ngx_http_named_location(): the method is kept
        found = find_named(server.locations, target)
        if found is None:
            world.log_error(f'could not find named location "{target}"')
            return on_error(world, conn, 500, state, server, loc, keep)
        return at_location(world, conn, state, server, limited(found, head.method), (), keep)
    inner, v, routed = _redirect_route(world, conn, state, server, target)
    return _routed(world, conn, inner, server, v, routed, keep)


def answer_return(
    world: World,
    conn: Connection,
    ret: Return,
    state: State,
    server: Server,
    loc: Location | None,
    v: RequestVariables,
    keep: bool,
    rendered_url: str | None = None,
) -> Action:
    """``return`` as ngx_http_rewrite_module sends it (``rendered_url``:
    a redirecting ``rewrite``'s URL, already rendered)."""
    head = state.head
    assert head is not None
    v.status = state.status_override or ret.code  # set before the text renders (ngx_http_send_response)
    if ret.code == 444:  # nginx closes without a response
        return Close()
    if ret.code in _REDIRECTS:
        if ret.text is None:
            return on_error(world, conn, ret.code, state, server, loc, keep)
        url = rendered_url if rendered_url is not None else v.render(ret.text)
        # a redirect is finalized as a special response: its own code even
        # after an error_page hop (err_status is set to it)
        return Redirect(ret.code, url, head, server, loc, keep, conn.error_headers, charset=True)
    if ret.text is None and ret.code >= 400:
        return on_error(world, conn, ret.code, state, server, loc, keep)
    body = v.render(ret.text or "").encode("latin-1", "replace")
    scope = loc if loc is not None else server
    ctype = content_type_for(head.path, scope.types, scope.default_type)
    code = state.status_override or ret.code
    if code == 200 and head.fails_preconditions:
        return on_error(world, conn, 412, state, server, loc, keep)
    if code in (204, 304):
        # ngx_http_header_filter(): a 204 has no Content-Length
        return Respond(code, b"", None, head, server, loc, keep, conn.error_headers, True, -1 if code == 204 else None)
    return Respond(code, body, ctype, head, server, loc, keep, conn.error_headers, head.method == "HEAD")
