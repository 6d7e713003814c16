"""An unlogged plain-TCP tunnel relayed in C, without uvloop transports.

Why: a tunnel that logs no frames only needs, per read, what nginx's
``ngx_http_upstream_process_upgraded`` does -- read into a buffer, send it
on -- plus the frame scan and counter slot.  Through uvloop's transports
every read also pays a new ``bytes`` object, the stream's read callback and
the write buffer's bookkeeping (bench/PROFILE.md, "Relay, round 2": more
user time than nginx's whole relay).

An upgrade of a server without ``ws_log`` on a plain TCP client is relayed
here from its start (``splice_born``): its upstream connection never had a
transport (``dial.py``), the client's socket is dup'd off its transport.
Any other unlogged tunnel is handed over once it has lived
``tunnel.SPLICE_AFTER`` (``splice_tunnel``): both sockets dup'd, their
transports closed (the dups keep the TCP connections: uvloop's close is a
plain ``close(2)``, no ``shutdown``); one that is busy when it falls due (a
flood: waiting for its turn or for a drain nearly all the time) at its next
chance, when a side may read again (``_Side.resume_if_free``).

A spliced socket starts in the worker's own epoll set (``poller``,
``_poller.c``), registered once; on readiness the C object reads: one
``recv`` into a pooled buffer, ``count`` into the shared slot, one
``send``.  A direction whose read filled its ``BUFFER`` reads up to
``BULK`` from then on.

A tunnel of small messages (none of its reads filled the buffer) that has
been read ``STEADY_AFTER`` times moves its two sockets into the loop's own
epoll set (``LoopWatch``: ``add_reader`` with the C
object's bound methods, which uvloop calls without a Python frame), the one
set nginx's worker has too.  Why two sets: the worker's set is itself a
descriptor in the loop's, so every byte a peer sends into a socket of it
runs two epoll wake-up callbacks in the peer's ``send`` (the inner set's,
then the loop's) where one set runs one -- about 2 % of a saturated echo
load's CPU (bench W4; bench/PROFILE.md, "W4, round 4").  A socket in the
loop's set, though, costs uvloop a poll handle and libuv several
``epoll_ctl`` per change of interest, which a short tunnel (an upgrade, a
frame, a close: bench W5) would pay on every connection ("W5, round 3");
after ``STEADY_AFTER`` reads that one-time move is paid for.  Idle
tunnels never move (bench W6: no poll handle per idle connection), nor do
floods and bulk transfers (bench W1, W3), which gain nothing there -- the
per-send cost is per message, theirs are few and large -- and whose
interest keeps changing: a change is one ``epoll_ctl`` and no Python
object in the worker's set.  So a tunnel whose read fills its buffer is
never reported steady, and one that blocks in the loop's set goes back to
the worker's for good.

Backpressure as nginx's: what a ``send`` did not take stays in that
direction's buffer; the reader of that direction is removed and a writer on
the other socket drains it, then reading resumes.  A blocked write runs the
destination's send timeout (``proxy_send_timeout`` / ``send_timeout``).

At most four full ``recv`` per readiness per loop iteration (4 x the
buffer: 256 KiB, 4 MiB for a bulk direction; libuv's streams read up to 32
x 256 KiB): each spliced socket does a bounded amount of work per turn, so
the turn allowance of ``turns.py`` is not needed here.  (Capping a bulk
tunnel at one read per turn cost W1 a quarter more CPU per frame and W3 a
third more per MB: bench/PROFILE.md, "Relay, round 4".)

Python runs only for what is rare (``Spliced.event``): a socket's end or
error (the tunnel's own close path: closers, counters, lines, limit_conn),
a blocked or drained direction, a read that lost the stream
(``Tunnel.noticed``), and, while a close frame of ours waits
(``Tunnel.close_with``), a read of the upstream that ends between frames.
A read that completes a direction's first close frame runs none: the relay
notes which direction's came first (``first_close``), which the tunnel
reads when it decides who closed (``Tunnel.closed_by``, ``final_closer``).

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
import weakref
from typing import TYPE_CHECKING, Any

from ngxws.running import running_loop
from ngxws.ws.frames import POLL_READ, POLL_WRITE, CFrameTracker, CPoller, CSplice

if TYPE_CHECKING:
    from ngxws.ws._speedups import Poller, Splice

# tunnel.py imports this module: its Tunnel and _Side are not imported back
# (no import circle, tests/test_import_graph.py), so they are typed loosely.
Tunnel = Any
_Side = Any

__all__ = ["BUFFER", "BULK", "STEADY_AFTER", "LoopWatch", "Spliced", "loop_watch", "poller", "splice_born", "splice_tunnel"]

BUFFER = 64 * 1024
"""Bytes per direction: one read's worth, the most a direction holds ..."""

