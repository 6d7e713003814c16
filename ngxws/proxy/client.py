"""One client connection, from its first byte to a response or a tunnel.

The request is read by ``http.parser`` (nginx's grammar); ``http.engine`` runs nginx's
phases on it, without I/O, and says what to do (``proxy.actions`` does it), as nginx
with the module would:

- a ``ws_stat`` location answers with the statistics page;
- a request with an ``Upgrade`` header on a ``proxy_pass`` location goes
  upstream with the headers nginx would send; on a 101 to websocket the
  client gets the upstream's 101 and both sockets are handed to a ``Tunnel``
  (``proxy.upgrade``: other 101s, and ``ws_max_connections``, which counts
  established tunnels -- at the cap ngxws completes the handshake itself and
  closes with 1013);
- any other request on a ``proxy_pass`` location is proxied as HTTP/1.1,
  the response streamed back, and the client connection kept alive;
- no location: 404; an unreachable upstream: 502 (504 on timeout).

Pipelined requests are answered in order, one at a time.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import secrets
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ngxws.accounting.connstats import CLOSED, READING, WAITING, WRITING
from ngxws.client_certs import ConnectionTLS
from ngxws.config.model import Listen, Location, ProxyPass, Server
from ngxws.http.body_plan import body_plan_for, over_declared_length
from ngxws.http.engine import Action, at_location, on_error, start
from ngxws.http.parser import RequestParser, UpgradeRequest
from ngxws.http.realip import ClientAddress
from ngxws.http.request import BadRequest, HeadBuffers, RequestHead
from ngxws.http.responses import CONTINUE, error_response
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    expects_no_body,
    proxy_host_of,
    proxy_uri,
    sends_client_body,
    split_proxy_url,
)
from ngxws.proxy import fast_upgrade
from ngxws.proxy.actions import carry_out
from ngxws.proxy.deadline import within
from ngxws.proxy.fifo_timers import FifoTimers
from ngxws.proxy.pending import Pending
from ngxws.proxy.request_body import ReadTimer, forget, open_body, send_body, upstream_framing
from ngxws.proxy.response_pass import SendTimer
from ngxws.proxy.static_send import WriteGate
from ngxws.proxy.upgrade import EARLY_DATA_LIMIT
from ngxws.proxy.upstream import (
    NEXT_STATUSES,
    Attempts,
    UpstreamLink,
    UpstreamUnavailable,
    connect_upstream,
)
from ngxws.proxy.upstream_response import UpstreamResponse
from ngxws.proxy_protocol import ProxyHeader
from ngxws.routing.servers import VirtualHosts
from ngxws.running import running_loop
from ngxws.tls import upstream_tls

if TYPE_CHECKING:
    from ngxws.proxy.context import WorkerContext


_CONNECTIONS = itertools.count(1)


_Pending = Pending  # the name client.py's code uses


class ClientConnection(asyncio.Protocol):
    """HTTP phase of a client connection (the tunnel phase is ``Tunnel``'s)."""

    address: ClientAddress  # made by connection_made

    # Immutable starting values, kept on the class: an instance sets its own
    # when it changes one (nothing here is changed in place).  Fewer stores
    # per connection; what is mutable is made in __init__.
    transport: asyncio.Transport | None = None
    task: fast_upgrade.Cancellable | None = None  # a Task, or a FastUpgrade
    remote_addr = ""
    remote_port = 0
    server_addr = ""
    server_port = 0
    closed = False
    eof = False
    handed_over = False
    upstream_transport: asyncio.Transport | None = None
    # request being parsed
    _url = b""
    _body_size = 0
    _current: _Pending | None = None
    held: _Pending | None = None  # an upgrade request not answered yet
    _timer: FifoTimers | None = None  # client_header_timeout / keepalive_timeout's, while armed
    _max_body = 1024 * 1024
    _body_timer: ReadTimer | None = None  # client_body_timeout
    _send_timer: SendTimer | None = None  # made when first used (send_timer)
    remote_user = ""  # $remote_user: the Basic user name of the request
    tls: ConnectionTLS | None = None  # $ssl_* and client certificate checks
    requests = 0  # $connection_requests
    request_id = ""  # $request_id of the current request, made when first read
    _headless = False  # the next _write is a head to drop (HTTP/0.9)
    stat_state = CLOSED  # what stub_status counts it as (connstats.py)

    def __init__(
        self,
        worker: WorkerContext,
        listen: Listen,
        vhosts: VirtualHosts,
        proxy: ProxyHeader | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._preface = proxy  # a PROXY protocol preface's addresses
        self._loop = loop  # the worker's (running_loop() without it)
        self.worker = worker
        self.listen = listen
        self.vhosts = vhosts
        self.scheme = "https" if listen.ssl else "http"
        self.parser = RequestParser(self, heads=True)
        self.queue: deque[_Pending] = deque()
        self._headers: list[tuple[str, str]] = []
        self._head_buffers = HeadBuffers(*vhosts.default.large_client_header_buffers)
        self._write_gate: WriteGate | None = None  # made when first used (write_gate)
        self.auth_vars: dict[str, str] = {}  # auth_request_set's variables
        # WWW-Authenticate of a 401/403: nginx keeps it in headers_out through error_page
        self.error_headers: list[tuple[str, str]] = []
        self.script_vars: dict[str, str] = {}  # set $name (the rewrite module)
        self.number = next(_CONNECTIONS)  # $connection
        self.script_named: Mapping[str, str] = {}  # (?<name>...) of the last regex match

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        address = self.address = ClientAddress.of(transport, self._preface)  # realip's, per request
        (self.remote_addr, self.remote_port), (self.server_addr, self.server_port) = address.peer, address.local
        if self.listen.ssl:  # no ssl_object on a plain listener
            sslobj = transport.get_extra_info("ssl_object")
            self.tls = ConnectionTLS(sslobj) if sslobj is not None else None
        self.worker.connections.add(self)
        self.stat_state = self.worker.conn_stats.opened()
        # _arm_timer(), no timer to cancel yet
        timer = self._timer = FifoTimers.of(self._loop or running_loop(), self.vhosts.default.client_header_timeout)
        timer.arm(self, self._timeout)

    def data_received(self, data: bytes) -> None:
        if self.stat_state == WAITING:  # ngx_http_create_request: a request begins
            self.stat_state = self.worker.conn_stats.request(WAITING)
        held = self.held
        if held is not None:
            # nginx reads no further than an upgrade request until it is
            # answered: what comes meanwhile is the tunnel's first bytes (or
            # the next request's).  Reading goes on so that a client leaving
            # is noticed at once.
            held.leftover += data
            if len(held.leftover) > EARLY_DATA_LIMIT:
                self._pause()
            return
        if not self._head_buffers.done:
            status = self._head_buffers.feed(data)
            if status:
                # nginx parses as it reads: a bad byte before the overflow is seen first
                status = self.parser.error_in(data[: self._head_buffers.at]) or status
                self._current = None
                self.queue.append(_Pending(None, error=status))
                self._pause()
                self._kick()
                return
        try:
            self.parser.feed_data(data)
        except UpgradeRequest as exc:
            # the request (and its body) is complete: the rest is the tunnel's
            pending = self.queue[-1] if self.queue else None
            if pending is not None and pending.head is not None:
                pending.upgrade = True
                pending.leftover = data[exc.args[0] :]
                self.held = pending
            else:
                self._pause()
        except BadRequest as exc:
            cur, self._current = self._current, None
            if cur is not None and cur.head is not None and cur in self.queue and cur.error != 413:
                # its body is malformed: the request fails whole, nothing
                # of it goes upstream (nginx reads the body first, and
                # checks what came with the head when it discards it)
                cur.head, cur.error = None, exc.status
            else:
                # a discarded body that is malformed: nginx just closes
                self.queue.append(_Pending(None, error=-1 if cur is not None else exc.status))
            self.queue[-1].http09 = getattr(exc, "http09", False)
            self._pause()
        self._kick()

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.held is not None and not self.handed_over:
            # the client left while its upgrade waits: nginx finalizes the
            # request (499) and closes the upstream connection with it
            return None
        if self.task is None and not self.queue:
            return None  # close
        cur = self._current
        if cur is not None and cur.body is not None and not cur.body.complete and not cur.complete:
            # ngx_http_read_client_request_body(): the body can never be whole
            self.worker.log_info("client prematurely closed connection while reading client request body")
            return None
        return True  # finish answering what was asked

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.stat_state = self.worker.conn_stats.closed(self.stat_state)
        self.cancel_timer()
        self._end_body_timer()
        if self._send_timer is not None:
            self._send_timer.stop()
        for p in (self._current, *self.queue):
            if p is not None:
                forget(None, p.body)
        self.worker.connections.discard(self)
        if self.task is not None and not self.handed_over:
            self.task.cancel()
        if self.upstream_transport is not None and not self.handed_over:
            self.upstream_transport.close()

    @property
    def send_timer(self) -> SendTimer:
        """send_timeout for blocked writes; made when first needed."""
        timer = self._send_timer
        if timer is None:
            timer = self._send_timer = SendTimer(self.vhosts.default.send_timeout)
        return timer

    @property
    def write_gate(self) -> WriteGate:
        """pause/resume_writing, for files sent (static_send); made when first needed."""
        gate = self._write_gate
        if gate is None:
            gate = self._write_gate = WriteGate()
        return gate

    @write_gate.setter
    def write_gate(self, gate: WriteGate) -> None:
        self._write_gate = gate

    def pause_writing(self) -> None:
        if self.upstream_transport is not None:
            self.upstream_transport.pause_reading()
        self.send_timer.start(self._send_timed_out)
        self.write_gate.pause()  # (made here if not yet)

    def resume_writing(self) -> None:
        if self._send_timer is not None:
            self._send_timer.stop()
        if self._write_gate is not None:  # none made: nothing waits on it
            self._write_gate.resume()
        if self.upstream_transport is not None and not self.upstream_transport.is_closing():
            self.upstream_transport.resume_reading()

    # -- request parser callbacks ---------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body_size = 0
        self._current = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # sizes are checked on the raw bytes (HeadBuffers, in data_received)
        # names nginx ignores (ignore_invalid_headers, underscores) never reach here (parser)
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.cancel_timer()
        if self.stat_state == READING:  # ngx_http_process_request
            self.stat_state = self.worker.conn_stats.move(READING, WRITING)
        p = self.parser
        version = p.get_http_version()
        head = RequestHead(
            method=p.get_method().decode("latin-1"),
            target=self._url.decode("latin-1"),
            version=version,
            headers=self._headers,
            keep_alive=p.should_keep_alive(),
        )
        self._queue_head(head)

    def on_request_head(self, head: RequestHead, plain: bool) -> None:
        """A head of the common shape, read whole (http.fast_head): on_message_begin
        to on_headers_complete in one call.  ``plain``: no Content-Length,
        Transfer-Encoding or Expect -- no body to plan for, no 100 to send
        (``Pending.complete`` is read only while the request is ``_current``,
        and a bodyless one is not after its head), and the request is complete."""
        self._body_size = 0
        if self._timer is not None:  # cancel_timer()
            self._timer.cancel(self)
            self._timer = None
        if self.stat_state == READING:  # ngx_http_process_request
            self.stat_state = self.worker.conn_stats.move(READING, WRITING)
        if not plain:
            self._queue_head(head)
            return
        # _queue_head's plain case, then on_message_complete's (no body: the
        # request is complete; the parser calls no on_message_complete)
        queue = self.queue
        queue.append(_Pending(head))  # HTTP/1.x: not http09
        if len(queue) > 1:
            self._pause()
        self._current = None
        if self._body_timer is not None:  # _end_body_timer()
            self._body_timer.cancel()
            self._body_timer = None
        self._head_buffers.reset()

    def _queue_head(self, head: RequestHead) -> None:
        """The rest of on_headers_complete: the request queued, its body planned."""
        # nginx's checks on the head (Host, versions, Transfer-Encoding...)
        # were made by the parser
        version = head.version
        self._current = _Pending(head)
        self._current.http09 = version == "0.9"
        self.queue.append(self._current)
        plan, scope = body_plan_for(self.vhosts, head)
        self._max_body = plan.limit
        # a body nginx discards (the answer does not wait for it) is not stored
        body = self._current.body = None if plan.at_once else open_body(head, scope, plan.proxied)
        if body is not None and self.transport is not None:
            body.on_drained = self._resume
            self._body_timer = ReadTimer(self.transport, scope.client_body_timeout, self._body_timed_out)
        if plan.sends_continue and version == "1.1" and len(self.queue) == 1 and self.task is None:
            expect = head.header("expect")
            if expect is not None and expect.lower() == "100-continue":
                # ngx_http_test_expect(), run when the body is read or discarded
                self.write(CONTINUE)
        if over_declared_length(head, self._max_body):  # answered before the body is read
            self._current.error = 413
            self._current.complete = True
            self._pause()
        elif plan.at_once:
            self._current.complete = True  # answered at once, the body is discarded
        if len(self.queue) > 1:
            self._pause()

    def on_body(self, body: bytes) -> None:
        cur = self._current
        if cur is None:
            return
        if self._body_timer is not None:
            self._body_timer.touch()
        self._body_size += len(body)
        if self._max_body and self._body_size > self._max_body:
            if not cur.error:
                cur.error = 413
            if cur.body is not None and cur.body.streaming:
                self._close()  # part of it went upstream already: nginx ends the request
            return
        if cur.body is not None:
            try:
                cur.body.feed(body)
            except OSError as exc:  # temp file: disk full, no such directory...
                self.worker.log_error(f"cannot store the request body: {exc}")
                self._close()
                return
            if cur.body.over_buffer:
                self._pause()  # streaming: the upstream takes it slower than it comes

    def on_message_complete(self) -> None:
        cur, self._current = self._current, None
        if cur is not None and cur.body is not None:
            cur.body.finish()
        if self._body_timer is not None:  # _end_body_timer()
            self._body_timer.cancel()
            self._body_timer = None
        self._head_buffers.reset()

    # -- request processing ---------------------------------------------

    def _pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _kick(self) -> None:
        """Start answering the first complete request, if not already busy."""
        if self.task is not None or not self.queue:
            return
        first = self.queue[0]
        streaming = first.body is not None and first.body.streaming
        if first.head is not None and self._current is first and not (first.upgrade or first.complete or streaming):
            return  # body still arriving
        self.queue.popleft()
        if first.upgrade and fast_upgrade.start(self, first):
            return  # a plain upgrade, answered by callbacks
        self.task = asyncio.ensure_future(self._answer(first))

    async def _answer(self, pending: _Pending, resume: Awaitable[bool] | None = None) -> None:
        """Answer ``pending``; ``resume``: what is left of an answer begun
        elsewhere (fast_upgrade), instead of the phases from the start."""
        keep = False
        self._headless = pending.http09
        try:
            keep = await (self._dispatch(pending) if resume is None else resume)
        except BadRequest as exc:
            self.write(error_response(exc.status))
        except Exception as exc:  # never let one request kill the worker
            self.worker.log_error(f"internal error: {exc!r}")
            self.write(error_response(500))
        finally:
            self.task = None
            if not self.handed_over:
                pending.limits.release()  # a tunnel gives its limit_conn counts back when it closes
            if pending.body is not None and not pending.body.complete:
                keep = False  # answered before the (streamed) body was all in
            forget(pending.sender, pending.body)
        if self.handed_over or self.closed:
            return
        if self.held is pending:
            self.held = None  # not upgraded: the parser reads on from what came after it
        if not keep or (self.eof and not self.queue):
            self._close()
            return
        # ngx_http_set_keepalive: the request is freed; a next one whose
        # head is in already begins at once (it is processed: "writing"),
        # else the connection waits (a head partly in counts from its next bytes)
        stats = self.worker.conn_stats
        if self.queue or self._current is not None:
            self.stat_state = stats.move(stats.request(self.stat_state), WRITING)
        else:
            self.stat_state = stats.move(self.stat_state, WAITING)
        self._arm_timer(self.vhosts.default.keepalive_timeout)
        self._resume()
        if pending.leftover:  # an upgrade that did not happen: read on, before anything newer
            leftover, pending.leftover = pending.leftover, b""
            self.data_received(leftover)
        self._kick()

    async def _dispatch(self, pending: _Pending) -> bool:
        """Answer one request; return whether the connection stays open: the
        engine (ngxws.http.engine) runs nginx's phases and says what to do,
        ``actions`` does it."""
        if pending.head is None:
            if pending.error >= 0:
                self.write(error_response(pending.error or 400))
            return False
        return await carry_out(self, start(self.worker.world, self, self.vhosts, pending))

    async def run_location(
        self, pending: _Pending, server: Server, loc: Location, captures: tuple[str, ...], keep: bool
    ) -> bool:
        """From the location rewrite phase on (try_files, index, error_page @name)."""
        return await carry_out(self, at_location(self.worker.world, self, pending, server, loc, captures, keep))

    async def answer_error(
        self,
        status: int,
        pending: _Pending,
        server: Server,
        loc: Location | None,
        keep: bool,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> bool:
        """An error nginx generates itself (error_page, else its own page)."""
        action = on_error(self.worker.world, self, status, pending, server, loc, keep, extra_headers)
        return await carry_out(self, action)

    async def carry(self, action: Action) -> bool:
        """Carry out an engine action (an X-Accel-Redirect's: proxy/x_accel.py)."""
        return await carry_out(self, action)

    def proxy_target(self, pp: ProxyPass, v: RequestVariables) -> ProxyPass:
        """``proxy_pass`` with variables, rendered for this request: the host
        may name an upstream block, else it is an address or a name."""
        if not pp.has_variables:
            return pp
        split = split_proxy_url(v.render(pp.url))
        if split is None:
            raise UpstreamUnavailable(500, f'invalid URL prefix in "{v.render(pp.url)}"')
        scheme, host, port, uri = split
        upstream = self.worker.config.upstream(host)
        return replace(
            pp,
            scheme=scheme,
            host=host,
            port=port,
            uri=uri,
            upstream=upstream.name if upstream is not None else None,
            has_variables=False,
        )

    def variables(self, head: RequestHead, server: Server, captures: tuple[str, ...]) -> RequestVariables:
        return RequestVariables(
            head=head,
            remote_addr=self.remote_addr,
            remote_port=self.remote_port,
            server_addr=self.server_addr,
            server_port=self.server_port,
            server_name=server.server_names[0] if server.server_names else "",
            scheme=self.scheme,
            captures=captures,
            remote_user=self.remote_user,
            maps=self.worker.maps,
            tls=self.tls,
            auth_set=self.auth_vars,
            client_address=self.address,
            variables=self.script_vars,
            named=self.script_named,
            connection=self.number,
            connection_requests=self.requests,
            random_hex=self.current_request_id,
            stub=self.worker.counters.stub_totals,
        )

    def current_request_id(self) -> str:
        """``$request_id``: one per request, whoever reads it first (the
        proxy's headers, a return, or the ws log at tunnel open)."""
        if not self.request_id:
            self.request_id = secrets.token_hex(16)
        return self.request_id

    async def open_upstream(
        self, pending: _Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> tuple[UpstreamResponse, str]:
        """Connect, send the request head (and body); return the response reader."""
        head = pending.head
        assert head is not None and loc.proxy_pass is not None
        v = self.variables(head, server, captures)
        v.limits, v.status = pending.limits, pending.status_override or 0
        pp = self.proxy_target(loc.proxy_pass, v)
        v.proxy_host = proxy_host_of(pp)
        v.proxy_port = str(pp.port) if pp.unix is None else ""
        v.body_length, v.chunked = upstream_framing(head, pending.body)
        uri = proxy_uri(loc.proxy_pass, loc.pattern, loc.modifier, v)
        selector = await self.worker.pools.selector_for(pp, loc.proxy, loc.proxy_pass.has_variables)
        key = self.remote_addr
        if selector.balance == "hash" and selector.hash_key:
            key = v.render(selector.hash_key)
        attempts = Attempts(selector, key, loc.proxy)
        head_only = expects_no_body(loc.proxy, v)
        raw_head = build_upstream_head(uri, loc.proxy, v)
        while True:  # a peer whose answer proxy_next_upstream refuses: the next one
            response = UpstreamResponse(head_only=head_only, read_timeout=loc.proxy.read_timeout)
            link = await connect_upstream(
                selector, loc.proxy, functools.partial(_same, response), attempts, tls=upstream_tls(pp, loc.proxy)
            )
            self.upstream_transport = link.transport
            if self.closed:
                link.transport.close()
                raise asyncio.CancelledError
            failure = await self._send_and_read(pending, loc, link, response, raw_head, v.chunked)
            if failure is None:
                return response, link.addr
            word, status, detail = failure
            if word is None or not attempts.may_go_on(loc.proxy, word, head.method):
                if status == 0:  # an answer no word sends on: it is passed as it came
                    return response, link.addr
                raise UpstreamUnavailable(status, detail)
            link.transport.close()
            attempts.move_on(selector, link.peer, word, status or 502, detail)

    async def _send_and_read(
        self, pending: _Pending, loc: Location, link: UpstreamLink, response: UpstreamResponse,
        raw_head: bytes, chunked: bool,
    ) -> tuple[str | None, int, str] | None:
        """Send the request (head and body) to ``link`` and wait for the
        answer's head: None when it is in and proxy_next_upstream has nothing
        to say about it; else (the proxy_next_upstream word it is, or None
        when no retry may follow, the status nginx answers -- 0: the
        upstream's own answer stands -- and the error text)."""
        link.transport.write(raw_head)
        body = pending.body
        if body is not None and pending.sender is not None:  # sent once already (error_page, a retry)
            forget(pending.sender, None)
            body.rewind()
        if body is not None and (body.size or body.streaming) and sends_client_body(loc.proxy):
            pending.sender = asyncio.ensure_future(
                send_body(link.transport, response, body, chunked, loc.proxy.send_timeout)
            )
        # a body sent as it came (proxy_request_buffering off) cannot be sent again
        again = not (body is not None and body.streaming)
        try:
            if pending.sender is not None:
                # an upstream may answer before it has read the whole body
                await asyncio.wait((pending.sender, response.head_done), return_when=asyncio.FIRST_COMPLETED)
                if not response.head_done.done() and isinstance(pending.sender.exception(), asyncio.TimeoutError):
                    response.head_done.cancel()  # nobody waits for it any more
                    link.transport.close()
                    return ("timeout" if again else None), 504, "upstream timed out while sending request to upstream"
            await within(response.head_done, loc.proxy.read_timeout)
        except asyncio.TimeoutError:
            link.transport.close()
            return ("timeout" if again else None), 504, "upstream timed out while reading response header"
        except ConnectionError as exc:
            link.transport.close()
            return ("error" if again else None), 502, str(exc)
        word = NEXT_STATUSES.get(response.status)
        return None if word is None else ((word if again else None), 0, "")

    # -- output and lifetime -----------------------------------------------

    def write(self, data: bytes) -> None:
        if self._headless:
            # HTTP/0.9: nginx's header filter sends no head, only the body
            self._headless = False
            data = data.partition(b"\r\n\r\n")[2]
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _arm_timer(self, seconds: float) -> None:
        self.cancel_timer()
        timer = self._timer = FifoTimers.of(running_loop(), seconds)
        timer.arm(self, self._timeout)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel(self)
            self._timer = None

    def _end_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        # ngx_http_read_client_request_body_handler(): 408 terminates the
        # request -- nothing is sent, the connection (and upstream) closes
        self._body_timer = None
        self.worker.log_info("client timed out (110: Connection timed out) while reading client request body")
        if self.upstream_transport is not None:
            self.upstream_transport.close()
        self._close()

    def _send_timed_out(self) -> None:
        # send_timeout: nginx finalizes with 408 and closes; the unsent rest is dropped
        if self.handed_over:
            return  # the tunnel keeps its own send_timeout
        self.worker.log_info("client timed out (110: Connection timed out) while sending to client")
        if self.transport is not None:
            self.transport.abort()

    def _timeout(self) -> None:
        # client_header_timeout / keepalive_timeout: nginx just closes.
        if self.task is None and not self.handed_over:
            self._close()

    def shutdown(self, waiting_too: bool) -> None:
        """Worker is stopping: a connection between keep-alive requests goes
        at once (nginx's ``c->idle``, closed by ngx_close_idle_connections());
        one with no request in progress otherwise -- none yet, or a head
        partly in -- only with ``waiting_too``: nginx serves those, the worker
        waiting for their timers, and ngxws gives them DRAIN_IDLE_GRACE."""
        if self.task is None and not self.handed_over:
            if waiting_too or (self.requests and self.stat_state == WAITING):
                self._close()


def _same(protocol: asyncio.Protocol) -> asyncio.Protocol:
    """A protocol factory handing out one protocol made beforehand."""
    return protocol
