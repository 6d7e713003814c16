"""One client connection, from its first byte to a response or a tunnel.

The request head is parsed by httptools; the request is matched to a server
and a location (``routing``), and then, as nginx with the module would:

- a ``ws_stat`` location answers with the statistics page;
- a websocket upgrade on a ``proxy_pass`` location goes upstream with the
  headers nginx would send; on 101 the client gets the upstream's 101 and
  both sockets are handed to a ``Tunnel`` -- unless ``ws_max_connections``
  is reached, in which case ngxws completes the handshake itself and closes
  with 1013 without contacting the upstream;
- any other request on a ``proxy_pass`` location is proxied as HTTP/1.1,
  the response streamed back, and the client connection kept alive;
- no location: 404; an unreachable upstream: 502 (504 on timeout).

Pipelined requests are answered in order, one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import httptools
from websockets.utils import accept_key

from ngxws.access import check_basic_auth, client_allowed
from ngxws.config.model import (
    ErrorPage,
    IfReturn,
    Listen,
    Location,
    ProxyPass,
    Return,
    Server,
)
from ngxws.http.request import BadRequest, HeadBuffers, RequestHead, valid_host
from ngxws.http.responses import (
    SERVER,
    build_response,
    error_response,
    redirect_response,
    status_line,
)
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    proxy_host_of,
    proxy_uri,
    split_proxy_url,
)
from ngxws.proxy.deadline import within
from ngxws.proxy.tunnel import Tunnel
from ngxws.proxy.upstream import UpstreamUnavailable, connect_upstream
from ngxws.proxy.upstream_response import HIDDEN_RESPONSE_HEADERS, UpstreamResponse
from ngxws.routing.locations import compile_pcre, find_named, match_location
from ngxws.routing.servers import VirtualHosts
from ngxws.sinks.statspage import (
    PROMETHEUS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render_prometheus,
    render_text,
)
from ngxws.sinks.timefmt import http_date_now
from ngxws.sinks.wslog import ConnInfo
from ngxws.tls import upstream_tls
from ngxws.ws.frames import encode_close_frame

if TYPE_CHECKING:
    from ngxws.worker import Worker


class _Pending:
    """A request whose head (and body) the parser has delivered."""

    __slots__ = (
        "head", "body", "upgrade", "leftover", "error", "redirects", "complete", "status_override"
    )

    def __init__(self, head: RequestHead | None, error: int = 0) -> None:
        self.head = head
        self.body: list[bytes] = []
        self.upgrade = False
        self.leftover = b""
        self.error = error
        self.redirects = 0  # error_page hops, bounded like nginx's 10 internal redirects
        self.complete = False  # answer before the body (declared length over the limit)
        self.status_override: int | None = None  # error_page's code for the final answer


def _status_line(override: int | None, response: UpstreamResponse) -> str:
    if override is not None and override != response.status:
        return status_line(override)
    return f"HTTP/1.1 {response.status} {response.reason}".rstrip()


# ngx_http_special_response_handler() drops keep-alive after these.
_CLOSING_STATUSES = frozenset({400, 408, 413, 414, 494, 495, 496, 497, 500, 501})


def _rewrite(ifs: tuple[IfReturn, ...], ret: Return | None, v: RequestVariables) -> Return | None:
    """The rewrite phase ngxws runs: ``if (...) { return }`` blocks and
    ``return`` in config order (nginx stops at the first return that runs)."""
    for rule in ifs:
        if if_condition(rule.condition, v):
            return rule.return_
    return ret


def if_condition(cond: tuple[str, ...], v: RequestVariables) -> bool:
    """ngx_http_rewrite's conditions on variables: ``$v`` (neither empty nor
    "0"), ``= != ~ ~* !~ !~*``; a regex match sets ``$1``.. for the block."""
    if len(cond) == 1:
        word = cond[0]
        negate = word.startswith("!")
        value = v.render(word.lstrip("!"))
        truth = value not in ("", "0")
        return truth != negate
    left, op, right = cond
    value = v.render(left)
    if op in ("=", "!="):
        return (value == v.render(right)) == (op == "=")
    rx = compile_pcre(right, op.endswith("*"))
    m = rx.search(value)
    if m is not None and not op.startswith("!"):
        v.captures = tuple(g or "" for g in m.groups())
    return (m is not None) != op.startswith("!")


def content_type_for(path: str, types: tuple[tuple[str, str], ...], default: str) -> str:
    """ngx_http_set_content_type(): by the URI's extension, else default_type."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot < 0:
        return default
    ext = name[dot + 1 :].lower()
    for e, t in types:
        if e == ext:
            return t
    return default