BULK = 1024 * 1024
"""... until a read fills a whole buffer (the socket had more): that
direction reads up to this much from then on, so a bulk tunnel makes one
``recv`` and one ``send`` (and wakes its peers once) per MiB instead of per
64 KiB -- the kernel's side is most of a bulk relay's cost (bench W3).
Buffers of either size come from a small pool (``_splice.c``) and are
given back whenever the direction holds nothing."""

STEADY_AFTER = 64
"""Reads (readinesses, either direction, none filling its buffer) after
which a tunnel's sockets move to the loop's set: a W5 connection has a
handful, a W4 echo tunnel reaches it in a tenth of a second."""

# Spliced.event kinds (_splice.c SPLICE_*)
EOF, ERROR, BLOCKED, DRAINED, NOTICED, BOUNDARY, STEADY = range(7)

_TCP = (socket.AF_INET, socket.AF_INET6)


class _Detached(asyncio.Protocol):
    """What a closed transport's last callbacks reach: nothing (the tunnel lives on the dups)."""

    # The closed transport's one certain call, ``connection_lost(exc)``,
    # answered by a builtin that ignores its argument: no Python frame per
    # tunnel (a builtin in a class is not bound: ``id(exc)``, result dropped).
    connection_lost = id  # type: ignore[assignment]


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


def splice_born(tunnel: Tunnel, fd_upstream: int, the_poller: Poller) -> Spliced | None:
    """Relay ``tunnel`` in C from its start: its upstream is the plain socket
    ``fd_upstream`` (dial.py: it never had a transport, so it is taken as
    it is), the client's socket is dup'd off its transport, which has sent
    nothing of the upgrade's answer yet; ``the_poller``: the loop's (``poller()``,
    which the Dial watched the socket with).  None, ``fd_upstream`` closed, when
    no descriptor is left for the dup."""
    assert CSplice is not None
    client = tunnel.client
    # fast_upgrade.born_spliced: a plain TCP client (no TLS, unix or PROXY
    # listener); nothing written to it yet
    assert not client.is_closing() and not client.get_write_buffer_size()
    try:
        dup_c = os.dup(client.get_extra_info("socket").fileno())
    except OSError:
        the_poller.remove(fd_upstream)
        os.close(fd_upstream)
        return None
    spliced = tunnel.spliced = Spliced(tunnel, dup_c, fd_upstream, the_poller)
    client.set_protocol(_DETACHED)
    client.close()
    return spliced


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Poller] = weakref.WeakKeyDictionary()


def poller() -> Poller:
    """The running loop's ``Poller`` (``_poller.c``): made, and its set's
    descriptor given to the loop to watch, at the first use."""
    loop = running_loop()
    found = _POLLERS.get(loop)
    if found is None:
        assert CPoller is not None
        found = _POLLERS[loop] = CPoller()
        loop.add_reader(found.fd, found.run)
    return found


class LoopWatch:
    """``Poller``'s ``set``/``remove`` for a Splice's sockets, over the loop's
    own epoll set: a readable socket ``which`` calls the relay's read of
    it, a writable one the drain of the direction that writes to it (what
    ``_poller.c``'s dispatch does)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.events: dict[int, int] = {}  # fd -> POLL_READ | POLL_WRITE it is watched for

    def set(self, fd: int, events: int, relay: Splice, which: int) -> None:
        was = self.events.get(fd, 0)
        if events == was:
            return
        loop = self.loop
        if (events ^ was) & POLL_READ:
            if events & POLL_READ:
                loop.add_reader(fd, relay.read_upstream if which else relay.read_client)
            else:
                loop.remove_reader(fd)
        if (events ^ was) & POLL_WRITE:
            if events & POLL_WRITE:
                loop.add_writer(fd, relay.drain_client if which else relay.drain_upstream)
            else:
                loop.remove_writer(fd)
        self.events[fd] = events

    def remove(self, fd: int) -> None:
        """Watch ``fd`` no more (before it is closed)."""
        was = self.events.pop(fd, 0)
        if was & POLL_READ:
            self.loop.remove_reader(fd)
        if was & POLL_WRITE:
            self.loop.remove_writer(fd)

    forget = remove  # ``Poller.forget``'s: the loop's handles must go whatever the close does


_LOOP_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWatch] = weakref.WeakKeyDictionary()


def loop_watch() -> LoopWatch:
    """The running loop's ``LoopWatch``."""
    loop = running_loop()
    found = _LOOP_WATCHES.get(loop)
    if found is None:
        found = _LOOP_WATCHES[loop] = LoopWatch(loop)
    return found


