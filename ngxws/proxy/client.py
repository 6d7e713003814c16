"""One client connection, from its first byte to a response or a tunnel.

The request is read by ``http.parser`` (nginx's grammar); the request is matched to a server
and a location (``routing``), and then, as nginx with the module would:

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
import itertools
import secrets
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from ngxws.access import basic_user
from ngxws.client_certs import ConnectionTLS, request_status
from ngxws.config.model import (
    ErrorPage,
    Listen,
    Location,
    ProxyPass,
    Return,
    Server,
)
from ngxws.config.rewrite import scripted
from ngxws.http.body_plan import BodyPlan, plan_body
from ngxws.http.content import Error, ProxyHTTP, Static, StatsPage, Upgrade, decide
from ngxws.http.parser import RequestParser, UpgradeRequest
from ngxws.http.realip import ClientAddress
from ngxws.http.request import BadRequest, HeadBuffers, RequestHead
from ngxws.http.responses import (
    CONTINUE,
    build_response,
    error_response,
    redirect_response,
)
from ngxws.http.rewrite import content_type_for, route, run_location_script
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    proxy_host_of,
    proxy_uri,
    split_proxy_url,
)
from ngxws.proxy import fast_upgrade
from ngxws.proxy.access_phase import run_access_phase
from ngxws.proxy.deadline import within
from ngxws.proxy.files import stat_file
from ngxws.proxy.header_phase import charset_of, filtered, redirect_location, typed
from ngxws.proxy.pending import Pending
from ngxws.proxy.request_body import ReadTimer, forget, open_body, send_body, upstream_framing
from ngxws.proxy.response_pass import SendTimer, pass_response
from ngxws.proxy.static_phase import serve_static
from ngxws.proxy.static_send import WriteGate
from ngxws.proxy.upgrade import EARLY_DATA_LIMIT, proxy_upgrade, refuse_switch
from ngxws.proxy.upstream import UpstreamUnavailable, connect_upstream
from ngxws.proxy.upstream_response import UpstreamResponse
from ngxws.proxy_protocol import ProxyHeader
from ngxws.routing.locations import find_named, match_location
from ngxws.routing.servers import VirtualHosts
from ngxws.sinks.statsformats import stats_body
from ngxws.tls import upstream_tls

if TYPE_CHECKING:
    from ngxws.proxy.context import WorkerContext


_CONNECTIONS = itertools.count(1)


_Pending = Pending  # the name client.py's code uses


# ngx_http_special_response_handler() drops keep-alive after these.
_CLOSING_STATUSES = frozenset({400, 408, 413, 414, 494, 495, 496, 497, 500, 501})


class ClientConnection(asyncio.Protocol):
    """HTTP phase of a client connection (the tunnel phase is ``Tunnel``'s)."""

    def __init__(
        self, worker: WorkerContext, listen: Listen, vhosts: VirtualHosts, proxy: ProxyHeader | None = None
    ) -> None:
        self.address = ClientAddress("", 0, proxy)  # proxy: a PROXY protocol preface's addresses
        self.worker = worker
        self.listen = listen
        self.vhosts = vhosts
        self.scheme = "https" if listen.ssl else "http"
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(self)
        self.queue: deque[_Pending] = deque()
        self.task: fast_upgrade.Cancellable | None = None  # a Task, or a FastUpgrade
        self.remote_addr = ""
        self.remote_port = 0
        self.server_addr = ""
        self.server_port = 0
        self.closed = False
        self.eof = False
        self.handed_over = False
        self.upstream_transport: asyncio.Transport | None = None
        # request being parsed
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body_size = 0
        self._current: _Pending | None = None
        self._held: _Pending | None = None  # an upgrade request not answered yet
        self._timer: asyncio.TimerHandle | None = None
        self._max_body = 1024 * 1024
        self._head_buffers = HeadBuffers(*vhosts.default.large_client_header_buffers)
        self._body_timer: ReadTimer | None = None  # client_body_timeout
        self._send_timer = SendTimer(vhosts.default.send_timeout)
        self.write_gate = WriteGate()  # pause/resume_writing, for files sent (static_send)
        self.remote_user = ""  # $remote_user: the Basic user name of the request
        self.tls: ConnectionTLS | None = None  # $ssl_* and client certificate checks
        self.auth_vars: dict[str, str] = {}  # auth_request_set's variables
        # WWW-Authenticate of a 401/403: nginx keeps it in headers_out through error_page
        self.error_headers: list[tuple[str, str]] = []
        self.script_vars: dict[str, str] = {}  # set $name (the rewrite module)
        self.number = next(_CONNECTIONS)  # $connection
        self.requests = 0  # $connection_requests
        self.request_id = ""  # $request_id of the current request, made when first read
        self.script_named: Mapping[str, str] = {}  # (?<name>...) of the last regex match
        self._headless = False  # the next _write is a head to drop (HTTP/0.9)

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.address = ClientAddress.of(transport, self.address.proxy)  # realip's, per request
        (self.remote_addr, self.remote_port), (self.server_addr, self.server_port) = self.address.ends
        sslobj = transport.get_extra_info("ssl_object") if self.listen.ssl else None  # none on a plain listener
        self.tls = ConnectionTLS(sslobj) if sslobj is not None else None
        self.worker.connections.add(self)
        self._arm_timer(self.vhosts.default.client_header_timeout)

    def data_received(self, data: bytes) -> None:
        held = self._held
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
                self._held = pending
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
        if self._held is not None and not self.handed_over:
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
        self._cancel_timer()
        self._end_body_timer()
        self._send_timer.stop()
        for p in (self._current, *self.queue):
            if p is not None:
                forget(None, p.body)
        self.worker.connections.discard(self)
        if self.task is not None and not self.handed_over:
            self.task.cancel()
        if self.upstream_transport is not None and not self.handed_over:
            self.upstream_transport.close()

    def pause_writing(self) -> None:
        if self.upstream_transport is not None:
            self.upstream_transport.pause_reading()
        self._send_timer.start(self._send_timed_out)
        self.write_gate.pause()

    def resume_writing(self) -> None:
        self._send_timer.stop()
        self.write_gate.resume()
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
        self._cancel_timer()
        p = self.parser
        version = p.get_http_version()
        head = RequestHead(
            method=p.get_method().decode("latin-1"),
            target=self._url.decode("latin-1"),
            version=version,
            headers=self._headers,
            keep_alive=p.should_keep_alive(),
        )
        # nginx's checks on the head (Host, versions, Transfer-Encoding...)
        # were made by the parser
        self._current = _Pending(head)
        self._current.http09 = version == "0.9"
        self.queue.append(self._current)
        plan, scope = self._body_plan(head, self._current)
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
                self._write(CONTINUE)
        declared = head.header("content-length")
        if self._max_body and declared is not None and declared.isdigit() and int(declared) > self._max_body:
            # nginx answers 413 on the declared length, before reading the body
            self._current.error = 413
            self._current.complete = True
            self._pause()
        elif plan.at_once:
            self._current.complete = True  # answered at once, the body is discarded
        if len(self.queue) > 1:
            self._pause()

    def _body_plan(self, head: RequestHead, pending: _Pending) -> tuple[BodyPlan, Location | Server]:
        """What happens to the body (ngxws.http.body_plan), and the location
        (or server) whose client_body_* settings apply."""
        server = self.vhosts.select(head.uri_host or head.host)
        match = match_location(server.locations, head.path)
        pending.found = server, match
        scope: Location | Server = server
        if match is not None and not scripted(server.rewrites) and server.return_ is None:
            scope = match.location
        return plan_body(server, match), scope

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
        self._end_body_timer()
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
            self._write(error_response(exc.status))
        except Exception as exc:  # never let one request kill the worker
            self.worker.log_error(f"internal error: {exc!r}")
            self._write(error_response(500))
        finally:
            self.task = None
            if not self.handed_over:
                pending.limits.release()  # a tunnel gives its limit_conn counts back when it closes
            if pending.body is not None and not pending.body.complete:
                keep = False  # answered before the (streamed) body was all in
            forget(pending.sender, pending.body)
        if self.handed_over or self.closed:
            return
        if self._held is pending:
            self._held = None  # not upgraded: the parser reads on from what came after it
        if not keep or (self.eof and not self.queue):
            self._close()
            return
        self._arm_timer(self.vhosts.default.keepalive_timeout)
        self._resume()
        if pending.leftover:  # an upgrade that did not happen: read on, before anything newer
            leftover, pending.leftover = pending.leftover, b""
            self.data_received(leftover)
        self._kick()

    async def _dispatch(self, pending: _Pending) -> bool:
        """Answer one request; return whether the connection stays open.

        nginx's phases, in order: server rewrite (``if``/``return`` at
        server level), find config (location; its auto-redirect; the body
        size check), location rewrite (``if``/``return``), preaccess
        (limit_req, limit_conn), access (``access_phase``), content (stats
        page or proxy)."""
        if pending.head is None:
            if pending.error >= 0:
                self._write(error_response(pending.error or 400))
            return False
        head = pending.head
        server = self.vhosts.select(head.uri_host or head.host)
        keep = head.keep_alive
        self.remote_user = basic_user(head.header("authorization"))  # nginx's $remote_user
        self.remote_addr, self.remote_port = self.address.begin_request(server.realip, head.headers)
        tls_status = request_status(self.tls, server, self.vhosts, head.uri_host or head.host)
        if tls_status:  # 421/495/496, before any phase; nginx closes after each
            return await self._answer_error(tls_status, pending, server, None, False)
        self.auth_vars, self.error_headers = {}, []
        self.requests += 1
        self.request_id = ""
        captures, self.script_named = self.vhosts.name_captures(server, head.uri_host or head.host)
        self.script_vars = {}
        v = self._variables(head, server, captures)
        routed = route(server, v, stat_file)  # rewrite phases + find config (http/rewrite.py)
        pending.head = head = v.head
        self.script_named = v.named
        loc = routed.location
        if pending.error == 413 and loc is not None:  # find config checks the body first
            self._write(error_response(413))
            return False
        if routed.ret is not None:
            return await self._answer_return(routed.ret, pending, server, loc, v, keep, routed.redirect_url)
        if loc is None:
            if server.limits.any and (refused := await self.worker.limiter.preaccess(pending.limits, server.limits, v)):
                return await self._answer_error(refused, pending, server, None, keep)
            return await self._answer_error(404, pending, server, None, keep)
        if routed.status == 301:  # the auto-redirect to uri/
            target = head.path + "/" + (f"?{head.args}" if head.args is not None else "")
            self._write(redirect_response(301, self._absolute(head, server, target, loc), keep_alive=keep, extra_headers=filtered(self, loc, server, head, 301, [])))
            return keep
        if routed.status:  # 404 internal location, 500 rewrite cycle
            return await self._answer_error(routed.status, pending, server, loc, keep)
        if not routed.valid_location and loc.proxy_pass is not None and not loc.proxy_pass.has_variables:
            # rewrite ... break: proxy_pass sends the whole URI (r->valid_location = 0)
            loc = replace(loc, proxy_pass=replace(loc.proxy_pass, uri=None))
        return await self._run_location(pending, server, loc, v.captures, keep, routed=True)

    async def _run_location(
        self,
        pending: _Pending,
        server: Server,
        loc: Location,
        captures: tuple[str, ...],
        keep: bool,
        routed: bool = False,
    ) -> bool:
        """From the location rewrite phase on (also the target of ``error_page
        ... @name``); ``routed``: route() ran that phase already."""
        head = pending.head
        assert head is not None
        v = self._variables(head, server, captures)
        if not routed:
            script = run_location_script(loc, v, stat_file)
            if script.ret is not None:
                return await self._answer_return(script.ret, pending, server, loc, v, keep, script.redirect_url)
            assert script.location is not None
            loc, captures = script.location, v.captures
        addr = self.address.run(loc.realip, head.headers)  # PREACCESS: the location's realip
        self.remote_addr, self.remote_port = v.remote_addr, v.remote_port = addr
        if loc.limits.any and (refused := await self.worker.limiter.preaccess(pending.limits, loc.limits, v)):
            return await self._answer_error(refused, pending, server, loc, keep)
        if loc.access.restricted:
            denied = await run_access_phase(self, head, server, loc, v)
            if denied is not None:
                return await self._answer_error(denied.status, pending, server, loc, keep, denied.headers or None)
        match decide(loc, pending.upgrade):  # CONTENT (ngxws.http.content)
            case StatsPage():
                return self._answer_stats(head, keep)
            case Error(status):
                return await self._answer_error(status, pending, server, loc, keep)
            case Static():
                return await serve_static(self, pending, server, loc, captures, keep)
            case Upgrade():
                return await proxy_upgrade(self, pending, server, loc, captures)
            case ProxyHTTP():
                return await self._proxy_http(pending, server, loc, captures)

    async def _answer_error(
        self,
        status: int,
        pending: _Pending,
        server: Server,
        loc: Location | None,
        keep: bool,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> bool:
        """An error nginx generates itself: through ``error_page`` if one
        names the status, else nginx's built-in page."""
        head = pending.head
        assert head is not None
        if status in _CLOSING_STATUSES:
            keep = False  # ngx_http_special_response_handler(), before error_page
        self.error_headers = [*self.error_headers, *(extra_headers or ())]
        pages = loc.error_pages if loc is not None else server.error_pages
        page = next((p for p in pages if status in p.codes), None)
        if page is not None and pending.redirects < 1:
            pending.redirects += 1
            handled = await self._error_page(page, status, pending, server, keep)
            if handled is not None:
                return handled
        shown = pending.status_override or status
        self._write(error_response(shown, keep_alive=keep, extra_headers=filtered(self, loc, server, head, shown, self.error_headers), head_only=head.method == "HEAD", charset=charset_of(loc, shown)))
        return keep

    async def _error_page(
        self, page: ErrorPage, status: int, pending: _Pending, server: Server, keep: bool
    ) -> bool | None:
        """``error_page``: a named location runs from its rewrite phase; a URI
        is an internal redirect (the location is looked up again); a URL is
        a 302.  None when the target does not exist (the built-in page is sent)."""
        head = pending.head
        assert head is not None
        v = self._variables(head, server, ())
        target = v.render(page.target)
        if target.startswith("@"):
            named = find_named(server.locations, target)
            if named is None:
                return None
            return await self._run_location(pending, server, named, (), keep)
        if target.startswith(("http://", "https://")):
            code = page.response if page.response in (301, 302, 303, 307, 308) else 302
            self._write(redirect_response(code, target, keep_alive=keep, extra_headers=self.error_headers))
            return keep
        # nginx's err_status: without "=" the original code is kept, "="
        # takes the target's, "=CODE" sets one
        pending.status_override = status if page.response is None else (page.response or None)
        redirected = RequestHead(
            method="HEAD" if head.method == "HEAD" else "GET",
            target=target,
            version=head.version,
            headers=head.headers,
            keep_alive=head.keep_alive,
            client_uri=head.client_uri or head.request_uri,
        )
        inner = _Pending(redirected)
        inner.upgrade = pending.upgrade
        inner.redirects = pending.redirects
        inner.status_override = pending.status_override
        inner.limits = pending.limits
        # ngx_http_internal_redirect(): from the server rewrite phase on,
        # through the same bounded loop as rewrites (ngxws.http.rewrite)
        v = self._variables(redirected, server, ())
        routed = route(server, v, stat_file, internal=True)
        inner.head = v.head
        if routed.ret is not None:
            return await self._answer_return(routed.ret, inner, server, routed.location, v, keep, routed.redirect_url)
        if routed.location is None or routed.status == 500:
            return None
        return await self._run_location(inner, server, routed.location, v.captures, keep, routed=True)

    def _target(self, pp: ProxyPass, v: RequestVariables) -> ProxyPass:
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

    def _absolute(self, head: RequestHead, server: Server, path: str, loc: Location | None = None) -> str:
        return redirect_location(self, head, server, loc, path)  # proxy/header_phase.py

    async def _answer_return(
        self,
        ret: Return,
        pending: _Pending,
        server: Server,
        loc: Location | None,
        v: RequestVariables,
        keep: bool,
        rendered_url: str | None = None,
    ) -> bool:
        """``return`` as ngx_http_rewrite_module sends it (``rendered_url``:
        a redirecting ``rewrite``'s URL, already rendered)."""
        head = pending.head
        assert head is not None
        head_only = head.method == "HEAD"
        if ret.code == 444:  # nginx closes without a response
            return False
        if ret.code in (301, 302, 303, 307, 308):
            if ret.text is None:
                return await self._answer_error(ret.code, pending, server, loc, keep)
            url = rendered_url if rendered_url is not None else v.render(ret.text)
            if url.startswith("/"):
                url = self._absolute(head, server, url, loc)
            code = pending.status_override or ret.code
            self._write(redirect_response(code, url, keep_alive=keep, extra_headers=filtered(self, loc, server, head, code, self.error_headers), charset=charset_of(loc, code)))
            return keep
        if ret.text is None and ret.code >= 400:
            return await self._answer_error(ret.code, pending, server, loc, keep)
        body = v.render(ret.text or "").encode("latin-1", "replace")
        scope = loc if loc is not None else server
        ctype = content_type_for(head.path, scope.types, scope.default_type)
        code = pending.status_override or ret.code
        if code == 200 and head.fails_preconditions:
            return await self._answer_error(412, pending, server, loc, keep)
        if code in (204, 304):
            # ngx_http_header_filter(): a 204 has no Content-Length
            self._write(build_response(code, b"", content_type=None, keep_alive=keep, head_only=True, extra_headers=filtered(self, loc, server, head, code, self.error_headers), length=-1 if code == 204 else None))
            return keep
        self._write(build_response(code, body, content_type=typed(loc, code, ctype), keep_alive=keep, head_only=head_only, extra_headers=filtered(self, loc, server, head, code, self.error_headers)))
        return keep

    def _answer_stats(self, head: RequestHead, keep: bool) -> bool:
        if head.method not in ("GET", "HEAD"):
            self._write(error_response(405, keep_alive=keep))
            return keep
        body, ctype = stats_body(self.worker.counters, head.args, head.header("accept"))  # text, ?format=prometheus|json|html
        self._write(build_response(200, body, content_type=ctype, keep_alive=keep, head_only=head.method == "HEAD"))
        return keep

    def _variables(self, head: RequestHead, server: Server, captures: tuple[str, ...]) -> RequestVariables:
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
        )

    def current_request_id(self) -> str:
        """``$request_id``: one per request, whoever reads it first (the
        proxy's headers, a return, or the ws log at tunnel open)."""
        if not self.request_id:
            self.request_id = secrets.token_hex(16)
        return self.request_id

    async def _open_upstream(
        self, pending: _Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> tuple[UpstreamResponse, str]:
        """Connect, send the request head (and body); return the response reader."""
        head = pending.head
        assert head is not None and loc.proxy_pass is not None
        v = self._variables(head, server, captures)
        v.limits = pending.limits
        pp = self._target(loc.proxy_pass, v)
        v.proxy_host = proxy_host_of(pp)
        v.proxy_port = str(pp.port) if pp.unix is None else ""
        v.body_length, v.chunked = upstream_framing(head, pending.body)
        uri = proxy_uri(loc.proxy_pass, loc.pattern, loc.modifier, v)
        if pp.unix is not None:
            selector = self.worker.pools.unix_selector(pp.unix)
        else:
            selector = self.worker.pools.selector(pp)
        key = self.remote_addr
        if selector.balance == "hash" and selector.hash_key:
            key = v.render(selector.hash_key)
        response = UpstreamResponse(head_only=head.method == "HEAD", read_timeout=loc.proxy.read_timeout)
        link = await connect_upstream(
            selector, loc.proxy, lambda: response, key, tls=upstream_tls(pp, loc.proxy)
        )
        self.upstream_transport = link.transport
        if self.closed:
            link.transport.close()
            raise asyncio.CancelledError
        link.transport.write(build_upstream_head(uri, loc.proxy, v))
        body = pending.body
        if body is not None and pending.sender is not None:  # sent once already (error_page)
            forget(pending.sender, None)
            body.rewind()
        if body is not None and (body.size or body.streaming) and loc.proxy.pass_request_body:
            pending.sender = asyncio.ensure_future(
                send_body(link.transport, response, body, v.chunked, loc.proxy.send_timeout)
            )
        try:
            if pending.sender is not None:
                # an upstream may answer before it has read the whole body
                await asyncio.wait((pending.sender, response.head_done), return_when=asyncio.FIRST_COMPLETED)
                if not response.head_done.done() and isinstance(pending.sender.exception(), asyncio.TimeoutError):
                    response.head_done.cancel()  # nobody waits for it any more
                    link.transport.close()
                    raise UpstreamUnavailable(504, "upstream timed out while sending request to upstream")
            await within(response.head_done, loc.proxy.read_timeout)
        except asyncio.TimeoutError:
            link.transport.close()
            raise UpstreamUnavailable(504, "upstream timed out while reading response header") from None
        except ConnectionError as exc:
            link.transport.close()
            raise UpstreamUnavailable(502, str(exc)) from None
        return response, link.addr

    async def _proxy_http(
        self, pending: _Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> bool:
        head = pending.head
        assert head is not None
        keep = head.keep_alive
        try:
            response, _addr = await self._open_upstream(pending, server, loc, captures)
        except UpstreamUnavailable as exc:
            self.worker.log_upstream_failure(exc, head.request_line)
            return await self._answer_error(exc.status, pending, server, loc, keep)
        if response.status == 101:  # a switch nobody asked for
            return await refuse_switch(self, pending, server, loc, response)
        self._send_timer.seconds = loc.send_timeout
        return await pass_response(self, head, pending.status_override, response, keep, lambda c, h: filtered(self, loc, server, head, c, h))

    # -- output and lifetime -----------------------------------------------

    def _write(self, data: bytes) -> None:
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
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
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

    def shutdown(self) -> None:
        """Worker is stopping: idle keep-alive connections go at once."""
        if self.task is None and not self.handed_over:
            self._close()
