"""Binding the listening sockets a config asks for.

Sockets are bound once, before any worker starts (and, with several
workers, before they fork), so a bind error is reported like nginx's
``bind() to 0.0.0.0:80 failed (98: Address already in use)`` and nothing
starts.  Workers inherit the bound sockets; a reload keeps the sockets whose
address is still configured.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import ssl
import stat
from collections.abc import Callable
from typing import Any

from ngxws.config.model import Config, Listen, Server
from ngxws.errorlog import ALERT
from ngxws.first_bytes import FirstBytesReader
from ngxws.http.responses import build_response, error_response
from ngxws.routing.servers import VirtualHosts, virtual_hosts
from ngxws.socket_options import apply_socket_options
from ngxws.tls import (
    HELLO_INCOMPLETE,
    UNRECOGNIZED_NAME_ALERT,
    client_hello_server_name,
    handshake_refuser,
    listener_context,
    upstream_tls,
)

ListenKey = tuple[str, int, str | None]


class BindError(Exception):
    """A listen address could not be bound; the message reads like nginx's."""


def bind_listen(listen: Listen, backlog: int | None = None, reuseport: bool = False) -> socket.socket:
    """Bind and listen on one address (``reuseport``: one of a worker group's
    SO_REUSEPORT sockets, see ``listen_sockets``), with the listen's socket
    options; ``backlog`` defaults to the listen's own (nginx's 511)."""
    if listen.unix is not None:
        path = listen.unix
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # a stale socket from an earlier run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise BindError(f"bind() to unix:{path} failed ({exc.errno}: {exc.strerror})") from exc
    else:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # nginx's default is ipv6only=on; ``listen [::]:80 ipv6only=off``
            # asks for one dual-stack socket.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if listen.ipv6only else 0)
        try:
            sock.bind((listen.host, listen.port))
        except OSError as exc:
            sock.close()
            shown = f"[{listen.host}]" if family == socket.AF_INET6 else listen.host
            raise BindError(
                f"bind() to {shown}:{listen.port} failed ({exc.errno}: {exc.strerror})"
            ) from exc
    for failure in apply_socket_options(sock, listen.options, tcp=listen.unix is None):
        logging.getLogger("ngxws").log(ALERT, failure)
    sock.listen(listen.options.backlog if backlog is None else backlog)
    sock.setblocking(False)
    return sock


def tls_context(servers: list[Server], vhosts: VirtualHosts | None = None) -> ssl.SSLContext | None:
    """The server-side TLS context of a listener whose ``listen`` says ``ssl``.

    The default server's certificate is the context's; the SNI name picks
    among the other servers on the socket (``tls.listener_context``).  Pass
    the socket's ``vhosts`` (from ``listener_table``) so SNI and the Host
    header resolve names the same way; without it the table is rebuilt
    from ``servers``.
    """
    if vhosts is None:
        vhosts = _vhosts_of(servers)
    return listener_context(vhosts, servers)


def _vhosts_of(servers: list[Server]) -> VirtualHosts:
    """The name table of the socket ``servers`` share (their common listen key)."""
    keys = set.intersection(*({lst.key for lst in s.listens} for s in servers))
    default = next(
        (s for s in servers if any(lst.default_server and lst.key in keys for lst in s.listens)),
        servers[0],
    )
    vh = VirtualHosts(default=default)
    for s in servers:
        vh.add(s)
    return vh


def listener_table(config: Config) -> dict[ListenKey, tuple[Listen, VirtualHosts, list[Server]]]:
    """For each listen address: the listen that defines it, its name table and its servers."""
    table: dict[ListenKey, tuple[Listen, VirtualHosts, list[Server]]] = {}
    for key, (listen, vh) in virtual_hosts(config).items():
        servers = [s for s in config.servers if any(lst.key == key for lst in s.listens)]
        table[key] = (listen, vh, servers)
    return table


def tls_contexts(config: Config) -> dict[ListenKey, ssl.SSLContext]:
    """Every TLS context the config needs, built once (in the master, before
    workers fork): one per ``listen ... ssl`` socket, and the upstream ones
    of every ``proxy_pass https://`` (cached in ``ngxws.tls``).

    Raises ``ngxws.tls.TLSError`` for a certificate, key or cipher list
    OpenSSL refuses, as ``nginx -t`` fails on them.
    """
    out: dict[ListenKey, ssl.SSLContext] = {}
    for key, (listen, vhosts, servers) in listener_table(config).items():
        if listen.ssl:
            ctx = tls_context(servers, vhosts)
            if ctx is not None:
                out[key] = ctx
    for server in config.servers:
        stack = list(server.locations)
        while stack:
            loc = stack.pop()
            stack.extend(loc.locations)
            if loc.proxy_pass is not None:
                upstream_tls(loc.proxy_pass, loc.proxy)
    return out


# -- plain HTTP on a TLS port ------------------------------------------------

