"""Type stub for the optional C extension built from ``_speedups.c``.

Same interface as :class:`ngxws.ws.frames.PyFrameTracker`, the reference.
"""

from __future__ import annotations

from collections.abc import Callable

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
    ) -> None: ...
    @property
    def held(self) -> tuple[int, int]: ...
    def read_client(self) -> None: ...
    def read_upstream(self) -> None: ...
    def drain_client(self) -> None: ...
    def drain_upstream(self) -> None: ...
    def write(self, direction: int, data: bytes, /) -> bool: ...
    def close(self, flush: bool, /) -> None: ...
    def watch(self, direction: int, on: bool, /) -> None: ...
