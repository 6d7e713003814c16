"""Bounding an await by a timeout without an extra task.

``asyncio.wait_for`` wraps its awaitable in a new task on Python 3.11 (and
``shield`` adds a future), which the upgrade path paid twice per websocket
connection.  ``asyncio.timeout`` (3.11+) cancels the current task instead;
3.10 keeps ``wait_for``.  Both raise ``asyncio.TimeoutError`` on expiry.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(aw: Awaitable[T], seconds: float) -> T:
    """``await aw``, or raise ``asyncio.TimeoutError`` after ``seconds``."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await aw
    return await asyncio.wait_for(aw, seconds)  # pragma: no cover - Python 3.10
