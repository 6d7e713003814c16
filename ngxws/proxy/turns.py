"""Fair shares of the event loop for websocket relays.

Why: libuv reads a readable socket up to 32 times in a row (256 KiB each
under uvloop) before it returns to the loop, and a tunnel that logs a line
per frame renders a line for every frame of that.  With 64 tunnels flooding
small frames one loop turn lasted seconds, so accepts, the stats page,
new upgrades and signals waited for tens of seconds, and a SIGTERM could not
be acted on within the master's grace period.  nginx's workers stay
responsive because each event handler does a buffer's worth of C work; a
Python relay has to bound its share explicitly.

How: one ``RelayTurns`` per event loop (so per worker) holds an allowance of
relay work for the current loop turn, in *cost units*: a byte relayed and
logged costs 1, a ws_log line rendered ``LINE_COST`` more, and a byte
relayed without logging 1/16 (``UNLOGGED_SHIFT``: C frame scan and one
write per read, no Python per frame).  A relay side spends
from it after each chunk it relays; once it is spent, any side that gets
data in the same turn keeps the data (``held``), stops reading its socket
and waits in a FIFO queue.  At the start of the next turn (a ``call_soon``
callback runs before the loop polls) the allowance is refilled and the
queue is served in order, one chunk per side, until it is spent again.
Reads of at most ``SMALL_READ`` bytes are relayed at once all the same:
that is what interactive tunnels send, and a socket gives at most one such
read per turn.  Every turn therefore does a bounded amount of relay work and
then polls:
listening sockets, HTTP connections, timers and signal handlers are served
between turns, and every flooding tunnel gets its turn in order.

Nothing is dropped or reordered: a side relays its held bytes before it
reads again.  The allowance only bounds *when* work happens.

This module has no sockets: a waiting side is anything with ``run_held()``,
and the loop is only asked for ``call_soon``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "LINE_COST",
    "LOGGED_CHUNK",
    "PER_TURN",
    "RESUME_COST",
    "SMALL_READ",
    "UNLOGGED_SHIFT",
    "RelayTurns",
    "Waiter",
    "relay_turns",
]

PER_TURN = 64 * 1024
"""Cost units one loop turn may spend on relaying (about 0.5 ms of work)."""

LINE_COST = 128
"""Extra cost of one rendered ws_log line: a logged 64 B frame (70 bytes on
the wire) costs about 200 units.  Set when a line took about 1.2 us in
Python; rendered in C (``FrameTracker.log``) a logged frame now takes about
0.3 us, most of it the kernel copying its line into the file (bench W2), so
a turn of logged relaying is ~0.1 ms.  16 was tried: W2 no faster, W8's
probes no quicker."""

UNLOGGED_SHIFT = 4
"""A read relayed without per-frame logging costs ``len >> UNLOGGED_SHIFT``
units, 1/16 per byte (so a turn relays up to 1 MiB unlogged, about 0.5 ms)."""

RESUME_COST = (256 * 1024) >> UNLOGGED_SHIFT
"""What a side that waited without held bytes is charged when it may read
again: one full uvloop read (256 KiB) relayed unlogged.  So a turn lets only
as many flooding sockets read as its allowance covers."""

LOGGED_CHUNK = 32 * 1024
"""Most bytes a side that logs every frame relays in one step (a few
hundred lines); the rest of a read waits for the side's next step."""

SMALL_READ = 4096
"""A read this small is relayed even when the turn's allowance is spent
(and, on a tunnel that does not log frames, not charged at all).
libuv stops reading a socket after a read that did not fill its buffer, so
this costs at most one small read per socket per turn, and a tunnel that
carries a few messages is never queued behind flooding ones."""


class Waiter(Protocol):
    def run_held(self) -> None:
        """Relay (part of) what was held back; call ``RelayTurns.wait`` again
        if something is still held."""


class RelayTurns:
    """The per-turn allowance of relay work and the sides waiting for one."""

    __slots__ = ("__weakref__", "_armed", "_call_soon", "_queue", "arm_below", "left", "per_turn")

    def __init__(self, call_soon: Callable[[Callable[[], None]], object], per_turn: int = PER_TURN):
        self.per_turn = per_turn
        self.left = per_turn
        # the refill is armed once ``left`` is down to this (relays that
        # inline ``spend`` compare against it themselves)
        self.arm_below = per_turn // 2
        self._call_soon = call_soon
        self._queue: deque[Waiter] = deque()
        self._armed = False

    def spend(self, cost: int) -> None:
        """Charge ``cost`` to this turn (refilled at the start of a next one,
        once half of it is spent)."""
        self.left -= cost
        if self.left <= self.arm_below and not self._armed:
            self._arm()

    def wait(self, side: Waiter) -> None:
        """Queue ``side`` for a later turn (it has stopped reading)."""
        self._queue.append(side)
        if not self._armed:
            self._arm()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _arm(self) -> None:
        self._armed = True
        self._call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._armed = False
        self.left = self.per_turn
        queue = self._queue
        # Only the sides queued when the turn began: one that re-queues
        # itself goes to the back and waits for the next turn.
        for _ in range(len(queue)):
            if self.left <= 0:
                break
            queue.popleft().run_held()
        if queue and not self._armed:
            self._arm()


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RelayTurns] = (
    weakref.WeakKeyDictionary()
)


# the last answer: a worker asks for its one loop's twice per tunnel (a
# weak-keyed lookup makes a weak reference each time)
_LAST: list[tuple[asyncio.AbstractEventLoop, RelayTurns]] = []


def relay_turns(loop: asyncio.AbstractEventLoop) -> RelayTurns:
    """The one ``RelayTurns`` of ``loop`` (one per worker process)."""
    if _LAST and _LAST[0][0] is loop:
        return _LAST[0][1]
    turns = _BY_LOOP.get(loop)
    if turns is None:
        turns = _BY_LOOP[loop] = RelayTurns(loop.call_soon)
    _LAST[:] = [(loop, turns)]
    return turns
