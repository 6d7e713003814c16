"""Timers of one duration on one loop, kept in arming order, one loop timer.

Why: a connection arms client_header_timeout when it is accepted and
cancels it when its head is in, then arms keepalive_timeout between
requests; through the loop each arming is a timer handle made, started,
stopped and closed (~1.3 us on uvloop: bench/PROFILE.md, "W5, round 6"),
and a waiting connection holds one.  Timers that all run for the same time
expire in the order they were armed, so a queue in arming order (nginx keeps
its timers in a red-black tree, ngx_event_timer.c; with one duration the
tree's order is the arming order) needs one loop timer, at the first
expiry: arming is an append, cancelling a removal, and each expires when it
would have on its own timer.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ngxws.running import PerLoop

__all__ = ["FifoTimers"]


class FifoTimers(PerLoop):
    """The armed timers of ``seconds`` on ``loop``, by owner (one each)."""

    __slots__ = ("seconds", "armed", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        super().__init__(loop, seconds)
        self.seconds = seconds
        # owner -> (when, callback), in arming order (= expiry order)
        self.armed: OrderedDict[Hashable, tuple[float, Callable[[], object]]] = OrderedDict()
        self.timer: asyncio.TimerHandle | None = None  # at the first expiry

    def arm(self, owner: Hashable, callback: Callable[[], object]) -> None:
        """Run ``callback`` in ``seconds`` unless cancelled; an owner's
        earlier timer here is replaced (re-armed from now)."""
        armed = self.armed
        if owner in armed:
            del armed[owner]
        armed[owner] = (self.loop.time() + self.seconds, callback)
        if self.timer is None:
            self.timer = self.loop.call_at(armed[next(iter(armed))][0], self._expire)

    def cancel(self, owner: Hashable) -> None:
        """Drop ``owner``'s timer (none: nothing happens).  The loop timer
        stays, even with nothing armed: it finds the next expiry when it
        fires -- cancelling and making it again as connections come and go
        would cost what one timer per connection did."""
        self.armed.pop(owner, None)

    def _expire(self) -> None:
        self.timer = None
        armed = self.armed
        now = self.loop.time()
        while armed:
            owner = next(iter(armed))
            when, callback = armed[owner]
            if when > now + _GRAIN:
                break
            del armed[owner]
            callback()
        if armed and self.timer is None:
            self.timer = self.loop.call_at(armed[next(iter(armed))][0], self._expire)


# the loop's timers run in whole milliseconds: one due within that is due
# (not re-armed for the rest, which would run the loop for nothing)
_GRAIN = 0.001
