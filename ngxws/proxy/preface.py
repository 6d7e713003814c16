"""The first protocol of a connection on a ``listen ... proxy_protocol``
socket: it reads the PROXY preface (``ngxws.proxy_protocol``) and hands the
connection, with the rest of the bytes, to the protocol that serves it --
the ``TLSAcceptor`` of a ``listen ... ssl proxy_protocol`` socket (the
preface comes before the TLS handshake, as nginx's ngx_http_ssl_handshake()
reads it) or the ``ClientConnection`` itself.

A broken preface closes the connection without a response, as nginx does
(and logs ``broken header`` at ``error``); so does ``client_header_timeout``
before the preface is whole.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import Callable

from ngxws.first_bytes import FirstBytesReader
from ngxws.proxy_protocol import Broken, Incomplete, ProxyHeader, read_preface

__all__ = ["PrefaceReader", "preface_factory"]

log = logging.getLogger("ngxws")


class PrefaceReader(FirstBytesReader):
    """Reads the preface, then ``next_protocol(header)`` takes over."""

    def __init__(
        self,
        next_protocol: Callable[[ProxyHeader | None], asyncio.Protocol],
        timeout: float,
        reset: bool = False,
    ) -> None:
        self.next_protocol = next_protocol
        self.reset = reset  # a broken preface resets the connection (before TLS, as nginx)
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._buf += data
        verdict = read_preface(self._buf)
        if isinstance(verdict, Incomplete):
            return
        self._cancel_timer()
        if isinstance(verdict, Broken):
            peer = transport.get_extra_info("peername")
            client = peer[0] if isinstance(peer, tuple) else "unix:"
            log.error(f"{verdict.message} while reading PROXY protocol, client: {client}")
            if self.reset:
                # nginx only peeked at the bytes before TLS: closing with them
                # unread makes the kernel send a reset; so does linger 0 here
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
                return
            transport.close()
            return
        rest = self._buf[verdict.length :]
        self._buf = b""
        self._next = protocol = self.next_protocol(verdict.header)
        if isinstance(protocol, FirstBytesReader):  # a TLSAcceptor next
            protocol.arrivals = self.arrivals
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if rest and not transport.is_closing():
            protocol.data_received(rest)


def preface_factory(
    factory: Callable[..., asyncio.Protocol], context: ssl.SSLContext | None, timeout: float
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory of a ``listen ... proxy_protocol`` socket:
    ``factory(proxy=header)`` serves the connection once the preface is
    read, behind a ``TLSAcceptor`` when ``context`` is given."""
    from ngxws.listeners import accepting_factory

    def after(header: ProxyHeader | None) -> asyncio.Protocol:
        return accepting_factory(lambda: factory(proxy=header), context, timeout)()

    return lambda: PrefaceReader(after, timeout, reset=context is not None)
