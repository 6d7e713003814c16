"""The websocket tunnel: two sockets joined by a byte-for-byte relay.

After the upstream's 101, both transports are handed to a ``Tunnel`` whose
two small protocols relay each read as it came (the very same ``bytes``
object is written to the other side: no unmasking, no re-framing, no copy).
On the way, a header-only ``FrameTracker`` per direction counts frames and
payload into this worker's shared counter slot, and, only when the server
logs frames, yields per-frame tuples for the log templates.  A frame counts,
and is logged, in the read that brings its last byte (the module's
frame_counter_process_message), so log lines of the two directions come in
the order frames completed.

Fair turns: each relay step spends from the worker's per-loop-turn
allowance (``turns.py``).  Once it is spent, a side that logs every frame
keeps what it read (``held``), stops reading and relays it in later turns,
``LOGGED_CHUNK`` bytes per step; a side that does not log relays its read at
once (cheap, and still in the CPU cache) and then stops reading until a later
turn.  Bytes are never reordered or dropped by this, and a frame's line is
written before the frame is forwarded, so every frame that left ngxws has
its line.

Backpressure: when one side's write buffer passes its high-water mark,
reading from the other side stops until it drains, so a tunnel holds at
most about two write buffers of data however fast its peers are.

Timers, all per tunnel, none per frame:
- ``proxy_read_timeout``: idle (no byte either way) for that long closes
  the tunnel, as nginx's upgraded-connection handler does;
- ``proxy_send_timeout`` / ``send_timeout``: a write toward the upstream /
  the client that stays blocked that long closes the tunnel (nginx arms
  these on the blocked write event).  Here the timer runs from the
  transport's ``pause_writing`` (write buffer over its high-water mark) to
  its ``resume_writing``, so the relay's reads pay nothing for it.  nginx
  re-arms its timer whenever the tunnel's handler runs while blocked; ngxws
  counts from the moment the buffer filled -- the same once the kernel
  buffers behind it are full, which is when a peer that stopped reading is
  detected anyway;
- ``ws_conn_age``: the client gets close 4001 "Connection is Aged" on time,
  idle or not (the module only checks when a frame passes).
Frames ngxws writes itself (4001, 1001 at shutdown) are put between frames of
the upstream->client stream, never inside one, and are not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ngxws.accounting import breakdown as B
from ngxws.accounting import counters as C
from ngxws.accounting.breakdown import record_close
from ngxws.proxy.close_details import Tally, close_text
from ngxws.proxy.dial import Dial
from ngxws.proxy.idle import IDLE_CHECKS, IdleWatch
from ngxws.proxy.splice import Spliced, splice_born, splice_tunnel
from ngxws.proxy.turns import (
    LINE_COST,
    LOGGED_CHUNK,
    RESUME_COST,
    SMALL_READ,
    UNLOGGED_SHIFT,
    relay_turns,
)
from ngxws.running import running_loop
from ngxws.sinks.wslog import CloseInfo
from ngxws.ws.frames import (
    CLineFormat,
    CRelay,
    CSplice,
    FrameTracker,
    OpcodeTally,
    encode_close_frame,
)

if TYPE_CHECKING:
    from ngxws.proxy.context import WorkerContext
    from ngxws.sinks.logfile import LogFile
    from ngxws.sinks.wslog import FrameLogger
    from ngxws.ws._speedups import FrameTracker as CFrameTracker

# How long a pending close waits for the upstream to finish the frame it is
# in the middle of, before the tunnel is closed without a close frame.
_CLOSE_GRACE = 1.0

# An unlogged tunnel is handed to the C relay (splice.py) once it has lived
# this long: the hand-over (two dup()s, two transports closed, two fd
# watchers) costs more than a short-lived tunnel relays (bench W5: upgrade,
# one frame each way, close), and a long-lived one gains on every read (W7).
SPLICE_AFTER = 0.2


class _Ended:
    """What a side whose socket is gone sees as its tunnel: closed."""

    closed = True
    log_each_frame = False
    splice_due = False  # lived SPLICE_AFTER: splice at the next chance (_splice)

    def closed_by(self, closer: str) -> None:
        pass

    def close(self, reason: str = "", abort: bool = False) -> None:
        pass


_ENDED = _Ended()

# record_close's ``silent`` (the sides' SOURCE)
_CLIENT = ("client",)
_UPSTREAM = ("upstream",)
_BOTH = ("client", "upstream")


class _Side(asyncio.Protocol):
    """Reads one socket, counts, writes to the other.  Subclasses name the direction."""

    FRAMES = 0
    OPCODES = 0  # breakdown.OPCODES_*: this direction's per-opcode counters
    PAYLOAD = 0
    BYTES = 0
    SOURCE = ""
    TIMED_OUT = ""
    opcodes: OpcodeTally  # the Python logged path's only (no extension)

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        # The tracker adds to this worker's shared slot itself (count()): one
        # C call per read does the frame scan and the counter update.
        self.tracker = FrameTracker(
            tunnel.worker.counters.array, tunnel.slot + self.FRAMES, tunnel.slot + self.OPCODES
        )
        self.count = self.tracker.count
        self.unlogged = not tunnel.log_each_frame  # fixed for the tunnel's life
        # a logged side's lines rendered in C by its tracker's log() (None: no
        # line this way); without the extension, lines_for_frames renders them
        # and this side's per-opcode counters are kept in Python (opcodes)
        c_log = not self.unlogged and CLineFormat is not None
        logger = tunnel.logger
        self.line_format = logger.line_format(self.SOURCE) if c_log and logger is not None else None
        self.log_read = cast("CFrameTracker", self.tracker).log if c_log else None  # Tally's when it stands in
        if not self.unlogged and not c_log:
            self.opcodes = OpcodeTally(tunnel.worker.counters.array, tunnel.slot + self.OPCODES)
        self.array = tunnel.worker.counters.array
        self.base = tunnel.slot
        self.out: asyncio.Transport = None  # type: ignore[assignment]  # set by Tunnel
        self.write: Callable[[bytes], None] = None  # type: ignore[assignment]  # out.write
        self.source: asyncio.Transport = None  # type: ignore[assignment]
        # writes *to* this side's socket blocked: (proxy_)send_timeout running
        self.send_timeout = 60.0
        self.send_timer: asyncio.TimerHandle | None = None
        self.turns = relay_turns(running_loop())
        self.spend = self.turns.spend
        self.held = b""  # read but not yet relayed: waiting for a turn (reading paused)
        self.held_at = 0  # where in ``held`` the bytes not yet relayed begin
        self.out_blocked = False  # the other socket's write buffer is full (reading paused)
        self.eof_pending = False  # our peer closed; close once ``held`` is relayed
        self.read_stopped = False  # for good: a close frame of ours is pending
        self.queued = False  # waiting in ``turns`` for a turn (reading paused)
        self.saw_close = False  # the tunnel has noted this side's first close frame
        self.go_fast = self.unlogged  # take_fast_path at the first read

    def take_fast_path(self) -> None:
        """From now on an unlogged side reads through ``_read_unlogged`` -- in
        C (``_speedups.Relay``) when the extension is there, so a read runs
        no Python at all.  Taken at the side's first read, so a connection
        that stays idle holds no handler objects (bench W6)."""
        self.go_fast = False
        if self.tunnel.splice_due and splice_tunnel(self.tunnel):
            return  # both directions now relayed in C, off the transports (splice.py)
        if CRelay is not None:
            self.data_received = CRelay(  # type: ignore[method-assign,assignment]
                self.tracker, self.out, self._unlogged_spent, SMALL_READ
            ).feed
        else:
            self.data_received = self._read_unlogged  # type: ignore[method-assign]
        self.source.set_protocol(self)  # uvloop keeps the bound data_received

    def _read_unlogged(self, data: bytes) -> None:
        """``data_received`` of a side that does not log frames: frame scan
        and counter slot in one C call, then forward.  Relayed at once, while
        the bytes are still in the CPU cache (held and scanned a few turns
        later, they cost twice as much).  A read of at most ``SMALL_READ``
        bytes is not charged to the turn: libuv stops reading a socket after
        a read that did not fill its buffer, so that is at most one such read
        per socket per turn (the same bound as the logged path's)."""
        # Methods called on the objects themselves: in CPython 3.11 a
        # ``self.count(...)`` of an instance attribute is an unspecialized
        # LOAD_METHOD, and a cached bound method is one more object to pull
        # into the cache on a read that finds everything else cold (W7).
        lost = self.tracker.count(data)
        self.out.write(data)
        if lost or len(data) > SMALL_READ:
            self._unlogged_spent(len(data), lost)

    def _unlogged_spent(self, size: int, lost: bool) -> None:
        """The rest of ``_read_unlogged`` for a large read or a lost stream."""
        if lost:  # rare: the stream's first close frame, or a length it cannot follow
            self.tunnel.noticed(self)
            if self.tracker.error or size <= SMALL_READ:
                return
        turns = self.turns
        turns.spend(size >> UNLOGGED_SHIFT)
        if turns.left <= 0 and not self.queued:
            # once the turn's allowance is spent, read no more until a later turn
            self.queued = True
            self.source.pause_reading()
            turns.wait(self)

    def take_general_path(self) -> None:
        """Leave ``_read_unlogged``: reads go through ``data_received`` and
        ``_relay`` again, which a pending close of ours needs to watch."""
        self.go_fast = False
        if self.__dict__.pop("data_received", None) is not None:
            self.source.set_protocol(self)  # uvloop keeps the bound data_received

    def data_received(self, data: bytes) -> None:
        if self.held:
            self._hold(data, 0)  # rare: older bytes still wait for their turn
            return
        if self.unlogged:
            # Relay at once, while the bytes are still in the CPU cache (held
            # and scanned a few turns later, they cost twice as much); once
            # the turn's allowance is spent, read no more until a later turn.
            self._relay(data)
            if self.turns.left <= 0 and not self.queued:
                self.queued = True
                self.source.pause_reading()
                self.turns.wait(self)
            if self.go_fast and not self.tunnel.closed:
                self.take_fast_path()
            return
        if self.turns.left <= 0 and len(data) > SMALL_READ:
            # this turn's allowance is spent: keep the bytes, stop reading,
            # relay them in a later turn.  A small read goes through anyway:
            # it is cheap, and it is what an interactive tunnel sends -- it
            # must not queue behind floods.
            self._hold(data, 0)
            return
        self._step(data, 0)

    def _step(self, data: bytes, start: int) -> None:
        """Relay ``data[start:]`` -- at most one chunk of it when every frame
        is logged (a bounded number of lines); hold the rest for a later turn."""
        end = len(data)
        if self.tunnel.log_each_frame and end - start > LOGGED_CHUNK:
            end = start + LOGGED_CHUNK
            self._hold(data, end)
        self._relay(data if start == 0 and end == len(data) else data[start:end])

    def _relay(self, data: bytes) -> None:
        """Track, count, log and forward ``data``."""
        # No clock read here: the idle check compares the trackers' read
        # counts at timer time (Tunnel.check_idle).
        if self.unlogged:
            lost = self.count(data)  # frame scan + counter slot, one C call
            if len(data) > SMALL_READ:  # as _read_unlogged
                self.spend(len(data) >> UNLOGGED_SHIFT)
        else:
            t = self.tunnel
            if self.log_read is not None:  # scan, counter slot and lines in one C call
                lines, frames, _ = self.log_read(data, self.line_format, time.time())
                if lines:
                    t.logfile.write_lines(lines)  # type: ignore[union-attr]  # a logged side's tunnel has one
            else:
                seen = self.tracker.feed_frames(data)
                self.opcodes.add(seen)
                frames, payload = t.log_frames(seen, self.SOURCE)
                a = self.array
                b = self.base
                a[b + self.FRAMES] += frames
                a[b + self.PAYLOAD] += payload
                a[b + self.BYTES] += len(data)
            self.spend(len(data) + LINE_COST * frames)
            lost = self.tracker.error or (not self.saw_close and self.tracker.close is not None)
        self.write(data)
        if lost:  # rare: the stream's first close frame, or a length it cannot follow
            self.tunnel.noticed(self)

    def _hold(self, data: bytes, start: int) -> None:
        """Keep ``data[start:]`` for a later turn (no copy: an offset)."""
        if self.held:
            self.held = self.held[self.held_at :] + data[start:]
            self.held_at = 0
            return
        self.held = data
        self.held_at = start
        self.source.pause_reading()
        if not self.queued:
            self.queued = True
            self.turns.wait(self)

    def run_held(self) -> None:
        """Our turn (``RelayTurns``): relay one chunk of what was held, or
        (nothing held) read again, charged the cost of one full read."""
        self.queued = False
        if self.tunnel.closed:
            self.held = b""
            return
        if not self.held:
            self.turns.spend(RESUME_COST)
        else:
            data, self.held = self.held, b""
            self._step(data, self.held_at)  # holds (and re-queues) what is beyond one chunk
            if self.held or self.tunnel.closed:
                return
        if self.eof_pending:
            self.tunnel.close()
        else:
            self.resume_if_free()

    def resume_if_free(self) -> None:
        """Read again unless something still says stop (bytes waiting for a
        turn, a full write buffer on the other side, a close frame of ours).

        Also a splice's later chance: a tunnel that was busy when it became
        due (a flood waits for turns or a drain nearly all the time: bench
        W1, W3) is spliced when a side is free to read again."""
        if not (
            self.held
            or self.queued
            or self.out_blocked
            or self.read_stopped
            or self.source.is_closing()
        ):
            self.source.resume_reading()
            if self.tunnel.splice_due:
                splice_tunnel(self.tunnel)

    def eof_received(self) -> bool | None:
        # nginx finalizes the upgraded request when either side closes --
        # after relaying what it had read before the end.
        self.tunnel.tcp_ended(self.SOURCE)
        if self.held:
            self.eof_pending = True
            return True  # keep the transport: closed once the held bytes are relayed
        self.tunnel.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.tcp_ended(self.SOURCE)
        self.tunnel.close()
        self.let_go()

    def let_go(self) -> None:
        """Our socket is gone: no cycle left for the collector -- the
        side<->tunnel one, and the side<->C relay one of ``take_fast_path``
        (its ``feed`` is our ``data_received``, ours its callback)."""
        self.tunnel = _ENDED  # type: ignore[assignment]
        self.__dict__.pop("data_received", None)

    def pause_writing(self) -> None:
        # our *write* side (self.source is what we read; writes to us come
        # from the other side) is full: stop reading from the other side,
        # and give the blocked write (proxy_)send_timeout to drain.
        t = self.tunnel
        peer = t.peer_of(self)
        peer.out_blocked = True
        peer.source.pause_reading()
        if self.send_timer is None and not t.closed:
            self.send_timer = running_loop().call_later(
                self.send_timeout, t.send_timed_out, self
            )

    def resume_writing(self) -> None:
        if self.send_timer is not None:
            self.send_timer.cancel()
            self.send_timer = None
        peer = self.tunnel.peer_of(self)
        peer.out_blocked = False
        peer.resume_if_free()


class ClientSide(_Side):
    FRAMES = C.CLIENT_FRAMES
    OPCODES = B.OPCODES_CLIENT
    PAYLOAD = C.CLIENT_PAYLOAD
    BYTES = C.CLIENT_BYTES
    SOURCE = "client"
    TIMED_OUT = "client timed out"  # nginx's words for a blocked write to the client


class UpstreamSide(_Side):
    FRAMES = C.UPSTREAM_FRAMES
    OPCODES = B.OPCODES_UPSTREAM
    PAYLOAD = C.UPSTREAM_PAYLOAD
    BYTES = C.UPSTREAM_BYTES
    SOURCE = "upstream"
    TIMED_OUT = "upstream timed out"

    def relay_then_close(self, data: bytes) -> None:
        """``_relay`` while a close frame of ours waits for the end of the
        upstream's frame (swapped in by ``Tunnel.close_with``, so no other
        read pays for the check)."""
        _Side._relay(self, data)
        t = self.tunnel
        if t.pending_close is not None and self.tracker.at_boundary:
            t.send_close_now()


class _BornSide:
    """A side of a tunnel relayed in C from its start (``splice_born``): what
    the tunnel's one close/accounting path, ``noticed``, ``close_with`` and
    the splice's events read of a side -- no relay state, no per-opcode
    tally, no turn allowance (the C relay needs none of them)."""

    # set by Tunnel.__init__ (no __init__ here: no Python frame per side)
    tracker: FrameTracker
    source: asyncio.Transport  # closed by the splice; aborted only if that failed (EMFILE)
    send_timeout: float
    # what every side starts with
    send_timer: asyncio.TimerHandle | None = None
    read_stopped = False
    saw_close = False


class _BornClient(_BornSide):
    FRAMES = ClientSide.FRAMES
    SOURCE = ClientSide.SOURCE
    TIMED_OUT = ClientSide.TIMED_OUT


class _BornUpstream(_BornSide):
    FRAMES = UpstreamSide.FRAMES
    SOURCE = UpstreamSide.SOURCE
    TIMED_OUT = UpstreamSide.TIMED_OUT


class Tunnel:
    """One open websocket tunnel and its accounting."""

    splice_due = False  # lived SPLICE_AFTER: splice at the next chance (_splice)
    # what every tunnel starts with (class defaults: no store per tunnel)
    logger: FrameLogger | None = None
    logfile: LogFile | None = None
    log_each_frame = False  # per-frame tuples are only built when a template consumes them
    closed = False
    closer = ""  # who closed first: a close frame's sender or ngxws_* (breakdown.CLOSERS)
    tcp_closer = ""  # whose TCP connection ended first (counts only without the above)
    sent_close: tuple[int, str] | None = None  # our own close frame to the client
    on_close: Callable[[], None] | None = None  # what the request holds until the end (limit_conn)
    stat_state = 0  # the client connection's stub_status state, while it lasts (connstats.py)
    pending_close: tuple[int, str] | None = None
    started = False  # start() relayed the leftovers: the relay may be spliced
    spliced: Spliced | None = None  # relayed in C off the transports (splice.py)
    reads_seen = 0  # both trackers' read count at the last idle check
    quiet_checks = -1  # consecutive idle checks that saw no read (the first only notes the count: idle.py)
    client_side: ClientSide
    upstream_side: UpstreamSide
    client: asyncio.Transport
    upstream: asyncio.Transport  # or a Dial (a born tunnel's, until start_born): one to it
    _timers: tuple[asyncio.TimerHandle, ...] = ()  # conn_age, the splice, a close's grace (_arm)
    idle: IdleWatch  # proxy_read_timeout (idle.py)

    def __init__(
        self,
        worker: WorkerContext,
        slot: int,
        client: asyncio.Transport,
        upstream: asyncio.Transport | Dial,
        logger: FrameLogger | None,
        logfile: LogFile | None,
        read_timeout: float,
        conn_age: float | None,
        *,
        send_timeout: float = 60.0,
        client_send_timeout: float = 60.0,
    ) -> None:
        """``send_timeout`` is the location's ``proxy_send_timeout`` (writes
        to the upstream), ``client_send_timeout`` its ``send_timeout``
        (writes to the client)."""
        self.worker = worker
        self.slot = slot
        self.opened_at = time.monotonic()
        self.read_timeout = read_timeout
        self.client = client
        if isinstance(upstream, Dial):
            loop = upstream.loop  # the running loop (no running_loop() call)
            # relayed in C from start() on (splice_born): lean sides, the
            # upstream a plain socket that acts as a transport until then
            self.upstream = upstream  # type: ignore[assignment]
            array = worker.counters.array
            c = _BornClient()
            c.tracker = FrameTracker(array, slot + ClientSide.FRAMES, slot + ClientSide.OPCODES)
            c.source = client
            c.send_timeout = client_send_timeout
            u = _BornUpstream()
            u.tracker = FrameTracker(array, slot + UpstreamSide.FRAMES, slot + UpstreamSide.OPCODES)
            u.source = self.upstream
            u.send_timeout = send_timeout
            self.client_side = c  # type: ignore[assignment]
            self.upstream_side = u  # type: ignore[assignment]
        else:
            loop = running_loop()
            if logger is not None and logfile is not None:
                self.logger = logger
                self.logfile = logfile
                self.log_each_frame = logger.wants_frames
            self.client_side = ClientSide(self)
            self.upstream_side = UpstreamSide(self)
            self.client_side.send_timeout = client_send_timeout
            self.upstream_side.send_timeout = send_timeout
            if self.logger is not None and self.logger.wants_close_details:
                # the close line wants this tunnel's own totals / close frames:
                # only such a tunnel's sides feed through a tally (close_details.py)
                for side in (self.client_side, self.upstream_side):
                    tally = Tally(side.tracker, side.array, side.base + side.FRAMES, side.base + side.OPCODES)
                    side.tracker = tally  # type: ignore[assignment]
                    side.count = tally.count
                    if side.log_read is not None:
                        side.log_read = tally.log
            self.client_side.source = client
            self.client_side.out = upstream
            self.upstream_side.source = upstream
            self.upstream_side.out = client
            self.client_side.write = upstream.write
            self.upstream_side.write = client.write
            self.upstream = upstream
        self.idle = IdleWatch.of(loop, read_timeout)
        self.idle.add(self)
        if conn_age is not None:
            self._arm(loop.call_later(conn_age, self.close_with, 4001, "Connection is Aged"))
        if CSplice is not None and not self.log_each_frame and not isinstance(upstream, Dial):
            self._arm(loop.call_later(SPLICE_AFTER, self._splice))
        worker.tunnels.add(self)

    def start(self, client_leftover: bytes, upstream_leftover: bytes, answer: bytes = b"") -> None:
        """Swap the relay protocols in and relay what arrived with the heads
        (after ``answer``, the 101 to the client, when the relay is in C from
        the start: the client's transport has not sent it)."""
        if isinstance(self.upstream, Dial):
            self.start_born(answer, client_leftover, upstream_leftover)
            return
        self.client.set_protocol(self.client_side)
        self.upstream.set_protocol(self.upstream_side)
        if self.logger is not None and self.logfile is not None:
            line = self.logger.open_line(time.time())
            if line is not None:
                self.logfile.append(line)
        if upstream_leftover:
            self.upstream_side.data_received(upstream_leftover)
        if client_leftover:
            self.client_side.data_received(client_leftover)
        self.started = True
        self.client_side.resume_if_free()
        self.upstream_side.resume_if_free()

    def start_born(self, answer: bytes, client_leftover: bytes, upstream_leftover: bytes) -> None:
        """``start`` of a tunnel whose upstream is a plain socket (dial.py):
        the client's socket joins it in the C relay, which sends the 101 and
        then relays the leftovers, counted as any read is."""
        dial: Dial = self.upstream  # type: ignore[assignment]  # a born tunnel's (upgrade.tunnel_now)
        spliced = splice_born(self, dial.take_fd(), dial.poller)
        self.started = True
        if spliced is None:  # no descriptor for the client's dup (EMFILE)
            self.worker.log_error("dup() failed while switching protocols: too many open files")
            self.closed_by("ngxws_error")
            self.close(abort=True)
            return
        if not spliced.relay.write(1, answer):  # spliced.write() of a relay that holds nothing yet
            spliced._block(1)
        if upstream_leftover and not self.closed:
            spliced.relay_first(1, upstream_leftover)
        if client_leftover and not self.closed:
            spliced.relay_first(0, client_leftover)

    def _splice(self) -> None:
        """Both directions relayed in C from now on, off the transports, if
        the tunnel can be (splice.py says; else it stays as it is).  A
        tunnel that has carried nothing yet waits for its first read
        (``take_fast_path``): an idle one keeps no C relay and no buffers
        (bench W6)."""
        self.splice_due = True
        if self.client_side.tracker.reads or self.upstream_side.tracker.reads:
            splice_tunnel(self)

    def peer_of(self, side: _Side) -> _Side:
        return self.upstream_side if side is self.client_side else self.client_side

    def log_frames(self, frames: list[tuple[int, int, bool]], source: str) -> tuple[int, int]:
        """Render log lines for frames of one read; return (frames, payload)."""
        assert self.logger is not None and self.logfile is not None
        payload = 0
        for f in frames:
            payload += f[1]
        self.logfile.extend(self.logger.lines_for_frames(frames, source, time.time()))
        return len(frames), payload

    def _arm(self, timer: asyncio.TimerHandle) -> None:
        """Keep ``timer`` for ``close`` to cancel (a tuple: most tunnels arm none)."""
        self._timers += (timer,)

    def check_idle(self) -> None:
        """``proxy_read_timeout`` (its watch runs this ``IDLE_CHECKS`` times
        per timeout: idle.py): close once a whole timeout's worth of checks
        saw neither tracker's read count change."""
        if self.closed:
            return
        reads = self.client_side.tracker.reads + self.upstream_side.tracker.reads
        if reads != self.reads_seen:
            self.reads_seen = reads
            self.quiet_checks = 0
        else:
            self.quiet_checks += 1
            if self.quiet_checks >= IDLE_CHECKS:
                self.closed_by("ngxws_timeout")
                self.close(reason="upstream timed out")

    def send_timed_out(self, side: _Side) -> None:
        """A write to ``side``'s socket stayed blocked for its send timeout
        (``side.send_timer`` stays set: ``close`` aborts that socket)."""
        self.closed_by("ngxws_timeout")
        self.close(reason=side.TIMED_OUT)

    def close_with(self, code: int, reason: str) -> None:
        """Send the client a close frame of our own between two upstream frames, then close."""
        if self.closed or self.pending_close is not None:
            return
        self.closed_by("ngxws_age" if code == 4001 else "ngxws_shutdown")
        self.pending_close = self.sent_close = (code, reason)
        self.client_side.read_stopped = True
        self.client.pause_reading()
        up = self.upstream_side
        if up.tracker.at_boundary:
            self.send_close_now()
        else:
            if self.spliced is not None:  # the relay in C reports the boundary (BOUNDARY)
                self.spliced.stop_reading(0)
                self.spliced.watch_upstream()
            else:
                up._relay = up.relay_then_close  # type: ignore[method-assign]
                up.take_general_path()
            self._arm(running_loop().call_later(_CLOSE_GRACE, self.close))

    def send_close_now(self) -> None:
        assert self.pending_close is not None
        code, reason = self.pending_close
        if self.spliced is not None:
            self.spliced.write(1, encode_close_frame(code, reason))
        elif not self.client.is_closing():
            self.client.write(encode_close_frame(code, reason))
        self.close()

    def closed_by(self, closer: str) -> None:
        """Note who closed first: a side's close frame or ngxws's own reason
        (the first call wins; a close frame the C relay read counts as a
        call made when it was read)."""
        if not self.closer:
            self.closer = self._spliced_closer() or closer

    def _spliced_closer(self) -> str:
        """The side whose first close frame the C relay read first (it notes
        it instead of reporting it: _splice.c), '' when it read none."""
        spliced = self.spliced
        if spliced is None:
            return ""
        d = spliced.relay.first_close
        return "" if d < 0 else spliced.sides[d].SOURCE

    def tcp_ended(self, source: str) -> None:
        """``source``'s TCP connection ended (what decides only when no
        close frame came and ngxws gave no reason before the end)."""
        if not self.tcp_closer:
            self.tcp_closer = source

    def noticed(self, side: _Side) -> None:
        """The rare news of a read (its tracker's count() said so): the
        side's first close frame completed, or its stream cannot be followed."""
        if not side.saw_close and side.tracker.close is not None:
            side.saw_close = True
            self.closed_by(side.SOURCE)
        if side.tracker.error:
            self.closed_by("ngxws_error")
            self.close(reason="frame length cannot be followed")

    def final_closer(self) -> str:
        """breakdown.CLOSERS: the first close frame or ngxws reason, else
        whose TCP ended first, else a fast stop (it aborts without a reason)."""
        if self.closer:
            return self.closer
        spliced = self.spliced
        if spliced is not None and spliced.relay.first_close >= 0:  # _spliced_closer(), without the call
            return spliced.sides[spliced.relay.first_close].SOURCE  # type: ignore[no-any-return]
        return f"{self.tcp_closer}_tcp" if self.tcp_closer else "ngxws_shutdown"

    def _close_info(self) -> CloseInfo:
        """The close line's ngxws variables ($ws_close_*, per-direction totals)."""
        c, u = self.client_side.tracker, self.upstream_side.tracker
        close_client, close_upstream = close_text(c.close), close_text(u.close)
        if not isinstance(c, Tally) or not isinstance(u, Tally):
            return CloseInfo(self.final_closer(), close_client, close_upstream, sent=self.sent_close)
        return CloseInfo(
            self.final_closer(),
            close_client=close_client,
            close_upstream=close_upstream,
            sent=self.sent_close,
            frames_client=c.frames,
            frames_upstream=u.frames,
            payload_client=c.payload,
            payload_upstream=u.payload,
        )

    def stop_reading(self) -> None:
        """Fast stop, first step: read nothing more, so no new line is made
        while the worker writes the lines it holds."""
        for d, side in enumerate((self.client_side, self.upstream_side)):
            side.read_stopped = True
            if self.spliced is not None:
                self.spliced.stop_reading(d)
            elif not side.source.is_closing():
                side.source.pause_reading()

    def close(self, reason: str = "", abort: bool = False) -> None:
        """End the tunnel once: close both sockets (pending writes flushed,
        unless ``abort``: a fast stop drops them), give the connection slot
        back, write the close line.

        A side whose writes are blocked is aborted even without ``abort``:
        its peer is not reading, so a flushing close would hold the socket
        and its buffer for as long as the peer likes; nginx drops what it
        had not sent when it finalizes the request."""
        if self.closed:
            return
        self.closed = True
        self.idle.discard(self)
        for timer in self._timers:
            timer.cancel()
        c, u = self.client_side, self.upstream_side
        spliced = self.spliced
        for side in (c, u):
            blocked = side.send_timer
            if blocked is not None:
                side.send_timer = None
                blocked.cancel()
            if spliced is not None:
                # the transports are gone (the sockets are closed below): no
                # connection_lost comes to a side, it lets go here
                if isinstance(side, _Side):  # a born side holds nothing of ours
                    side.let_go()
                continue
            if abort or blocked is not None:
                side.source.abort()
            else:
                side.source.close()
        if spliced is not None:
            spliced.close(abort)
        worker = self.worker
        worker.counters.close(self.slot)
        if self.stat_state:
            self.stat_state = worker.conn_stats.closed(self.stat_state)
        # the directions from which no close frame came
        silent: tuple[str, ...]
        if c.tracker.close is None:
            silent = _BOTH if u.tracker.close is None else _CLIENT
        else:
            silent = _UPSTREAM if u.tracker.close is None else ()
        record_close(
            worker.counters.array,
            self.slot,
            self.final_closer(),
            time.monotonic() - self.opened_at,
            silent=silent,
        )
        worker.tunnels.discard(self)
        if self.on_close is not None:
            self.on_close()
        if self.logger is not None and self.logfile is not None:
            line = self.logger.close_line(time.time(), self._close_info())
            if line is not None:
                self.logfile.append(line)
            self.logfile.flush()
        if reason:
            self.worker.log_info(f"websocket tunnel closed: {reason}")
