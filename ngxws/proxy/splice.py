"""An unlogged plain-TCP tunnel relayed in C, without uvloop transports.

Why: a tunnel that logs no frames only needs, per read, what nginx's
``ngx_http_upstream_process_upgraded`` does -- read into a buffer, send it
on -- plus the frame scan and counter slot.  Through uvloop's transports
every read also pays a new ``bytes`` object, the stream's read callback and
the write buffer's bookkeeping (bench/PROFILE.md, "Relay, round 2": more
user time than nginx's whole relay).  So once a tunnel has lived
``tunnel.SPLICE_AFTER`` (0.2 s: the hand-over costs more than a
short-lived tunnel relays, bench W5), a tunnel that can is handed to
``_speedups.Splice``: both sockets are dup'd, their transports closed (the
dups keep the TCP connections: uvloop's close is a plain ``close(2)``, no
``shutdown``), and ``loop.add_reader`` calls the C object's ``read_*`` on
readiness: one ``recv`` into the tunnel's own buffer, ``count`` into the
shared slot, one ``send``.  A tunnel that is busy when it falls due (a
flood: waiting for its turn or for a drain nearly all the time) is spliced
at its next chance, when a side may read again (``_Side.resume_if_free``).
A tunnel whose reads so far were large (``bulk``) gets ``BULK_BUFFER`` per
direction instead of ``BUFFER``.

Backpressure as nginx's: what a ``send`` did not take stays in that
direction's buffer; the reader of that direction is removed and a writer on
the other socket drains it, then reading resumes.  A blocked write runs the
destination's send timeout (``proxy_send_timeout`` / ``send_timeout``).

At most four full ``recv`` per readiness per loop iteration (4 x the
buffer: 256 KiB, 4 MiB for a bulk tunnel; libuv's streams read up to 32 x
256 KiB): each spliced socket does a bounded amount of work per turn, so
the turn allowance of ``turns.py`` is not needed here.  (Capping a bulk
tunnel at one read per turn cost W1 a quarter more CPU per frame and W3 a
third more per MB: bench/PROFILE.md, "Relay, round 4".)

Python runs only for what is rare (``Spliced.event``): a socket's end or
error (the tunnel's own close path: closers, counters, lines, limit_conn),
a blocked or drained direction, a read that completed a first close frame
(``Tunnel.noticed``), and, while a close frame of ours waits
(``Tunnel.close_with``), a read of the upstream that ends between frames.

Not spliced (the transport path stays): tunnels that log frames or close
details (a Python tally), TLS on either socket, a socket that is not TCP,
a transport with bytes still in its write buffer, a side that waits for
its turn or is blocked, and everything when the extension is absent or off
(``NGXWS_NO_SPEEDUPS=1``).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, cast

from ngxws.ws.frames import CFrameTracker, CSplice

# tunnel.py imports this module: its Tunnel and _Side are not imported back
# (no import circle, tests/test_import_graph.py), so they are typed loosely.
Tunnel = Any
_Side = Any

__all__ = ["BULK_BUFFER", "BULK_READ", "BUFFER", "Spliced", "bulk", "splice_tunnel"]

BUFFER = 64 * 1024
"""Bytes per direction: one read's worth, the most a direction holds."""

BULK_BUFFER = 1024 * 1024
"""Bytes per direction of a bulk tunnel (``bulk``): one ``recv`` takes what
the socket holds, and one ``send`` hands it on, so the peers are woken (and
ACKed) once per MiB rather than once per 64 KiB -- the kernel's side of the
relay is most of a bulk tunnel's cost (bench/PROFILE.md, "Relay, round 4":
W3 ~680 -> ~410 us of proxy CPU per MB).  Pages are touched only as reads
fill them (``malloc`` maps a buffer this size lazily)."""

BULK_READ = 32 * 1024
"""A direction whose reads on the transport path averaged this much or more
is bulk (uvloop reads up to 256 KiB; an interactive read is one message, a
flood's fills the read buffer): its tunnel gets ``BULK_BUFFER``."""

# Spliced.event kinds (_splice.c SPLICE_*)
EOF, ERROR, BLOCKED, DRAINED, NOTICED, BOUNDARY = range(6)

_TCP = (socket.AF_INET, socket.AF_INET6)


class _Detached(asyncio.Protocol):
    """What a closed transport's last callbacks reach: nothing (the tunnel lives on the dups)."""


_DETACHED = _Detached()


def _plain_tcp_fd(transport: asyncio.BaseTransport) -> int | None:
    """The fd of a plain (no TLS) TCP uvloop transport with nothing left to write, else None."""
    if not _plain_tcp(transport) or transport.is_closing() or transport.get_write_buffer_size():  # type: ignore[attr-defined]
        return None
    fd: int = transport.get_extra_info("socket").fileno()
    return fd if fd >= 0 else None


def _plain_tcp(transport: asyncio.BaseTransport) -> bool:
    """A plain (no TLS) TCP uvloop transport, busy or not."""
    if type(transport).__name__ != "TCPTransport" or transport.get_extra_info("ssl_object") is not None:
        return False
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.family in _TCP


def _c_tracker(tracker: object) -> bool:
    return CFrameTracker is not None and type(tracker) is CFrameTracker


def _idle(side: _Side) -> bool:
    """Nothing of this side is in flight on the transport path."""
    return not (
        side.held or side.queued or side.out_blocked or side.read_stopped or side.eof_pending
    ) and side.send_timer is None


