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
from typing import cast

from ngxws.running import running_loop

__all__ = ["FirstBytesReader"]


class FirstBytesReader(asyncio.Protocol):
    """A protocol under ``client_header_timeout`` until it hands the connection over.

    A subclass sets ``timeout`` and calls ``_cancel_timer()`` once it has seen
    enough; ``_next`` is the protocol it handed the connection to.
    """

    timeout: float
    transport: asyncio.Transport | None = None
    _timer: asyncio.TimerHandle | None = None
    _next: asyncio.Protocol | None = None

    def arriving(self) -> bool:
        """Accepted, still open, and not yet a connection the worker serves.

        A reload's drain waits for these as for served connections: nginx's
        old worker exits only once no timer of a connection is left, the
        PROXY-preface, handshake and first-request timers included.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        after = self._next
        if after is None:
            return True  # still reading the first bytes
        if isinstance(after, FirstBytesReader):
            return after.arriving()  # a PROXY preface read, a ClientHello next
        # handed to TLS: the serving protocol is made once the handshake ends
        return getattr(after, "transport", None) is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's TCPTransport is not registered as an asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
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
