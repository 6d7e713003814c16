"""Type stub for the optional C extension built from ``_speedups.c``.

Same interface as :class:`ngxws.ws.frames.PyFrameTracker`, the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

def dial(family: int, host: str, port: int, /) -> tuple[int, int]: ...
def parse_101(make: Callable[[str, list[tuple[str, str]], bytes], _T], data: bytes, /) -> _T | None:
    """head101.py's simple 101 read: make(reason, headers, leftover), or None."""

class FrameTracker:
    """Follows one direction of a websocket byte stream, reading frame headers only."""

    @property
    def error(self) -> bool: ...
    @property
    def at_boundary(self) -> bool: ...
    @property
    def close(self) -> tuple[int, bytes] | None: ...
    def feed(self, data: bytes | bytearray | memoryview, /) -> tuple[int, int]: ...
    def feed_frames(
        self, data: bytes | bytearray | memoryview, /
    ) -> list[tuple[int, int, bool]]: ...
    def log(
        self, data: bytes | bytearray | memoryview, fmt: LineFormat | None, now: float, /
    ) -> tuple[bytes, int, int]: ...

class LineFormat:
    """One direction's ws_log line, for ``FrameTracker.log`` (``_loglines.c``)."""

    def __init__(
        self,
        pieces: tuple[bytes | int, ...],
        source: bytes,
        every: bool,
        opened_at: float,
        http_date: Callable[[float], str] | None,
        iso8601: Callable[[float], str] | None,
        msec: Callable[[float], str] | None,
    ) -> None: ...

class Relay:
    """The read handler of a tunnel side that does not log frames (``tunnel._Side._read_unlogged`` in C)."""

    def __init__(
        self,
        tracker: object,
        out: object,
        spent: Callable[[int, bool], None],
        small: int,
    ) -> None: ...
    def feed(self, data: bytes, /) -> None: ...

class Splice:
    """Both directions of an unlogged plain tunnel in C (``ngxws.proxy.splice``)."""

    def __init__(
        self,
        client: FrameTracker,
        upstream: FrameTracker,
        fd_client: int,
        fd_upstream: int,
        event: Callable[[int, int], None],
        size: int,
        bulk: int = 0,
        steady: int = 0,
    ) -> None: ...
    @property
    def held(self) -> tuple[int, int]: ...
    @property
    def sizes(self) -> tuple[int, int]: ...
    @property
    def first_close(self) -> int: ...
    def read_client(self) -> None: ...
    def read_upstream(self) -> None: ...
    def drain_client(self) -> None: ...
    def drain_upstream(self) -> None: ...
    def write(self, direction: int, data: bytes, /) -> bool: ...
    def close(self, flush: bool, /) -> None: ...
    def watch(self, direction: int, on: bool, /) -> None: ...

POLL_READ: int
POLL_WRITE: int

class Poller:
    """This worker's own epoll set for the sockets without a transport (``ngxws.proxy.splice``)."""

    def __init__(self) -> None: ...
    @property
    def fd(self) -> int: ...
    @property
    def watched(self) -> int: ...
    def set(self, fd: int, events: int, target: Splice | Callable[[int], None], which: int = 0, /) -> None: ...
    def remove(self, fd: int, /) -> None: ...
    def forget(self, fd: int, /) -> None: ...
    def run(self) -> None: ...
