"""The upgrade's upstream connection as a plain non-blocking socket.

Why: an upgrade whose tunnel will be relayed in C (``splice.py``) never
needs an asyncio transport on its upstream side.  Through the loop's
``create_connection`` a connect costs a coroutine, a ``TCPTransport`` with
its read buffer and weak-reference registration, and a protocol switch at
the 101; the tunnel then dup'd the socket off that transport again to
splice it (bench/PROFILE.md, "W5, round 3").  Here the connect is what
nginx's ``ngx_event_connect_peer`` does: ``socket``, ``TCP_NODELAY`` (nginx
sets it on both upgraded connections, ``ngx_http_upstream_upgrade``), a
non-blocking ``connect``, the loop's write readiness for its outcome
(``SO_ERROR``), then one ``write`` of the request head and the loop's read
readiness for the response head.  To a loopback peer the handshake is over
when ``connect`` returns (``TCP_INFO``'s state says so): the head goes at
once, as on the write readiness that would follow (``at_once``).  The first
three steps are one C call (``_speedups.dial``, ``_dial.c``) and the socket
stays a bare descriptor: a Python socket object per connection cost W5 ~9 %
of the proxy's CPU (bench/PROFILE.md, "W5, round 6").

A simple 101 (``head101.parse_101``) goes to ``FastUpgrade.head_read`` and
the socket to the tunnel.  Anything else -- another answer, a head not
whole in the first read, the upstream closing first -- is handed, with
every byte read so far, to an ``UpstreamResponse`` on a transport the loop
makes of this very socket (``create_connection(sock=...)``), the reader
every upstream answer went through before; a read error goes to it as the
transport's ``connection_lost`` would.

``Dial`` is also what the client connection holds as its
``upstream_transport`` meanwhile: ``close``, ``abort``, ``write``,
``is_closing``, ``pause_reading`` and ``resume_reading`` behave as a
transport's do for it (and for an ``UpstreamResponse`` told of a read error).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import TYPE_CHECKING, Any, Protocol, cast

from ngxws.proxy.head101 import parse_101
from ngxws.proxy.splice import poller
from ngxws.proxy.upstream_response import SwitchHead, UpstreamResponse
from ngxws.running import running_loop
from ngxws.ws.frames import POLL_READ, POLL_WRITE, c_dial

if TYPE_CHECKING:
    from ngxws.routing.peers import PeerTarget
    from ngxws.ws._speedups import Poller

__all__ = ["Dial", "DialOwner", "family_of"]

_FAMILIES: dict[str, int | None] = {}


def family_of(host: str) -> int | None:
    """AF_INET / AF_INET6 for a literal address, None for anything else
    (a name: the loop's resolving connect is used for it)."""
    family = _FAMILIES.get(host, -1)
    if family == -1:
        family = None
        for candidate in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(candidate, host)
            except OSError:
                continue
            family = candidate
            break
        if len(_FAMILIES) < 1024:  # the peers of the configuration: few
            _FAMILIES[host] = family
    return family


# the loop last asked for and its Poller (splice.poller(): a weak mapping
# looked up by the running loop): one loop per worker, so nearly always this
_LAST: list[Any] = [None, None]


def _poller_for(loop: asyncio.AbstractEventLoop) -> Poller:
    found = poller()  # the running loop's: ``loop``
    _LAST[0], _LAST[1] = loop, found
    return found


class DialOwner(Protocol):
    """What a ``Dial`` reports to (``FastUpgrade``): typed here, defined there."""

    def connected(self, peer: PeerTarget, dial: Dial | None, exc: BaseException | None) -> None: ...

    def head_read(self, response: SwitchHead) -> None: ...

    def general_response(self, dial: Dial) -> UpstreamResponse: ...

    def adopted(self, transport: asyncio.BaseTransport) -> bool: ...


_NO_OWNER: DialOwner = cast(DialOwner, None)


class Dial:
    """One upstream connection of an upgrade, until its response head is in."""

    __slots__ = ("owner", "peer", "fd", "loop", "poller", "closed", "watching", "unsent", "at_once")

    def __init__(
        self, owner: DialOwner, peer: PeerTarget, family: int, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Start connecting; raises OSError when ``socket()`` fails (as the
        loop's connect does: the caller's connect_failure says what it means).
        ``loop``: the running loop (the caller has it at hand)."""
        self.owner = owner
        self.peer = peer
        if loop is None:
            loop = running_loop()
        self.loop = loop
        self.poller = _LAST[1] if _LAST[0] is loop else _poller_for(loop)
        self.closed = False
        self.watching = 0  # POLL_WRITE (connect, head) or POLL_READ (response head)
        self.unsent = b""
        self.at_once = False  # connected when connect() returned: the owner calls connect_done()
        # socket, TCP_NODELAY, connect, in C (_dial.c); a loopback connect's
        # handshake is over when connect() returns, which it says with err 0:
        # the write readiness nginx waits for is there
        assert c_dial is not None  # a Dial is made only where the relay is in C
        self.fd, err = c_dial(family, peer.host, peer.port)
        if err == 0:
            self.at_once = True
        elif err == errno.EINPROGRESS:
            self.watching = POLL_WRITE  # _watch(), inline: once per upgrade
            self.poller.set(self.fd, POLL_WRITE, self._ready)
        else:  # refused at once (loopback): reported from the loop, as the connect's error
            self.loop.call_soon(self._failed_connect, err)

    def _watch(self, events: int) -> None:
        self.watching = events
        self.poller.set(self.fd, events, self._ready)

    def _ready(self, events: int) -> None:
        """The poller's news of this socket (what ``watching`` asked for)."""
        if self.closed:
            return
        if self.watching == POLL_READ:
            self._readable()
        elif self.unsent:
            self._send_rest()
        else:
            self._connect_done()

    # -- connect ---------------------------------------------------------------

    def _connect_done(self) -> None:
        sock = socket.socket(fileno=self.fd)  # for getsockopt only (a connect that waited: rare)
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        finally:
            sock.detach()
        if err:
            self._failed_connect(err)
            return
        # the owner writes the head at once (then reads: one change of interest)
        self.owner.connected(self.peer, self, None)
        if not self.closed and self.watching == POLL_WRITE and not self.unsent:
            self._watch(0)

    def connect_done(self) -> None:
        """The connect ended in ``connect()`` itself (``at_once``): the owner
        goes on as on the write readiness (nothing registered with the
        poller yet: the head's send registers the read)."""
        self.owner.connected(self.peer, self, None)

    def _failed_connect(self, err: int) -> None:
        if self.closed:
            return
        self.close()
        self.owner.connected(self.peer, None, OSError(err, os.strerror(err)))

    def expire(self) -> None:
        """proxy_connect_timeout: give the connect up (the owner hears it cancelled)."""
        if self.closed:
            return
        self.close()
        self.owner.connected(self.peer, None, asyncio.CancelledError())

    # -- the request head --------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send ``data`` (the request head, or a last close frame): what the
        socket does not take now is sent on its write readiness."""
        if self.closed:
            return
        if not self.unsent:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = len(data)  # the read side reports the error
            data = data[sent:]
            if not data:
                if self.watching != POLL_READ:
                    self.watching = POLL_READ  # _watch(), inline: once per upgrade
                    self.poller.set(self.fd, POLL_READ, self._ready)
                return
        self.unsent += data
        self._watch(POLL_WRITE)

    def _send_rest(self) -> None:
        data, self.unsent = self.unsent, b""
        self.write(data)

    # -- the response head ---------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._general(b"", exc)
            return
        if data:
            head = parse_101(data)
            if head is not None:
                self.owner.head_read(head)  # the tunnel takes the socket (take_socket) ...
                if not self.closed:  # ... or not: read nothing more meanwhile
                    self._watch(0)
                return
        self._general(data, None)

    def _general(self, data: bytes, exc: Exception | None) -> None:
        """Not a simple 101 in one read: the general reader takes over."""
        self.poller.remove(self.fd)
        self.watching = 0
        response = self.owner.general_response(self)
        if exc is not None:
            response.connection_made(self)  # type: ignore[arg-type]  # a transport to it
            response.connection_lost(exc)
            return
        sock = socket.socket(fileno=self.fd)  # the transport's now
        self.closed = True
        adopt = _Adopt(self.owner, response, data)

        def made(fut: asyncio.Future[tuple[asyncio.Transport, _Adopt]]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                sock.close()
                response.connection_lost(ConnectionResetError("upstream connection lost"))

        # the loop's transport reads on from this socket (no byte is lost:
        # nothing reads it between these two steps)
        task = asyncio.ensure_future(self.loop.create_connection(lambda: adopt, sock=sock))
        task.add_done_callback(made)

    # -- transport-like ------------------------------------------------------------

    def take_fd(self) -> int:
        """The connected socket's descriptor, for the tunnel (the socket
        object lets go of it), still registered with the poller (the
        tunnel's relay takes the registration over: no system call when it
        watches what this did)."""
        self.closed = True
        # the tunnel keeps this object as its upstream: not the request (W6)
        self.owner = _NO_OWNER
        return self.fd

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.poller.remove(self.fd)
        os.close(self.fd)

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        if self.watching == POLL_READ:
            self._watch(0)

    def resume_reading(self) -> None:
        if not self.closed and self.watching == 0 and not self.unsent:
            self._watch(POLL_READ)


class _Adopt(asyncio.Protocol):
    """The transport made of a ``Dial``'s socket, handed to the general
    reader before its first read: the bytes the ``Dial`` read go first."""

    def __init__(self, owner: DialOwner, response: UpstreamResponse, data: bytes) -> None:
        self.owner = owner
        self.response = response
        self.data = data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.set_protocol(self.response)
        self.response.connection_made(transport)
        if self.owner.adopted(transport) and self.data:
            self.response.data_received(self.data)
