"""Timers of one duration on one loop timer (ngxws/proxy/fifo_timers.py), on uvloop.

Each armed timer runs its callback when it would have on a timer of its own
(not before, and within the loop's grain after), in arming order; a
cancelled one never runs; re-arming counts from the re-arming; the loop
timer is not made again while nothing is armed; a callback may arm and cancel others.
The connections' own timeouts (client_header_timeout, keepalive_timeout)
are tested end to end against nginx in the differential suites.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from ngxws.proxy.fifo_timers import FifoTimers
from ngxws.proxy.idle import IdleWatch


def test_each_runs_when_its_own_timer_would_in_arming_order() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        timers = FifoTimers.of(loop, 0.05)
        assert FifoTimers.of(loop, 0.05) is timers and FifoTimers.of(loop, 0.06) is not timers
        ran: list[tuple[str, float]] = []
        armed_at: dict[str, float] = {}

        def arm(name: str) -> None:
            armed_at[name] = loop.time()
            timers.arm(name, lambda: ran.append((name, loop.time())))

        arm("a")
        await asyncio.sleep(0.01)
        arm("b")
        arm("c")
        await asyncio.sleep(0.01)
        arm("a")  # re-armed: from now, after c
        timers.cancel("c")
        timers.cancel("nobody")
        await asyncio.sleep(0.15)
        assert [name for name, _ in ran] == ["b", "a"]
        for name, when in ran:
            late = when - (armed_at[name] + 0.05)
            assert -0.0011 <= late < 0.05, (name, late)  # not before (the loop's ms grain), not much after
        assert timers.timer is None and not timers.armed

    uvloop.run(asyncio.wait_for(scenario(), 10))


def test_the_loop_timer_goes_with_the_last_and_callbacks_may_arm() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        timers = FifoTimers.of(loop, 0.02)
        ran: list[str] = []
        timers.arm("x", lambda: ran.append("x"))
        assert timers.timer is not None
        timers.cancel("x")
        await asyncio.sleep(0.05)
        assert ran == [] and timers.timer is None  # it fired, found nothing, was not made again

        def first() -> None:
            ran.append("first")
            timers.cancel("second")  # armed with it, due at the same turn: dropped
            timers.arm("third", lambda: ran.append("third"))

        timers.arm("first", first)
        timers.arm("second", lambda: ran.append("second"))
        await asyncio.sleep(0.1)
        assert ran == ["first", "third"]
        assert timers.timer is None

    uvloop.run(asyncio.wait_for(scenario(), 10))


@pytest.mark.parametrize("registry", [FifoTimers.of, IdleWatch.of])
def test_each_loop_has_its_own(registry: Callable[[asyncio.AbstractEventLoop, float], object]) -> None:
    """The per-duration registries (these timers, idle.py's watches) hand a
    new loop -- a test's next one -- its own, not an earlier loop's."""
    seen = []

    async def scenario() -> None:
        seen.append(registry(asyncio.get_running_loop(), 7.0))

    uvloop.run(scenario())
    uvloop.run(scenario())
    assert seen[0] is not seen[1]
