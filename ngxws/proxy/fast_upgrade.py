"""A websocket upgrade answered by callbacks: no task, no coroutine.

The engine (ngxws.http.engine) runs nginx's phases synchronously for every
request.  When its action is an upgrade to a ``proxy_pass`` with a fixed
plain-HTTP address or upstream block (``fast_target``), no request body,
on a plain listener, below the ``ws_max_connections`` cap, ``start`` drives
the upgrade as nginx does, event by event:

    head complete -> connect started (timer: proxy_connect_timeout)
    connected     -> the request head written (timer re-armed:
                     proxy_read_timeout of the response head)
    101 read      -> head101's fast read (else UpstreamResponse) -> Tunnel

Any other action, and everything that is not that straight line -- the
upstream unreachable or timing out (502/504 through error_page), another
answer than a websocket 101, the cap reached, an internal error --
continues in a task through the very coroutines the general path uses
(``ClientConnection._answer`` with the step to resume: ``carry_out`` of
the action, ``upgrade.upstream_failed``/``upgrade_answered``), so the
answers, logs and counters are theirs.  The connect walks the peers as
``upstream.connect_upstream`` does (the same selector calls, messages and
``proxy_next_upstream`` rule); the loop's ``create_connection`` coroutine
is stepped by hand on its futures' callbacks instead of by a task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from ngxws.http.content import Upgrade
from ngxws.http.engine import Content
from ngxws.http.engine import phases as engine_phases
from ngxws.http.parser import RequestParser, RequestProtocol
from ngxws.http.plain_phases import plain_request
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    expects_no_body,
    proxy_uri,
)
from ngxws.proxy.actions import carry_out
from ngxws.proxy.context import RequestIO
from ngxws.proxy.dial import Dial, family_of
from ngxws.proxy.fifo_timers import FifoTimers
from ngxws.proxy.head101 import parse_101
from ngxws.proxy.request_body import upstream_framing
from ngxws.proxy.upgrade import asks_websocket, tunnel_now, upgrade_answered, upstream_failed
from ngxws.proxy.upgrade_plan import UpgradePlan, plan_of
from ngxws.proxy.upstream import (
    NEXT_STATUSES,
    Attempts,
    UpstreamUnavailable,
    connect_failure,
    connect_failure_word,
    timed_out,
)
from ngxws.proxy.upstream_response import SwitchHead, UpstreamResponse
from ngxws.running import running_loop
from ngxws.ws.frames import CSplice

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ngxws.config.model import Listen, Location, Server
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
    listen: Listen
    _headless: bool
    parser: RequestParser
    script_vars: dict[str, str]
    script_named: Mapping[str, str]
    auth_vars: dict[str, str]

    def _answer(self, pending: Pending, resume: Awaitable[bool] | None = None) -> Coroutine[Any, Any, None]: ...


def born_spliced(conn: FastConn, server: Server, plan: UpgradePlan | None = None) -> bool:
    """Whether the tunnel of this upgrade will be relayed in C from its start
    (splice.py): a server that logs no frames, a plain TCP client (``plan``:
    the location's, which notes whether its server logs)."""
    listen = conn.listen
    if listen.unix or listen.ssl or listen.proxy_protocol:
        return False
    if plan is None:
        return not conn.worker.logs_tunnels(server)
    logs = plan.logs
    if logs is None or logs[0] is not server:  # a location of one server: noted once
        logs = plan.logs = (server, conn.worker.logs_tunnels(server))
    return not logs[1]


def fast_target(loc: Location) -> bool:
    """Whether the engine's upgrade can be carried out here: a ``proxy_pass``
    to a fixed ``http://`` address or upstream block (no name to resolve,
    no TLS or unix socket to the upstream)."""
    pp = loc.proxy_pass
    return pp is not None and not pp.has_variables and pp.unix is None and pp.scheme == "http"


def start(conn: FastConn, pending: Pending) -> bool:
    """Answer ``pending`` (an upgrade request) without a task where it can:
    the engine (ngxws.http.engine) runs the phases synchronously; an
    upgrade to a ``fast_target`` below the cap goes on by callbacks, any
    other action is carried out in a task (``_answer`` resumed with it).
    False: not taken (a body, HTTP/0.9, a TLS client), the caller starts
    the general task."""
    head = pending.head
    if head is None or pending.error or pending.body is not None or pending.http09 or conn.tls is not None:
        return False
    try:
        # engine.start: a request no phase acts on (its Content not made
        # when the upgrade goes on here), else the phases
        plain = plain_request(conn, conn.vhosts, pending)
        action = None if plain is not None else engine_phases(conn.worker.world, conn, conn.vhosts, pending)
    except Exception as exc:  # as _answer does: 500, logged
        conn.task = asyncio.ensure_future(conn._answer(pending, _raising(exc)))
        return True
    content = plain if action is None else (
        (action.handler, action.server, action.loc, action.captures) if isinstance(action, Content) else None
    )
    if content is not None and isinstance(content[0], Upgrade) and fast_target(content[2]):
        limit = content[1].ws.max_connections
        # at_limit() of no limit (0) is False: the Upgrade header is not read for it
        if not (limit and asks_websocket(head) and conn.worker.counters.at_limit(limit)):
            FastUpgrade(conn, pending, content[1], content[2], content[3])
            return True
    if action is None:
        assert content is not None
        action = Content(content[0], pending, content[1], content[2], content[3], head.keep_alive)
    # anything else (the 1013 refusal too) as the general path does it
    conn.task = asyncio.ensure_future(conn._answer(pending, carry_out(conn, action)))
    return True


class FastUpgrade:
    """One upgrade in flight, kept as ``conn.task`` (``cancel``: the client left)."""

    __slots__ = (
        "conn", "pending", "server", "loc", "captures", "plan", "_v", "timer", "connecting",
        "attempts", "selector", "transport", "peer", "addr", "done", "dial", "loop",
    )

    def __init__(
        self, conn: FastConn, pending: Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> None:
        self.conn = conn
        self.pending = pending
        self.server = server
        self.loc = loc
        self.captures = captures
        self._v: RequestVariables | None = None  # made when something reads it (variables())
        # proxy_connect_timeout's queue, then proxy_read_timeout's (which
        # holds this object's timer: fifo_timers.py, re-arming is cheap)
        self.timer: FifoTimers | None = None
        self.connecting: _Stepper | Dial | None = None
        self.transport: asyncio.Transport | Dial | None = None
        # the upstream a plain socket (dial.py) when the tunnel will be
        # relayed in C from its start (splice.py): no transport on that side
        self.dial = False  # _phases() says
        self.loop = running_loop()
        self.addr = ""
        self.done = False
        self.peer: PeerTarget | None = None  # the one connected to
        conn.task = self
        try:
            self._phases()
            self._connect_next()
        except Exception as exc:  # as _answer does: 500, logged
            self._resume(_raising(exc))

    def _phases(self) -> None:
        """What ``open_upstream`` sets up before it connects (the engine ran
        the phases): the peers to try (the location's plan: upgrade_plan.py)."""
        conn = self.conn
        conn._headless = False  # not HTTP/0.9: start checked
        worker = conn.worker
        plan: UpgradePlan = plan_of(self.loc, worker.pools, worker.maps)
        self.plan = plan
        self.dial = CSplice is not None and born_spliced(conn, self.server, plan)
        selector: PeerSelector = plan.selector
        self.selector = selector
        key = self.variables().render(selector.hash_key or "") if plan.hashed else conn.remote_addr
        self.attempts = Attempts(selector, key, self.loc.proxy)

    def variables(self) -> RequestVariables:
        """The request's variables as ``open_upstream`` sets them up, made
        on first use (the plan's head needs none)."""
        v = self._v
        if v is None:
            pending = self.pending
            head = pending.head
            assert head is not None
            v = self._v = self.conn.variables(head, self.server, self.captures)
            v.limits, v.status = pending.limits, pending.status_override or 0
            v.proxy_host = self.plan.proxy_host
            v.proxy_port = self.plan.proxy_port
            v.body_length, v.chunked = upstream_framing(head, None)
        return v

    # -- connect: upstream.connect_upstream's walk, by callbacks -------------

    def _connect_next(self, decided: bool = False) -> None:
        """The next peer (``decided``: proxy_next_upstream was asked already)."""
        attempts = self.attempts
        if attempts.tried and not decided and not attempts.may_go_on(self.loc.proxy, connect_failure_word(attempts.last[0])):
            self._failed(UpstreamUnavailable(*attempts.last))
            return
        peer = next(attempts.candidates, None)
        if peer is None:
            self._failed(UpstreamUnavailable(*attempts.last))
            return
        attempts.tried += 1
        loop = self.loop
        self._stop_timer()  # the previous peer's
        family = None
        if self.dial and peer.conf.unix is None:
            family = peer.family
            if family == -1:  # not known yet
                family = peer.family = family_of(peer.host)
        if family is not None:
            try:
                dial = self.connecting = Dial(self, peer, family, loop)
            except OSError as exc:  # socket() failed
                self.connected(peer, None, exc)
                return
            if dial.at_once:
                # connected already (loopback): on at once, with no connect
                # timer -- ngx_http_upstream_connect() arms proxy_connect_timeout
                # only when the connect returned NGX_AGAIN
                dial.connect_done()
                return
            self._arm_timer(self.loc.proxy.connect_timeout)
            return
        self._arm_timer(self.loc.proxy.connect_timeout)  # first: the loop's connect may end inside step()
        reader = _HeadReader(self)  # not kept here: no cycle to leave to the collector
        if peer.conf.unix is not None:  # an upstream block's unix: server
            coro = loop.create_unix_connection(lambda: reader, peer.conf.unix)
        else:
            coro = loop.create_connection(lambda: reader, peer.host, peer.port)
        stepper = self.connecting = _Stepper(coro, lambda result, exc: self._connected(peer, result, exc))
        stepper.step(None)  # may end at once (a socket() error): _connected runs from here

    def connected(self, peer: PeerTarget, dial: Dial | None, exc: BaseException | None) -> None:
        """A ``Dial``'s connect ended (``dial`` None: it failed with ``exc``)."""
        self._connected(peer, None if dial is None else (dial, None), exc)

    def _connected(self, peer: PeerTarget, result: Any, exc: BaseException | None) -> None:
        self.connecting = None
        if self.done:  # the client left meanwhile
            if result is not None:
                result[0].close()
            return
        if exc is not None:
            if isinstance(exc, asyncio.CancelledError):  # proxy_connect_timeout
                self.selector.failed(peer)
                self.attempts.last = timed_out(peer)
                self._connect_next()
                return
            if not isinstance(exc, OSError):
                self._resume(_raising(exc))
                return
            try:
                self.attempts.last = connect_failure(self.selector, peer, exc, None)
            except UpstreamUnavailable as fatal:
                self._failed(fatal)
                return
            self._connect_next()
            return
        self.selector.succeeded(peer)
        transport: asyncio.Transport | Dial = result[0]
        self.addr = peer.label
        self.peer = peer
        conn = self.conn
        conn.upstream_transport = self.transport = transport  # type: ignore[assignment]  # a Dial is one to it
        try:
            head = self.pending.head
            assert head is not None
            data = None
            # set, named captures and auth_request_set values come before
            # the names the plan reads (RequestVariables.get)
            if not (conn.script_vars or conn.script_named or conn.auth_vars):
                data = self.plan.head(head, self.server)
            if data is None:
                v = self.variables()
                assert self.loc.proxy_pass is not None
                uri = proxy_uri(self.loc.proxy_pass, self.loc.pattern, self.loc.modifier, v)
                data = build_upstream_head(uri, self.loc.proxy, v)
            transport.write(data)
        except Exception as err:
            self._resume(_raising(err))
            return
        self._arm_timer(self.loc.proxy.read_timeout)

    def _arm_timer(self, seconds: float) -> None:
        """This upgrade's one timer, now ``seconds``'s (the one armed before stopped)."""
        self._stop_timer()
        timers = self.timer = FifoTimers.of(self.loop, seconds)
        timers.arm(self, self._expired)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel(self)
            self.timer = None

    def _expired(self) -> None:
        """The timer: the connect is late, or (re-armed) the response head."""
        self.timer = None
        if self.done:
            return
        if self.connecting is not None:
            self.connecting.expire()  # proxy_connect_timeout (_connected sees it cancelled)
            return
        self._read_timed_out()

    # -- the response head -----------------------------------------------------

    def _read_timed_out(self) -> None:
        if self.done:
            return
        if self.transport is not None:
            self.transport.close()
        detail = "upstream timed out while reading response header"
        if not self._next_peer("timeout", 504, detail):
            self._failed(UpstreamUnavailable(504, detail))

    def _next_peer(self, word: str, status: int, detail: str) -> bool:
        """ngx_http_upstream_next() once the request was sent: the upstream
        connection closed and the next peer tried when proxy_next_upstream
        names ``word``; False when the answer stands."""
        head = self.pending.head
        assert head is not None and self.peer is not None
        if not self.attempts.may_go_on(self.loc.proxy, word, head.method):
            return False
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()
        self.attempts.move_on(self.selector, self.peer, word, status, detail)
        self.transport = self.conn.upstream_transport = None
        self._connect_next(decided=True)
        return True

    def head_read(self, response: SwitchHead) -> None:
        """The response head is in (a simple 101, or ``UpstreamResponse``'s)."""
        if self.done:
            return
        self._stop_timer()
        conn, pending = self.conn, self.pending
        try:
            keep = tunnel_now(conn, pending, self.server, self.loc, response, self.addr)
        except Exception as exc:
            self._resume(_raising(exc))
            return
        if keep is None:  # another answer, or a switch not tunnelled
            word = NEXT_STATUSES.get(response.status)
            if word is not None and self._next_peer(word, 502, ""):
                return
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
        if not self._next_peer("error", 502, str(exc)):
            self._failed(UpstreamUnavailable(502, str(exc)))

    def general_response(self, dial: Dial) -> UpstreamResponse:
        """The reader of an answer a ``Dial`` does not read itself (see dial.py)."""
        head = self.pending.head
        assert head is not None
        response = UpstreamResponse(head_only=expects_no_body(self.loc.proxy, self.variables()), read_timeout=self.loc.proxy.read_timeout)
        response.head_done.add_done_callback(lambda f: _head_done(self, response, f))
        return response

    def adopted(self, transport: asyncio.BaseTransport) -> bool:
        """The loop's transport made of a ``Dial``'s socket reads on; False
        (and closed) when the request ended meanwhile."""
        if self.done:
            transport.close()
            return False
        self.conn.upstream_transport = self.transport = transport  # type: ignore[assignment]
        return True

    # -- endings -----------------------------------------------------------------

    def _failed(self, exc: UpstreamUnavailable) -> None:
        self._resume(upstream_failed(self.conn, self.pending, self.server, self.loc, exc))

    def _resume(self, step: Awaitable[bool]) -> None:
        """Finish in a task, through ``_answer`` (its logs, limits, keep-alive)."""
        self.done = True
        self._stop_timer()
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
        self._stop_timer()
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
        response = UpstreamResponse(head_only=expects_no_body(owner.loc.proxy, owner.variables()), read_timeout=owner.loc.proxy.read_timeout)
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
