"""A plain websocket upgrade answered by callbacks: no task, no coroutine.

Most upgrades ask nothing of the phases that can wait: the location is a
``proxy_pass`` to a fixed plain-HTTP address, with no rewrite script, no
``limit_req``/``limit_conn``, no access rules or ``auth_request``, no request
body, on a plain listener.  For those (``plain_location``, a pure check of
the config), ``start`` runs what ``ClientConnection._dispatch`` and
``_run_location`` run -- the same calls, synchronously -- and then drives the
upgrade as nginx does, event by event:

    head complete -> connect started (one TimerHandle: proxy_connect_timeout)
    connected     -> the request head written (the timer re-armed:
                     proxy_read_timeout of the response head)
    101 read      -> head101's fast read (else UpstreamResponse) -> Tunnel

Everything that is not that straight line -- the upstream unreachable or
timing out (502/504 through error_page), another answer than a websocket
101, the cap reached, an internal error -- continues in a task through the
very coroutines the general path uses (``ClientConnection._answer`` with
the step to resume: ``upgrade.upstream_failed``/``upgrade_answered``), so
the answers, logs and counters are theirs.  The connect walks the peers as
``upstream.connect_upstream`` does (the same selector calls, messages and
``proxy_next_upstream`` rule); the loop's ``create_connection`` coroutine
is stepped by hand on its futures' callbacks instead of by a task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ngxws.access import basic_user
from ngxws.http.parser import RequestParser, RequestProtocol
from ngxws.http.realip import ClientAddress
from ngxws.http.rewrite import route
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    proxy_host_of,
    proxy_uri,
)
from ngxws.proxy.context import RequestIO
from ngxws.proxy.files import stat_file
from ngxws.proxy.head101 import parse_101
from ngxws.proxy.request_body import upstream_framing
from ngxws.proxy.upgrade import asks_websocket, tunnel_now, upgrade_answered, upstream_failed
from ngxws.proxy.upstream import UpstreamUnavailable, connect_failure, may_retry, timed_out
from ngxws.proxy.upstream_response import SwitchHead, UpstreamResponse
from ngxws.routing.locations import LocationMatch, match_location

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.http.request import RequestHead
    from ngxws.proxy.pending import Pending
    from ngxws.routing.peers import PeerSelector, PeerTarget
    from ngxws.routing.servers import VirtualHosts


class Cancellable(Protocol):
    """What a connection keeps of the request it answers: a task, or a ``FastUpgrade``."""

    def cancel(self) -> object: ...


class FastConn(RequestIO, Protocol):
    """The client connection as this module uses it (``ClientConnection``)."""

    task: Cancellable | None
    vhosts: VirtualHosts
    address: ClientAddress
    closed: bool
    requests: int
    request_id: str
    script_vars: dict[str, str]
    script_named: Any
    _headless: bool
    parser: RequestParser

    def _answer(self, pending: Pending, resume: Awaitable[bool] | None = None) -> Coroutine[Any, Any, None]: ...


def plain_location(
    vhosts: VirtualHosts, head: RequestHead, found: tuple[Server, LocationMatch | None] | None = None
) -> tuple[Server, Location] | None:
    """The server and location of an upgrade request whose phases cannot
    answer or wait (no script, limit, access rule, variable target, TLS
    upstream), or None: the general path runs it.  Reads the config only;
    ``found``: the server and match already looked up for this head."""
    server, match = found if found is not None else _lookup(vhosts, head)
    if server.rewrites or server.return_ is not None:
        return None
    if match is None or match.redirect:
        return None
    loc = match.location
    pp = loc.proxy_pass
    if (
        pp is None
        or loc.internal
        or loc.ws_stat
        or loc.rewrites
        or loc.return_ is not None
        or loc.limits.any
        or loc.access.restricted
        or pp.has_variables
        or pp.unix is not None
        or pp.scheme != "http"
    ):
        return None
    return server, loc


def _lookup(vhosts: VirtualHosts, head: RequestHead) -> tuple[Server, LocationMatch | None]:
    server = vhosts.select(head.uri_host or head.host)
    return server, match_location(server.locations, head.path)


def start(conn: FastConn, pending: Pending) -> bool:
    """Answer ``pending`` (an upgrade request) by callbacks if it is a
    plain one; False: not taken, the caller starts the general task."""
    head = pending.head
    if head is None or pending.error or pending.body is not None or pending.http09 or conn.tls is not None:
        return False
    found = plain_location(conn.vhosts, head, pending.found)
    if found is None:
        return False
    server, loc = found
    if asks_websocket(head) and conn.worker.counters.at_limit(server.ws.max_connections):
        return False  # the refusal (1013) is the general path's
    FastUpgrade(conn, pending, server, loc)
    return True


class FastUpgrade:
    """One upgrade in flight, kept as ``conn.task`` (``cancel``: the client left)."""

    __slots__ = (
        "conn", "pending", "server", "loc", "v", "timer", "deadline", "connecting", "peers", "selector",
        "tried", "last", "transport", "addr", "done",
    )

    def __init__(self, conn: FastConn, pending: Pending, server: Server, loc: Location) -> None:
        self.conn = conn
        self.pending = pending
        self.server = server
        self.loc = loc
        # one handle: proxy_connect_timeout, then (moved on only when it
        # fires, or when the head's deadline comes first) proxy_read_timeout
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0  # when the response head is late (loop time)
        self.connecting: _Stepper | None = None
        self.transport: asyncio.Transport | None = None
        self.addr = ""
        self.done = False
        self.tried = 0
        self.last = (502, "no live upstreams")
        conn.task = self
        try:
            self.v = self._phases()
            self._connect_next()
        except Exception as exc:  # as _answer does: 500, logged
            self._resume(_raising(exc))

    def _phases(self) -> RequestVariables:
        """``_dispatch`` and ``_run_location`` for this request: the same
        state, in the same order (nothing in them can answer or wait here:
        ``plain_location`` checked)."""
        conn, pending, server, loc = self.conn, self.pending, self.server, self.loc
        head = pending.head
        assert head is not None and loc.proxy_pass is not None
        conn._headless = False  # not HTTP/0.9: start checked
        conn.remote_user = basic_user(head.header("authorization"))  # nginx's $remote_user
        conn.remote_addr, conn.remote_port = conn.address.begin_request(server.realip, head.headers)
        conn.auth_vars, conn.error_headers = {}, []
        conn.requests += 1
        conn.request_id = ""
        captures, conn.script_named = conn.vhosts.name_captures(server, head.uri_host or head.host)
        conn.script_vars = {}
        v = conn._variables(head, server, captures)
        if loc.modifier in ("~", "~*"):
            # route() sets the captures; for a prefix location without a
            # script (plain_location) it only finds the location again
            routed = route(server, v, stat_file)
            assert routed.location is loc and routed.ret is None and not routed.status and routed.valid_location
        conn.script_named = v.named
        addr = conn.address.run(loc.realip, head.headers)  # PREACCESS: the location's realip
        conn.remote_addr, conn.remote_port = v.remote_addr, v.remote_port = addr
        # _open_upstream's variables
        v.limits = pending.limits
        pp = loc.proxy_pass
        v.proxy_host = proxy_host_of(pp)
        v.proxy_port = str(pp.port)
        v.body_length, v.chunked = upstream_framing(head, None)
        selector: PeerSelector = conn.worker.pools.selector(pp)
        self.selector = selector
        key = conn.remote_addr
        if selector.balance == "hash" and selector.hash_key:
            key = v.render(selector.hash_key)
        self.peers: Iterator[PeerTarget] = selector.candidates(key)
        return v

    # -- connect: upstream.connect_upstream's walk, by callbacks -------------

    def _connect_next(self) -> None:
        if self.tried and not may_retry(self.loc.proxy, self.last[0]):
            self._failed(UpstreamUnavailable(*self.last))
            return
        peer = next(self.peers, None)
        if peer is None:
            self._failed(UpstreamUnavailable(*self.last))
            return
        self.tried += 1
        loop = asyncio.get_running_loop()
        reader = _HeadReader(self)  # not kept here: no cycle to leave to the collector
        if peer.conf.unix is not None:  # an upstream block's unix: server
            coro = loop.create_unix_connection(lambda: reader, peer.conf.unix)
        else:
            coro = loop.create_connection(lambda: reader, peer.host, peer.port)
        if self.timer is not None:
            self.timer.cancel()  # the previous peer's
        self.timer = loop.call_later(self.loc.proxy.connect_timeout, self._expired)
        stepper = self.connecting = _Stepper(coro, lambda result, exc: self._connected(peer, result, exc))
        stepper.step(None)  # may end at once (a socket() error): _connected runs from here

    def _connected(self, peer: PeerTarget, result: Any, exc: BaseException | None) -> None:
        self.connecting = None
        if self.done:  # the client left meanwhile
            if result is not None:
                result[0].close()
            return
        if exc is not None:
            if isinstance(exc, asyncio.CancelledError):  # proxy_connect_timeout
                self.selector.failed(peer)
                self.last = timed_out(peer)
                self._connect_next()
                return
            if not isinstance(exc, OSError):
                self._resume(_raising(exc))
                return
            try:
                self.last = connect_failure(self.selector, peer, exc, None)
            except UpstreamUnavailable as fatal:
                self._failed(fatal)
                return
            self._connect_next()
            return
        self.selector.succeeded(peer)
        transport: asyncio.Transport = result[0]
        self.addr = peer.label
        conn = self.conn
        conn.upstream_transport = self.transport = transport
        try:
            head = self.pending.head
            assert head is not None and self.loc.proxy_pass is not None
            uri = proxy_uri(self.loc.proxy_pass, self.loc.pattern, self.loc.modifier, self.v)
            transport.write(build_upstream_head(uri, self.loc.proxy, self.v))
        except Exception as err:
            self._resume(_raising(err))
            return
        loop = asyncio.get_running_loop()
        read_timeout = self.loc.proxy.read_timeout
        self.deadline = loop.time() + read_timeout
        if self.timer is None or self.deadline < self.timer.when():
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_later(read_timeout, self._expired)

    def _expired(self) -> None:
        """The one timer: the connect is late, or (re-armed) the response head."""
        self.timer = None
        if self.done:
            return
        if self.connecting is not None:
            self.connecting.expire()  # proxy_connect_timeout (_connected sees it cancelled)
            return
        loop = asyncio.get_running_loop()
        left = self.deadline - loop.time()
        if left > 0:
            self.timer = loop.call_later(left, self._expired)
            return
        self._read_timed_out()

    # -- the response head -----------------------------------------------------

    def _read_timed_out(self) -> None:
        if self.done:
            return
        if self.transport is not None:
            self.transport.close()
        self._failed(UpstreamUnavailable(504, "upstream timed out while reading response header"))

    def head_read(self, response: SwitchHead) -> None:
        """The response head is in (a simple 101, or ``UpstreamResponse``'s)."""
        if self.done:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        conn, pending = self.conn, self.pending
        try:
            keep = tunnel_now(conn, pending, self.server, self.loc, response, self.addr)
        except Exception as exc:
            self._resume(_raising(exc))
            return
        if keep is None:  # another answer, or a switch not tunnelled
            self._resume(upgrade_answered(conn, pending, self.server, self.loc, response, self.addr))
            return
        if not conn.handed_over:  # the cap was reached meanwhile: 1013 sent
            self._resume(_value(keep))
            return
        self.done = True
        conn.task = None  # _answer's end for a request handed over: nothing else to do
        # the parser reads nothing more: no conn<->parser cycle left for the
        # cycle collector (the two go by reference counting)
        conn.parser.proto = _GONE

    def head_failed(self, exc: ConnectionError) -> None:
        if self.done:
            return
        if self.transport is not None:
            self.transport.close()
        self._failed(UpstreamUnavailable(502, str(exc)))

    # -- endings -----------------------------------------------------------------

    def _failed(self, exc: UpstreamUnavailable) -> None:
        self._resume(upstream_failed(self.conn, self.pending, self.server, self.loc, exc))

    def _resume(self, step: Awaitable[bool]) -> None:
        """Finish in a task, through ``_answer`` (its logs, limits, keep-alive)."""
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        conn = self.conn
        conn.task = None
        conn.task = asyncio.ensure_future(conn._answer(self.pending, step))

    def cancel(self) -> bool:
        """The client left while the upgrade waited (``connection_lost``,
        which closes the upstream connection itself): stop, as the task's
        cancellation would."""
        if self.done:
            return False
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        if self.connecting is not None:
            self.connecting.expire()
        self.conn.task = None
        self.pending.limits.release()
        return True


class _Gone:
    """The protocol of a parser whose connection was handed over."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"request parser used after its connection was handed over ({name})")


_GONE: RequestProtocol = _Gone()  # type: ignore[assignment]


async def _raising(exc: BaseException) -> bool:
    raise exc


async def _value(keep: bool) -> bool:
    return keep


class _Stepper:
    """Runs a coroutine of the loop's (``create_connection``) without a task:
    steps it whenever the future it awaits is done; ``expire`` cancels that
    future, as a task's cancellation would (the coroutine closes its socket)."""

    __slots__ = ("coro", "then", "waiting")

    def __init__(
        self, coro: Coroutine[Any, Any, Any], then: Callable[[Any, BaseException | None], None]
    ) -> None:
        self.coro = coro
        self.then = then
        self.waiting: asyncio.Future[Any] | None = None

    def step(self, _: object) -> None:
        """Run the coroutine on to its next wait (or its end)."""
        self.waiting = None
        try:
            fut = self.coro.send(None)
        except StopIteration as stop:
            self.then(stop.value, None)
            return
        except BaseException as exc:  # noqa: BLE001 - handed on, as a task's result
            self.then(None, exc)
            return
        fut._asyncio_future_blocking = False  # as Task.__step does
        self.waiting = fut
        fut.add_done_callback(self.step)

    def expire(self) -> None:
        if self.waiting is not None:
            self.waiting.cancel()


class _HeadReader(asyncio.Protocol):
    """The upstream connection's protocol until the response head is in:
    a simple 101 is read by ``parse_101``; anything else goes, with every
    byte so far, to an ``UpstreamResponse`` that takes the connection over."""

    __slots__ = ("owner", "transport")

    def __init__(self, owner: FastUpgrade) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        head = parse_101(data)
        if head is None:
            self._general().data_received(data)
            return
        assert self.transport is not None
        self.transport.pause_reading()  # the tunnel reads on (as UpstreamResponse's upgrade)
        self.owner.head_read(head)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # never connected: the connect's own error (or timeout) says it
        self._general().connection_lost(exc)

    def _general(self) -> UpstreamResponse:
        owner = self.owner
        head = owner.pending.head
        assert head is not None and self.transport is not None
        response = UpstreamResponse(head_only=head.method == "HEAD", read_timeout=owner.loc.proxy.read_timeout)
        response.connection_made(self.transport)
        self.transport.set_protocol(response)
        response.head_done.add_done_callback(lambda f: _head_done(owner, response, f))
        return response


def _head_done(owner: FastUpgrade, response: UpstreamResponse, fut: asyncio.Future[None]) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is None:
        owner.head_read(response)
    elif isinstance(exc, ConnectionError):
        owner.head_failed(exc)
