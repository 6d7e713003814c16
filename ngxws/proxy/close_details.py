"""Per-tunnel totals and the close frame of each direction, for close lines.

Only a tunnel whose close template uses ``$ws_close_code``,
``$ws_close_reason`` or the per-direction ``$ws_frames_*``/``$ws_payload_*``
pays for this: ``Tally`` then stands in for the side's frame tracker (same
interface: ``count``, ``feed``, ``feed_frames``, ``error``, ``at_boundary``), adds the
frames of each read to the tunnel's own totals and, when a read ends with
a close frame, reads its status code and reason.  Every other tunnel keeps
the bare tracker, so the relay's per-read work is unchanged for them.

A close frame is recognised when it is the last frame completed by a read
that ends on a frame boundary -- how peers send it (a close is the last
frame of a stream, and at most 131 bytes).  A close frame whose bytes were
split over two reads is not read (its code prints ``???``); it is still
counted.
"""

from __future__ import annotations

from typing import Protocol

from ngxws.ws.frames import OpcodeTally

OPCODE_CLOSE = 8


class Tracker(Protocol):
    @property
    def error(self) -> bool: ...
    @property
    def at_boundary(self) -> bool: ...
    def feed(self, data: bytes | bytearray | memoryview, /) -> tuple[int, int]: ...
    def feed_frames(self, data: bytes | bytearray | memoryview, /) -> list[tuple[int, int, bool]]: ...


def parse_close(frame: bytes, payload_length: int, masked: bool) -> tuple[int, str] | None:
    """(code, reason) of the close frame at the end of ``frame``; None
    when its bytes are not all there.  An empty close is 1005 (RFC 6455
    7.1.5: no status code was present)."""
    if payload_length == 0:
        return 1005, ""
    if payload_length < 2 or len(frame) < payload_length + (4 if masked else 0):
        return None
    payload = frame[len(frame) - payload_length :]
    if masked:
        key = frame[len(frame) - payload_length - 4 : len(frame) - payload_length]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    code = int.from_bytes(payload[:2], "big")
    return code, payload[2:].decode("utf-8", "surrogateescape")


class Tally:
    """One direction's frame tracker, counting for this tunnel alone."""

    __slots__ = ("close", "counters", "frames", "index", "masked", "opcodes", "payload", "tracker")

    def __init__(self, tracker: Tracker, masked: bool, counters: memoryview, index: int, opcodes: int) -> None:
        self.tracker = tracker
        self.masked = masked  # client frames carry a mask
        # the shared slot FrameTracker.count() adds to: frames, payload, bytes
        self.counters = counters
        self.index = index
        self.opcodes = OpcodeTally(counters, opcodes)  # and its per-opcode / message-size counters
        self.frames = 0
        self.payload = 0
        self.close: tuple[int, str] | None = None

    @property
    def error(self) -> bool:
        return self.tracker.error

    @property
    def at_boundary(self) -> bool:
        return self.tracker.at_boundary

    def feed(self, data: bytes | bytearray | memoryview) -> tuple[int, int]:
        frames = self.feed_frames(data)
        return len(frames), sum(f[1] for f in frames)

    def count(self, data: bytes | bytearray | memoryview) -> bool:
        """``FrameTracker.count``: the shared slot's additions, tallied here too."""
        seen = self.feed_frames(data)
        frames, payload = len(seen), sum(f[1] for f in seen)
        c, i = self.counters, self.index
        self.opcodes.add(seen)
        c[i] += frames
        c[i + 1] += payload
        c[i + 2] += len(data)
        return self.tracker.error

    def feed_frames(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, bool]]:
        frames = self.tracker.feed_frames(data)
        if frames:
            self.frames += len(frames)
            for f in frames:
                self.payload += f[1]
            last = frames[-1]
            if last[0] == OPCODE_CLOSE and self.close is None and self.tracker.at_boundary:
                self.close = parse_close(bytes(data[-(last[1] + 14) :]), last[1], self.masked)
        return frames
