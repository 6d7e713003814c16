"""proxy_read_timeout of a worker's tunnels: one timer per timeout value.

nginx re-arms a connection's read timer on every event; ngxws's relay reads
no clock (a read is one C call: bench/PROFILE.md, "Item 2"), so a tunnel's
trackers count reads and a check compares the count ``IDLE_CHECKS`` times
per timeout; the tunnel closes once a whole timeout's worth of checks saw
it unchanged.

The checks of all tunnels with the same timeout run from one timer (an
``IdleWatch``): a timer handle per tunnel, made and cancelled for every
short-lived one, cost W5 a handle's making and cancelling per connection,
and W6 the handle's memory per idle tunnel.  A tunnel joins a watch at
whatever point of its period; the first check it sees only notes its count
(it covers less than a period), so an idle tunnel closes between 1 and
1 + 2/IDLE_CHECKS timeouts after its last byte.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ngxws.running import PerLoop

__all__ = ["IDLE_CHECKS", "IdleWatch"]

IDLE_CHECKS = 20


class Watched(Protocol):
    """A tunnel as a watch sees it (``Tunnel.check_idle``)."""

    def check_idle(self) -> None: ...


class IdleWatch(PerLoop):
    """The tunnels of one loop with one read timeout, checked together."""

    __slots__ = ("period", "tunnels", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        super().__init__(loop, timeout)
        self.period = timeout / IDLE_CHECKS
        self.tunnels: dict[Watched, None] = {}  # in joining order
        self.timer: asyncio.TimerHandle | None = None  # armed while a tunnel is watched

    def add(self, tunnel: Watched) -> None:
        self.tunnels[tunnel] = None
        if self.timer is None:
            self.timer = self.loop.call_later(self.period, self._tick)

    def discard(self, tunnel: Watched) -> None:
        """Watch ``tunnel`` no more (its close): the timer stops with the last."""
        self.tunnels.pop(tunnel, None)
        if not self.tunnels and self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _tick(self) -> None:
        self.timer = None
        for tunnel in list(self.tunnels):  # a check may close its tunnel (discard)
            tunnel.check_idle()
        if self.tunnels and self.timer is None:
            self.timer = self.loop.call_later(self.period, self._tick)