def bulk(side: _Side) -> bool:
    """``side``'s reads so far averaged ``BULK_READ`` or more."""
    reads: int = side.tracker.reads
    return reads > 0 and side.array[side.base + side.BYTES] >= reads * BULK_READ


def splice_tunnel(tunnel: Tunnel) -> bool:
    """Hand ``tunnel`` to the C relay if it can be; True when done.

    A tunnel that never can be (a Python tally, TLS, not TCP) gets
    ``splice_due`` cleared, so the later chances (``_Side.resume_if_free``)
    do not ask again; one that is only busy now (bytes in flight on the
    transport path) keeps it."""
    if CSplice is None or tunnel.closed or not tunnel.started or tunnel.pending_close is not None:
        return False
    c, u = tunnel.client_side, tunnel.upstream_side
    if tunnel.log_each_frame or not (_c_tracker(c.tracker) and _c_tracker(u.tracker)):
        tunnel.splice_due = False
        return False  # a Python tally (close details) counts on the transport path
    if not (_idle(c) and _idle(u)):
        return False
    fd_c, fd_u = _plain_tcp_fd(tunnel.client), _plain_tcp_fd(tunnel.upstream)
    if fd_c is None or fd_u is None:
        if not (_plain_tcp(tunnel.client) and _plain_tcp(tunnel.upstream)):
            tunnel.splice_due = False
        return False
    try:
        dup_c = os.dup(fd_c)
    except OSError:  # out of fds (EMFILE): stay on the transports
        return False
    try:
        dup_u = os.dup(fd_u)
    except OSError:
        os.close(dup_c)
        return False
    tunnel.spliced = Spliced(tunnel, dup_c, dup_u)
    tunnel.splice_due = False
    for transport in (tunnel.client, tunnel.upstream):
        transport.set_protocol(_DETACHED)
        transport.close()  # empty write buffer: closes its fd, not the connection
    return True


class Spliced:
    """A tunnel's C relay and its two dup'd sockets, driven from the loop's fd watchers."""

    def __init__(self, tunnel: Tunnel, fd_client: int, fd_upstream: int) -> None:
        assert CSplice is not None
        self.tunnel = tunnel
        self.loop = asyncio.get_running_loop()
        self.fds = (fd_client, fd_upstream)
        self.sides = (tunnel.client_side, tunnel.upstream_side)
        self.size = BULK_BUFFER if bulk(tunnel.client_side) or bulk(tunnel.upstream_side) else BUFFER
        self.relay = CSplice(
            cast(Any, tunnel.client_side.tracker),  # C FrameTrackers (splice_tunnel checked)
            cast(Any, tunnel.upstream_side.tracker),
            fd_client,
            fd_upstream,
            self.event,
            self.size,
        )
        self.reads = (self.relay.read_client, self.relay.read_upstream)
        self.drains = (self.relay.drain_client, self.relay.drain_upstream)
        self.stopped = [False, False]  # direction d reads no more (a close of ours, a stop)
        self.blocked = [False, False]  # direction d holds bytes its destination has not taken
        self.ended = False
        for d in (0, 1):
            self.loop.add_reader(self.fds[d], self.reads[d])

    def event(self, kind: int, n: int) -> None:
        """The C relay's rare news (``_splice.c`` SPLICE_*)."""
        t = self.tunnel
        if self.ended:
            return
        if kind == NOTICED:
            t.noticed(self.sides[n])
        elif kind == BLOCKED:
            self._block(n)
        elif kind == DRAINED:
            self._unblock(n)
        elif kind == BOUNDARY:
            if t.pending_close is not None:
                t.send_close_now()
        else:  # EOF or ERROR of socket n: nginx finalizes the upgraded request
            t.tcp_ended(self.sides[n].SOURCE)
            t.close()

    def _block(self, d: int) -> None:
        """Direction ``d``'s send left bytes: read no more of it, drain to
        the other socket, and give the blocked write its send timeout."""
        self.blocked[d] = True
        self.loop.remove_reader(self.fds[d])
        self.loop.add_writer(self.fds[1 - d], self.drains[d])
        dest = self.sides[1 - d]  # writes to dest's socket are blocked
        t = self.tunnel
        if dest.send_timer is None and not t.closed:
            dest.send_timer = self.loop.call_later(dest.send_timeout, t.send_timed_out, dest)

    def _unblock(self, d: int) -> None:
        self.blocked[d] = False
        self.loop.remove_writer(self.fds[1 - d])
        dest = self.sides[1 - d]
        if dest.send_timer is not None:
            dest.send_timer.cancel()
            dest.send_timer = None
        if not self.stopped[d]:
            self.loop.add_reader(self.fds[d], self.reads[d])

    def stop_reading(self, d: int) -> None:
        """Read no more in direction ``d`` (held bytes are still drained)."""
        self.stopped[d] = True
        self.loop.remove_reader(self.fds[d])

    def watch_upstream(self) -> None:
        """Report (BOUNDARY) each upstream read that ends between frames."""
        self.relay.watch(1, True)

    def write_client(self, data: bytes) -> None:
        """A frame of ours to the client, after what the relay holds for it."""
        if not self.ended and not self.relay.write(1, data) and not self.blocked[1]:
            self._block(1)

    def close(self, abort: bool) -> None:
        """Stop watching both sockets, send what is held once more (unless
        ``abort``) and close them: the tunnel's end."""
        if self.ended:
            return
        self.ended = True
        for fd in self.fds:
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
        self.relay.close(not abort)
