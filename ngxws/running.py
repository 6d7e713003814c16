"""The running event loop, without a system call.

``asyncio.get_running_loop()`` compares ``getpid()`` with the pid noted when
the loop started (CPython's ``_asyncio`` module, to notice a fork): one
system call per call.  The upgrade path asked for the loop ten times per
connection, and ``strace -c`` of a worker under W5 counted 50,000 ``getpid``
for 5,000 connections, the most frequent call of all (bench/PROFILE.md,
"W5, round 4").

The loop is kept per thread and is valid while it runs: a thread runs one
loop at a time, so a cached loop that is running is the one this code runs
in.  A worker is forked from a master that never runs a loop, so nothing
cached crosses a fork.

``PerLoop``: objects shared by a loop's connections, one per loop and key
(the timer queues of fifo_timers.py, the idle watches of idle.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import ClassVar, TypeVar

_local = threading.local()


def running_loop() -> asyncio.AbstractEventLoop:
    """``asyncio.get_running_loop()``, the system call paid once per loop and thread."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or not loop.is_running():
        loop = _local.loop = asyncio.get_running_loop()
    return loop


class PerLoop:
    """One instance per loop and key (a duration), made on first use:
    ``Sub.of(loop, key)``; a subclass's ``__init__`` takes (loop, key).
    One loop per worker; an instance of an earlier loop (a test's) is
    replaced, and the registry is emptied should it ever hold more keys
    than a configuration has durations."""

    __slots__ = ("loop",)
    _of: ClassVar[dict[float, PerLoop]]

    def __init__(self, loop: asyncio.AbstractEventLoop, key: float) -> None:
        self.loop = loop

    def __init_subclass__(cls) -> None:
        cls._of = {}

    @classmethod
    def of(cls: type[_P], loop: asyncio.AbstractEventLoop, key: float) -> _P:
        found = cls._of.get(key)
        if found is None or found.loop is not loop:
            if len(cls._of) >= 256:
                cls._of.clear()
            found = cls._of[key] = cls(loop, key)
        return found  # type: ignore[return-value]  # cls._of holds cls's own


_P = TypeVar("_P", bound=PerLoop)
