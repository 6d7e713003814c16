"""Per-tunnel totals and the close frames, for close lines.

The close frame of each direction is the frame tracker's own (its
``close``: the stream's first close frame, read however its bytes were
split), for every tunnel; ``close_text`` turns it into the close line's
``$ws_close_code``/``$ws_close_reason``.

Only a tunnel whose close template uses the per-direction
``$ws_frames_*``/``$ws_payload_*`` pays for its own totals: ``Tally`` then
stands in for the side's frame tracker (same interface: ``count``, ``feed``,
``feed_frames``, ``log``, ``error``, ``at_boundary``, ``close``, ``reads``) and adds
the frames of each read to the tunnel's own totals.  Every other tunnel
keeps the bare tracker, so the relay's per-read work is unchanged for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from ngxws.ws.frames import OpcodeTally

if TYPE_CHECKING:
    from ngxws.ws._speedups import FrameTracker as CFrameTracker
    from ngxws.ws._speedups import LineFormat


class Tracker(Protocol):
    @property
    def error(self) -> bool: ...
    @property
    def at_boundary(self) -> bool: ...
    @property
    def close(self) -> tuple[int, bytes] | None: ...
    @property
    def reads(self) -> int: ...
    def count(self, data: bytes | bytearray | memoryview, /) -> bool: ...
    def feed(self, data: bytes | bytearray | memoryview, /) -> tuple[int, int]: ...
    def feed_frames(self, data: bytes | bytearray | memoryview, /) -> list[tuple[int, int, bool]]: ...


def close_text(close: tuple[int, bytes] | None) -> tuple[int, str] | None:
    """A tracker's ``close`` as the close line prints it: None (``???``)
    without one or for a one-byte payload (no code); the reason decoded
    as UTF-8, undecodable bytes kept (``surrogateescape``)."""
    if close is None or close[0] < 0:
        return None
    return close[0], close[1].decode("utf-8", "surrogateescape")


class Tally:
    """One direction's frame tracker, counting for this tunnel alone."""

    __slots__ = ("counters", "frames", "index", "opcodes", "payload", "seen_close", "tracker")

    def __init__(self, tracker: Tracker, counters: memoryview, index: int, opcodes: int) -> None:
        self.tracker = tracker
        # the shared slot FrameTracker.count() adds to: frames, payload, bytes
        self.counters = counters
        self.index = index
        self.opcodes = OpcodeTally(counters, opcodes)  # and its per-opcode / message-size counters
        self.frames = 0
        self.payload = 0
        self.seen_close = False  # count() has reported the first close frame

    @property
    def error(self) -> bool:
        return self.tracker.error

    @property
    def at_boundary(self) -> bool:
        return self.tracker.at_boundary

    @property
    def close(self) -> tuple[int, bytes] | None:
        return self.tracker.close

    @property
    def reads(self) -> int:
        return self.tracker.reads

    def feed(self, data: bytes | bytearray | memoryview) -> tuple[int, int]:
        frames = self.feed_frames(data)
        return len(frames), sum(f[1] for f in frames)

    def count(self, data: bytes | bytearray | memoryview) -> bool:
        """``FrameTracker.count``: the shared slot's additions, tallied here
        too; True when the relay must look (error, the first close frame)."""
        seen = self.feed_frames(data)
        frames, payload = len(seen), sum(f[1] for f in seen)
        c, i = self.counters, self.index
        self.opcodes.add(seen)
        c[i] += frames
        c[i + 1] += payload
        c[i + 2] += len(data)
        if not self.seen_close and self.tracker.close is not None:
            self.seen_close = True
            return True
        return self.tracker.error

    def log(
        self, data: bytes | bytearray | memoryview, fmt: LineFormat | None, now: float
    ) -> tuple[bytes, int, int]:
        """``FrameTracker.log`` (the C tracker's: it adds to the shared slot
        itself), tallied here too."""
        lines, frames, payload = cast("CFrameTracker", self.tracker).log(data, fmt, now)
        self.frames += frames
        self.payload += payload
        return lines, frames, payload

    def feed_frames(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, bool]]:
        frames = self.tracker.feed_frames(data)
        if frames:
            self.frames += len(frames)
            for f in frames:
                self.payload += f[1]
        return frames
