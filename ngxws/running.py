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
"""

from __future__ import annotations

import asyncio
import threading

_local = threading.local()


def running_loop() -> asyncio.AbstractEventLoop:
    """``asyncio.get_running_loop()``, the system call paid once per loop and thread."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or not loop.is_running():
        loop = _local.loop = asyncio.get_running_loop()
    return loop