# First bytes of a ClientHello: a TLS handshake record, or an SSLv2-style
# hello (high bit set), the two nginx's ngx_http_ssl_handshake() takes as TLS.
_TLS_FIRST = 0x16
_REQUEST_LINE = re.compile(rb"^[A-Z_-]+ \S+ HTTP/\d\.\d\r?\n")
_HEAD_LIMIT = 8192

PLAIN_HTTP_TITLE = "400 The plain HTTP request was sent to HTTPS port"


def plain_http_response() -> bytes:
    """nginx's answer (internally 497) to an HTTP request on a TLS port."""
    body = (
        f"<html>\r\n<head><title>{PLAIN_HTTP_TITLE}</title></head>\r\n<body>\r\n"
        "<center><h1>400 Bad Request</h1></center>\r\n"
        "<center>The plain HTTP request was sent to HTTPS port</center>\r\n"
        "<hr><center>ngxws</center>\r\n</body>\r\n</html>\r\n"
    ).encode()
    return build_response(400, body, keep_alive=False)


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's own SSL protocol: uvloop's (Cython) or asyncio's.

    Neither class is public API, but both are what ``create_server(ssl=)``
    and ``start_tls`` build, with the same constructor since Python 3.11 /
    uvloop 0.15.  (``start_tls`` itself cannot be used: it wants the
    ClientHello still unread, and uvloop starts reading right after
    ``connection_made`` whatever the protocol asked.)  Measured cost against
    ``create_server(ssl=)``: 1000 concurrent handshakes + echo, 1.04 s vs
    0.96-1.00 s on uvloop.
    """
    if type(loop).__module__.startswith("uvloop"):
        import uvloop.loop

        return uvloop.loop.SSLProtocol  # type: ignore[attr-defined]
    from asyncio import sslproto

    return sslproto.SSLProtocol


class TLSAcceptor(FirstBytesReader):
    """The first protocol of every connection on a ``listen ... ssl`` socket.

    It looks at the first bytes the client sends: a TLS ClientHello (a
    handshake record, or an SSLv2-style hello -- the two nginx's
    ``ngx_http_ssl_handshake()`` takes as TLS) is handed, bytes included,
    to the loop's own SSL protocol in front of the real protocol, exactly
    what ``create_server(ssl=...)`` would have built.  Anything else is read
    as plain HTTP and answered as nginx does: ``400 The plain HTTP request
    was sent to HTTPS port`` for a request line, a bare 400 for garbage
    (``create_server(ssl=...)`` would only drop such clients).
    """

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        timeout: float,
    ) -> None:
        self.factory = factory
        self.context = context
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._plain = bytearray()
        self._hello = bytearray()  # a ClientHello read whole for ssl_reject_handshake
        self._refuses = handshake_refuser(context)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if self._refuses is not None and (self._hello or (not self._plain and data[0] == _TLS_FIRST)):
            self._hello += data
            name = client_hello_server_name(bytes(self._hello))
            if name == HELLO_INCOMPLETE:
                return
            self._cancel_timer()
            if self._refuses(name):
                transport.write(UNRECOGNIZED_NAME_ALERT)  # ngx_http_ssl_servername()'s refusal
                transport.close()
                return
            self._hand_over(transport, bytes(self._hello))
            return
        if not self._plain and (data[0] == _TLS_FIRST or data[0] & 0x80):
            self._cancel_timer()
            self._hand_over(transport, data)
            return
        self._plain += data
        head_done = b"\r\n\r\n" in self._plain or b"\n\n" in self._plain
        if not head_done and len(self._plain) < _HEAD_LIMIT and _could_be_request(self._plain):
            return
        self._cancel_timer()
        if _REQUEST_LINE.match(self._plain):
            transport.write(plain_http_response())
        else:
            transport.write(error_response(400))
        transport.close()

    def _hand_over(self, transport: asyncio.Transport, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        self._next = app = self.factory()
        if self.arrivals is not None:
            self.arrivals.handshaking(transport, app)
        tls = _ssl_protocol_class(loop)(
            loop,
            app,
            self.context,
            None,  # no waiter: the app protocol's connection_made is the signal
            server_side=True,
            ssl_handshake_timeout=self.timeout,
        )
        transport.set_protocol(tls)
        tls.connection_made(transport)
        data = memoryview(first)
        while data:  # both SSL protocols are buffered protocols
            view = tls.get_buffer(len(data))
            n = min(len(view), len(data))
            view[:n] = data[:n]
            tls.buffer_updated(n)
            data = data[n:]


def _could_be_request(buf: bytes | bytearray) -> bool:
    """Still a plausible request line (so worth reading more of)?"""
    line = bytes(buf.split(b"\n", 1)[0])
    method = line.split(b" ", 1)[0]
    return method.replace(b"_", b"").replace(b"-", b"").isupper() or not method


def accepting_factory(
    factory: Callable[[], asyncio.Protocol], context: ssl.SSLContext | None, timeout: float
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory to give ``create_server`` (with ``ssl=None``) for a
    socket: ``factory`` itself for plain sockets, a ``TLSAcceptor`` in front
    of it for ``listen ... ssl`` ones."""
    if context is None:
        return factory
    return lambda: TLSAcceptor(factory, context, timeout)
