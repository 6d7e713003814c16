"""What the protocols that read a connection's first bytes share.

``proxy.preface.PrefaceReader`` (the PROXY preface) and
``listeners.TLSAcceptor`` (a ClientHello or plain HTTP on an ``ssl`` port)
look at what the client sends before handing the connection to the protocol
that serves it.  ``client_header_timeout`` runs from the accept until they
have seen enough; when it expires nginx closes silently
(ngx_http_wait_request_handler(), ngx_http_ssl_handshake()).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import cast

from ngxws.running import running_loop

__all__ = ["Arrivals", "FirstBytesReader"]


class FirstBytesReader(asyncio.Protocol):
    """A protocol under ``client_header_timeout`` until it hands the connection over.

    A subclass sets ``timeout`` and calls ``_cancel_timer()`` once it has seen
    enough; ``_next`` is the protocol it handed the connection to.
    """

    timeout: float
    transport: asyncio.Transport | None = None
    _timer: asyncio.TimerHandle | None = None
    _next: asyncio.Protocol | None = None
    arrivals: Arrivals | None = None  # the worker's, shared by a connection's readers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's TCPTransport is not registered as an asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        if self.arrivals is not None:
            self.arrivals.begun(transport)
        self._timer = running_loop().call_later(self.timeout, self._expire)

    def eof_received(self) -> bool | None:
        self._cancel_timer()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()

    def _expire(self) -> None:
        # client_header_timeout before a byte, a whole preface or a whole head:
        # nginx closes silently.
        self._timer = None
        if self.transport is not None and self._next is None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Arrivals:
    """A worker's connections that no protocol serves yet: reading a PROXY
    preface or the first bytes of an ``ssl`` port, or in the TLS handshake.

    A stopping or draining worker waits for them as for served connections:
    nginx's old worker exits only once no timer of a connection is left,
    the preface, handshake and first-request timers included.  Weak both
    ways: keyed by the connection's transport, with a weak reference to the
    protocol its TLS handshake will hand it to (the reader that made that
    hand-over is gone by then); nothing here keeps anything alive.
    """

    def __init__(self) -> None:
        self._by_transport: weakref.WeakKeyDictionary[
            asyncio.BaseTransport, weakref.ref[asyncio.Protocol] | None
        ] = weakref.WeakKeyDictionary()

    def begun(self, transport: asyncio.BaseTransport) -> None:
        self._by_transport[transport] = None

    def handshaking(self, transport: asyncio.BaseTransport, served: asyncio.Protocol) -> None:
        """``served`` gets the connection once its TLS handshake is over."""
        self._by_transport[transport] = weakref.ref(served)

    def pending(self) -> list[asyncio.BaseTransport]:
        """The transports of the connections still arriving."""
        out = []
        for transport, served in list(self._by_transport.items()):
            if transport.is_closing():
                continue
            protocol = transport.get_protocol()
            if isinstance(protocol, FirstBytesReader):
                if protocol._next is None:  # still reading the first bytes
                    out.append(transport)
            elif served is not None:
                app = served()  # in the handshake until the app protocol has its transport
                if app is not None and getattr(app, "transport", None) is None:
                    out.append(transport)
        return out