class ClientConnection(asyncio.Protocol):
    """HTTP phase of a client connection (the tunnel phase is ``Tunnel``'s)."""

    def __init__(self, worker: Worker, listen: Listen, vhosts: VirtualHosts) -> None:
        self.worker = worker
        self.listen = listen
        self.vhosts = vhosts
        self.scheme = "https" if listen.ssl else "http"
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Pending] = deque()
        self.task: asyncio.Task[None] | None = None
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
        self._timer: asyncio.TimerHandle | None = None
        self._max_body = 1024 * 1024
        self._head_buffers = HeadBuffers(*vhosts.default.large_client_header_buffers)
        self.remote_user = ""  # $remote_user once auth_basic let the request through

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if isinstance(peer, tuple):
            self.remote_addr, self.remote_port = str(peer[0]), int(peer[1])
        else:
            self.remote_addr, self.remote_port = "unix:", 0
        if isinstance(sock, tuple):
            self.server_addr, self.server_port = str(sock[0]), int(sock[1])
        else:
            self.server_addr, self.server_port = "unix:", 0
        self.worker.connections.add(self)
        self._arm_timer(self.vhosts.default.client_header_timeout)

    def data_received(self, data: bytes) -> None:
        if not self._head_buffers.done:
            status = self._head_buffers.feed(data)
            if status:
                self._current = None
                self.queue.append(_Pending(None, error=status))
                self._pause()
                self._kick()
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp completes the message before it reports the upgrade
            pending = self.queue[-1] if self.queue else None
            if pending is not None and pending.head is not None:
                pending.upgrade = True
                pending.leftover = data[exc.args[0] :]
            self._pause()
        except httptools.HttpParserError as exc:
            # a BadRequest raised in a callback reaches us wrapped
            cause = exc.__cause__ or exc.__context__
            status = cause.status if isinstance(cause, BadRequest) else 400
            self._current = None
            self.queue.append(_Pending(None, error=status))
            self._pause()
        except BadRequest as exc:
            self._current = None
            self.queue.append(_Pending(None, error=exc.status))
            self._pause()
        self._kick()

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.task is None and not self.queue:
            return None  # close
        return True  # finish answering what was asked

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self.worker.connections.discard(self)
        if self.task is not None and not self.handed_over:
            self.task.cancel()
        if self.upstream_transport is not None and not self.handed_over:
            self.upstream_transport.close()

    def pause_writing(self) -> None:
        if self.upstream_transport is not None:
            self.upstream_transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream_transport is not None and not self.upstream_transport.is_closing():
            self.upstream_transport.resume_reading()

    # -- httptools callbacks ---------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body_size = 0
        self._current = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # sizes are checked on the raw bytes (HeadBuffers, in data_received)
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
        if version == "1.1" and head.host is None:
            raise BadRequest(400, "client sent HTTP/1.1 request without Host header")
        if int(version.split(".")[0]) > 1:
            raise BadRequest(505, "client sent an unsupported HTTP version")
        if sum(1 for name, _ in self._headers if name.lower() == "host") > 1:
            raise BadRequest(400, "client sent duplicate host header")
        for host in (head.host, head.uri_host):
            if host is not None and not valid_host(host):
                raise BadRequest(400, "client sent invalid host header")
        self._current = _Pending(head)
        self.queue.append(self._current)
        self._max_body, proxied = self._body_limit(head)
        if proxied and version == "1.1" and len(self.queue) == 1 and self.task is None:
            expect = head.header("expect")
            if expect is not None and expect.strip().lower() == "100-continue":
                # ngx_http_test_expect(), run when the proxy reads the body
                self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        declared = head.header("content-length")
        if self._max_body and declared is not None and declared.isdigit() and int(declared) > self._max_body:
            # nginx answers 413 on the declared length, before reading the body
            self._current.error = 413
            self._current.complete = True
            self._pause()
        if len(self.queue) > 1:
            self._pause()

    def _body_limit(self, head: RequestHead) -> tuple[int, bool]:
        """client_max_body_size of the location the request will reach (0: no
        limit), and whether that location will proxy (read the body)."""
        server = self.vhosts.select(head.uri_host or head.host)
        if server.return_ is not None or server.ifs:
            return server.client_max_body_size, False
        match = match_location(server.locations, head.path)
        if match is None:
            return server.client_max_body_size, False
        loc = match.location
        proxied = (
            loc.proxy_pass is not None
            and not match.redirect
            and loc.return_ is None
            and not loc.ifs
            and not loc.access.rules
            and loc.access.auth_basic is None
        )
        return loc.client_max_body_size, proxied

    def on_body(self, body: bytes) -> None:
        cur = self._current
        if cur is None:
            return
        self._body_size += len(body)
        if self._max_body and self._body_size > self._max_body:
            if not cur.error:
                cur.error = 413
            return
        cur.body.append(body)

    def on_message_complete(self) -> None:
        self._current = None
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
        if first.head is not None and self._current is first and not first.upgrade and not first.complete:
            return  # body still arriving
        self.queue.popleft()
        self.task = asyncio.ensure_future(self._answer(first))

    async def _answer(self, pending: _Pending) -> None:
        keep = False
        try:
            keep = await self._dispatch(pending)
        except BadRequest as exc:
            self._write(error_response(exc.status))
        except Exception as exc:  # never let one request kill the worker
            self.worker.log_error(f"internal error: {exc!r}")
            self._write(error_response(500))
        finally:
            self.task = None
        if self.handed_over or self.closed:
            return
        if not keep or (self.eof and not self.queue):
            self._close()
            return
        self._arm_timer(self.vhosts.default.keepalive_timeout)
        self._resume()
        self._kick()

    async def _dispatch(self, pending: _Pending) -> bool:
        """Answer one request; return whether the connection stays open.

        nginx's phases, in order: server rewrite (``if``/``return`` at
        server level), find config (location; its auto-redirect; the body
        size check), location rewrite (``if``/``return``), access
        (allow/deny, then auth_basic), content (stats page or proxy)."""
        if pending.head is None:
            self._write(error_response(pending.error or 400))
            return False
        head = pending.head
        server = self.vhosts.select(head.uri_host or head.host)
        keep = head.keep_alive
        self.remote_user = ""
        v = self._variables(head, server, ())
        ret = _rewrite(server.ifs, server.return_, v)
        if ret is not None:
            return await self._answer_return(ret, pending, server, None, v, keep)
        match = match_location(server.locations, head.path)
        if match is None:
            return await self._answer_error(404, pending, server, None, keep)
        loc = match.location
        if match.redirect:
            target = head.path + "/" + (f"?{head.args}" if head.args is not None else "")
            self._write(redirect_response(301, self._absolute(head, server, target), keep_alive=keep))
            return keep
        if pending.error == 413:
            self._write(error_response(413))
            return False
        return await self._run_location(pending, server, loc, match.captures, keep)

    async def _run_location(
        self,
        pending: _Pending,
        server: Server,
        loc: Location,
        captures: tuple[str, ...],
        keep: bool,
    ) -> bool:
        """From the location rewrite phase on (also the target of ``error_page ... @name``)."""
        head = pending.head
        assert head is not None
        v = self._variables(head, server, captures)
        ret = _rewrite(loc.ifs, loc.return_, v)
        if ret is not None:
            return await self._answer_return(ret, pending, server, loc, v, keep)
        access = loc.access
        if access.rules and not client_allowed(access.rules, self.remote_addr):
            self.worker.log_error(f'access forbidden by rule, client: {self.remote_addr}, request: "{head.request_line}"')
            return await self._answer_error(403, pending, server, loc, keep)
        if access.auth_basic is not None:
            result = check_basic_auth(access, head.header("authorization"), v.render(access.auth_basic))
            if result.status:
                extra = [("WWW-Authenticate", result.challenge)] if result.challenge else None
                return await self._answer_error(result.status, pending, server, loc, keep, extra)
            self.remote_user = result.user
        if loc.ws_stat:
            return self._answer_stats(head, keep)
        if loc.proxy_pass is None:
            return await self._answer_error(404, pending, server, loc, keep)
        if head.is_websocket_upgrade and pending.upgrade:
            return await self._proxy_websocket(pending, server, loc, captures)
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
        pages = loc.error_pages if loc is not None else server.error_pages
        page = next((p for p in pages if status in p.codes), None)
        if page is not None and pending.redirects < 10:
            pending.redirects += 1
            handled = await self._error_page(page, status, pending, server, keep)
            if handled is not None:
                return handled
        if status in _CLOSING_STATUSES:
            keep = False
        shown = pending.status_override or status
        self._write(error_response(shown, keep_alive=keep, extra_headers=extra_headers, head_only=head.method == "HEAD"))
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
            self._write(redirect_response(code, target, keep_alive=keep))
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
        )
        inner = _Pending(redirected)
        inner.redirects = pending.redirects
        inner.status_override = pending.status_override
        match = match_location(server.locations, redirected.path)
        if match is None:
            return None
        return await self._run_location(inner, server, match.location, match.captures, keep)

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

    def _absolute(self, head: RequestHead, server: Server, path: str) -> str:
        # nginx's auto-redirect and relative `return` URLs are absolute.
        host = head.uri_host or head.host or (server.server_names[0] if server.server_names else self.server_addr)
        default = 443 if self.scheme == "https" else 80
        if ":" in host and not host.endswith("]"):
            host = host.rsplit(":", 1)[0]
        port = "" if self.server_port == default else f":{self.server_port}"
        return f"{self.scheme}://{host}{port}{path}"

    async def _answer_return(
        self,
        ret: Return,
        pending: _Pending,
        server: Server,
        loc: Location | None,
        v: RequestVariables,
        keep: bool,
    ) -> bool:
        """``return`` as ngx_http_rewrite_module sends it."""
        head = pending.head
        assert head is not None
        head_only = head.method == "HEAD"
        if ret.code == 444:  # nginx closes without a response
            return False
        if ret.code in (301, 302, 303, 307, 308):
            if ret.text is None:
                return await self._answer_error(ret.code, pending, server, loc, keep)
            url = v.render(ret.text)
            if url.startswith("/"):
                url = self._absolute(head, server, url)
            self._write(redirect_response(pending.status_override or ret.code, url, keep_alive=keep))
            return keep
        if ret.text is None and ret.code >= 400:
            return await self._answer_error(ret.code, pending, server, loc, keep)
        body = v.render(ret.text or "").encode("latin-1", "replace")
        scope = loc if loc is not None else server
        ctype = content_type_for(head.path, scope.types, scope.default_type)
        code = pending.status_override or ret.code
        if code in (204, 304):
            self._write(build_response(code, b"", content_type=None, keep_alive=keep, head_only=True))
            return keep
        self._write(build_response(code, body, content_type=ctype, keep_alive=keep, head_only=head_only))
        return keep

    def _answer_stats(self, head: RequestHead, keep: bool) -> bool:
        if head.method not in ("GET", "HEAD"):
            self._write(error_response(405, keep_alive=keep))
            return keep
        totals = self.worker.counters.totals()
        if head.args is not None and "format=prometheus" in head.args.split("&"):
            body, ctype = render_prometheus(totals), PROMETHEUS_CONTENT_TYPE
        else:
            body, ctype = render_text(totals), TEXT_CONTENT_TYPE
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
        )

    async def _open_upstream(
        self, pending: _Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> tuple[UpstreamResponse, str]:
        """Connect, send the request head (and body); return the response reader."""
        head = pending.head
        assert head is not None and loc.proxy_pass is not None
        v = self._variables(head, server, captures)
        pp = self._target(loc.proxy_pass, v)
        v.proxy_host = proxy_host_of(pp)
        body = b"".join(pending.body)
        if body or head.header("content-length") is not None or head.header("transfer-encoding"):
            v.body_length = len(body)
        uri = proxy_uri(loc.proxy_pass, loc.pattern, loc.modifier, v)
        if pp.unix is not None:
            selector = self.worker.pools.unix_selector(pp.unix)
        else:
            selector = self.worker.pools.selector(pp)
        key = self.remote_addr
        if selector.balance == "hash" and selector.hash_key:
            key = v.render(selector.hash_key)
        response = UpstreamResponse(head_only=head.method == "HEAD")
        link = await connect_upstream(
            selector, loc.proxy, lambda: response, key, tls=upstream_tls(pp, loc.proxy)
        )
        self.upstream_transport = link.transport
        if self.closed:
            link.transport.close()
            raise asyncio.CancelledError
        link.transport.write(build_upstream_head(uri, loc.proxy, v) + body)
        try:
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
        return await self._pass_response(pending, response, keep)

    async def _pass_response(self, pending: _Pending, response: UpstreamResponse, keep: bool) -> bool:
        """Stream an upstream's (non-101) answer to the client as nginx frames it."""
        head = pending.head
        assert head is not None
        known_length = response.content_length is not None and not response.chunked
        chunked = not known_length and head.version == "1.1"
        if not known_length and not chunked:
            keep = False  # HTTP/1.0 client, unknown length: close-delimited
        lines = [
            _status_line(pending.status_override, response),
            f"Server: {SERVER}",
            f"Date: {http_date_now()}",
        ]
        for name, value in response.headers:
            if name.lower() not in HIDDEN_RESPONSE_HEADERS:
                lines.append(f"{name}: {value}")
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines.append("Connection: keep-alive" if keep else "Connection: close")
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        transport = self.transport
        assert transport is not None
        if chunked and head.method != "HEAD":
            response.start_body(lambda b: transport.write(b"%x\r\n%b\r\n" % (len(b), b)))
        else:
            response.start_body(transport.write)
        await response.body_done
        if chunked and head.method != "HEAD":
            self._write(b"0\r\n\r\n")
        if self.upstream_transport is not None:
            self.upstream_transport.close()
            self.upstream_transport = None
        if response.error is not None:
            self.worker.log_error(response.error)
            return False
        return keep

    async def _proxy_websocket(
        self, pending: _Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> bool:
        """Returns whether the connection stays open (only when the upstream
        did not switch protocols: its answer is passed on like any other)."""
        head = pending.head
        assert head is not None
        worker = self.worker
        ws = server.ws
        if not worker.counters.try_open(worker.slot, ws.max_connections):
            self._refuse_upgrade(head)
            return False
        opened = False
        try:
            try:
                response, upstream_addr = await self._open_upstream(pending, server, loc, captures)
            except UpstreamUnavailable as exc:
                worker.log_upstream_failure(exc, head.request_line)
                await self._answer_error(exc.status, pending, server, loc, False)
                return False
            if response.status != 101:
                # not upgraded: an ordinary answer, and the connection goes
                # on with a fresh parser (llhttp stops at an Upgrade request)
                keep = await self._pass_response(pending, response, head.keep_alive)
                if keep:
                    self.parser = httptools.HttpRequestParser(self)
                    if pending.leftover:
                        leftover, pending.leftover = pending.leftover, b""
                        asyncio.get_running_loop().call_soon(self.data_received, leftover)
                return keep
            self._write(self._switching_head(response))
            assert self.transport is not None and self.upstream_transport is not None
            logger, logfile = worker.ws_logger(server, lambda: self._conn_info(head, upstream_addr))
            tunnel = Tunnel(
                worker,
                worker.slot,
                self.transport,
                self.upstream_transport,
                logger,
                logfile,
                loc.proxy.read_timeout,
                ws.conn_age,
                send_timeout=loc.proxy.send_timeout,
                client_send_timeout=loc.send_timeout,
            )
            self.handed_over = True
            opened = True
            self._cancel_timer()
            worker.connections.discard(self)
            tunnel.start(pending.leftover, response.leftover)
            return False
        finally:
            if not opened:
                worker.counters.close(worker.slot)

    def _switching_head(self, response: UpstreamResponse) -> bytes:
        """The upstream's 101 as nginx passes it: its own Server/Date, Connection: upgrade."""
        lines = [
            f"HTTP/1.1 101 {response.reason or 'Switching Protocols'}",
            f"Server: {SERVER}",
            f"Date: {http_date_now()}",
            "Connection: upgrade",
        ]
        for name, value in response.headers:
            low = name.lower()
            if low == "upgrade":
                lines.append(f"{name}: {value}")
            elif low not in HIDDEN_RESPONSE_HEADERS:
                lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _refuse_upgrade(self, head: RequestHead) -> None:
        """ws_max_connections reached: complete the handshake ourselves, close 1013."""
        key = head.header("sec-websocket-key") or ""
        if not _valid_key(key):
            self._write(error_response(400))
            return
        self._write(
            (
                "HTTP/1.1 101 Switching Protocols\r\n"
                f"Server: {SERVER}\r\n"
                f"Date: {http_date_now()}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
            ).encode("latin-1")
            + encode_close_frame(1013, "Try Again Later")
        )

    def _conn_info(self, head: RequestHead, upstream_addr: str) -> ConnInfo:
        return ConnInfo(
            request=_log_text(head.request_line),
            uri=_log_text(head.path),
            request_id=secrets.token_hex(16),
            remote_user=_log_text(self.remote_user),
            remote_addr=self.remote_addr,
            remote_port=str(self.remote_port),
            server_addr=self.server_addr,
            server_port=str(self.server_port),
            upstream_addr=upstream_addr,
            headers={k: _log_text(v) for k, v in head.header_map.items()},
            opened_at=time.time(),
        )

    # -- output and lifetime -----------------------------------------------

    def _write(self, data: bytes) -> None:
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

    def _timeout(self) -> None:
        # client_header_timeout / keepalive_timeout: nginx just closes.
        if self.task is None and not self.handed_over:
            self._close()

    def shutdown(self) -> None:
        """Worker is stopping: idle keep-alive connections go at once."""
        if self.task is None and not self.handed_over:
            self._close()


def _log_text(value: str) -> str:
    """Heads are decoded as latin-1 (bytes kept 1:1 for forwarding); log files
    are written as UTF-8 with surrogateescape, so re-decode to get the very
    bytes the client sent into the log."""
    if value.isascii():
        return value
    return value.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


def _valid_key(key: str) -> bool:
    """A Sec-WebSocket-Key is base64 of 16 bytes (24 characters)."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