class Spliced:
    """A tunnel's C relay and its two dup'd sockets, driven by the worker's
    ``Poller``, then, once steady, by the loop (``LoopWatch``)."""

    ended = False  # closed (close()): the relay's late news is ignored

    def __init__(self, tunnel: Tunnel, fd_client: int, fd_upstream: int, the_poller: Poller | None = None) -> None:
        """``the_poller``: the loop's ``poller()`` when the caller has it at hand."""
        assert CSplice is not None
        self.tunnel = tunnel
        self.poller: Poller | LoopWatch
        self.poller = p = the_poller if the_poller is not None else poller()
        self.fds = (fd_client, fd_upstream)
        c, u = self.sides = (tunnel.client_side, tunnel.upstream_side)
        # C FrameTrackers (splice_tunnel checked; a born tunnel's are)
        relay = self.relay = CSplice(
            c.tracker, u.tracker, fd_client, fd_upstream, self.event, BUFFER, BULK, STEADY_AFTER
        )
        self.stopped = [False, False]  # direction d reads no more (a close of ours, a stop)
        self.has_blocked = False  # some direction blocked once: the tunnel stays in the worker's set
        self.blocked = [False, False]  # direction d holds bytes its destination has not taken
        p.set(fd_client, POLL_READ, relay, 0)
        p.set(fd_upstream, POLL_READ, relay, 1)

    def _watch(self, i: int) -> None:
        """Socket ``i``'s interest: read it while its direction reads and is
        not blocked; write to it while the other direction holds bytes."""
        events = (0 if self.stopped[i] or self.blocked[i] else POLL_READ) | (
            POLL_WRITE if self.blocked[1 - i] else 0
        )
        self.poller.set(self.fds[i], events, self.relay, i)

    def event(self, kind: int, n: int) -> None:
        """The C relay's rare news (``_splice.c`` SPLICE_*)."""
        if self.ended:
            return
        t = self.tunnel
        if kind == NOTICED:
            t.noticed(self.sides[n])
        elif kind <= ERROR:  # EOF or ERROR of socket n: nginx finalizes the upgraded request
            if not t.tcp_closer:  # t.tcp_ended(...), without the call
                t.tcp_closer = self.sides[n].SOURCE
            t.close()
        elif kind == BLOCKED:
            self._block(n)
        elif kind == DRAINED:
            self._unblock(n)
        elif kind == BOUNDARY:
            if t.pending_close is not None:
                t.send_close_now()
        elif kind == STEADY and not self.has_blocked:
            self._move(loop_watch())

    def _move(self, to: Poller | LoopWatch) -> None:
        """Both sockets into the set of ``to``, with the interest they have now."""
        was, self.poller = self.poller, to
        for i, fd in enumerate(self.fds):
            was.remove(fd)
            self._watch(i)

    def _block(self, d: int) -> None:
        """Direction ``d``'s send left bytes: read no more of it, drain to
        the other socket, and give the blocked write its send timeout."""
        self.blocked[d] = True
        if not self.has_blocked:
            self.has_blocked = True
            if type(self.poller) is LoopWatch:
                self._move(poller())
        self._watch(d)
        self._watch(1 - d)
        dest = self.sides[1 - d]  # writes to dest's socket are blocked
        t = self.tunnel
        if dest.send_timer is None and not t.closed:
            dest.send_timer = running_loop().call_later(dest.send_timeout, t.send_timed_out, dest)

    def _unblock(self, d: int) -> None:
        self.blocked[d] = False
        self._watch(1 - d)
        dest = self.sides[1 - d]
        if dest.send_timer is not None:
            dest.send_timer.cancel()
            dest.send_timer = None
        self._watch(d)

    def stop_reading(self, d: int) -> None:
        """Read no more in direction ``d`` (held bytes are still drained)."""
        self.stopped[d] = True
        self._watch(d)

    def watch_upstream(self) -> None:
        """Report (BOUNDARY) each upstream read that ends between frames."""
        self.relay.watch(1, True)

    def write(self, d: int, data: bytes) -> None:
        """``data`` on in direction ``d``, after what the relay holds for it
        (a frame of ours to the client: 1)."""
        if not self.ended and not self.relay.write(d, data) and not self.blocked[d]:
            self._block(d)

    def relay_first(self, d: int, data: bytes) -> None:
        """Bytes read with a head (a leftover): counted as a read of
        direction ``d`` is, then sent on."""
        side = self.sides[d]
        lost = side.tracker.count(data)
        self.write(d, data)
        if lost:
            self.tunnel.noticed(side)

    def close(self, abort: bool) -> None:
        """Stop watching both sockets, send what is held once more (unless
        ``abort``) and close them: the tunnel's end."""
        if self.ended:
            return
        self.ended = True
        for fd in self.fds:
            self.poller.forget(fd)  # the relay's close of the fds takes them out of the set
        self.relay.close(not abort)  # drops its event callback: no Splice <-> Spliced cycle
        # nothing reads the tunnel once ended (event() returns first): no
        # Tunnel <-> Spliced cycle either, so a tunnel's objects go by
        # reference counting, not by the cycle collector
        del self.tunnel
