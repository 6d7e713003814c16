"""proxy_read_timeout's watches (ngxws/proxy/idle.py), on uvloop.

One timer checks every tunnel of a timeout ``IDLE_CHECKS`` times per
timeout; it stops with the last tunnel and starts again with the next; a
check that closes its tunnel (and so leaves the watch) does not disturb the
others' checks; each timeout has its own watch (each loop too:
tests/test_fifo_timers.py).  The close of a
real idle tunnel within its bound is tests/test_tunnel_timeouts.py's.
"""

from __future__ import annotations

import asyncio

import uvloop

from ngxws.proxy.idle import IDLE_CHECKS, IdleWatch


class _Tunnel:
    def __init__(self, watch: IdleWatch, close_at: int = 0) -> None:
        self.watch = watch
        self.checks = 0
        self.close_at = close_at  # closes (leaves the watch) at this check; 0: never

    def check_idle(self) -> None:
        self.checks += 1
        if self.checks == self.close_at:
            self.watch.discard(self)


def test_one_timer_checks_every_tunnel_and_stops_with_the_last() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        timeout = 0.2  # a check every 0.01 s
        watch = IdleWatch.of(loop, timeout)
        assert watch.period == timeout / IDLE_CHECKS
        assert IdleWatch.of(loop, timeout) is watch and IdleWatch.of(loop, 0.3) is not watch
        assert watch.timer is None
        leaving = _Tunnel(watch, close_at=2)
        staying = [_Tunnel(watch) for _ in range(3)]
        for t in (leaving, *staying):
            watch.add(t)
        timer = watch.timer
        assert timer is not None
        await asyncio.sleep(watch.period * 6.5)
        assert leaving.checks == 2  # closed at its second check: never checked again
        assert all(t.checks >= 4 for t in staying)  # every tick checks all (a loaded machine ticks late)
        assert len({t.checks for t in staying}) == 1  # the same ticks
        for t in staying:
            watch.discard(t)
        assert watch.timer is None and not watch.tunnels
        before = staying[0].checks
        await asyncio.sleep(watch.period * 3)
        assert staying[0].checks == before  # no timer while nothing is watched
        late = _Tunnel(watch)
        watch.add(late)
        assert watch.timer is not None
        await asyncio.sleep(watch.period * 3.5)
        assert late.checks >= 2
        watch.discard(late)

    uvloop.run(asyncio.wait_for(scenario(), 10))

