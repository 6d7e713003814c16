"""Header-only websocket frame tracking, and the few frames ngxws writes itself.

Theory of operation
-------------------
The proxy copies bytes between client and upstream untouched.  To count
frames and payload bytes the way ngx_http_websocket_stat_module does, each
direction of a tunnel gets one :class:`FrameTracker` that is fed every chunk
read from the socket.  The tracker decodes only frame *headers* (RFC 6455
section 5.2: FIN/RSV/opcode byte, mask bit and 7-bit length, optional 16- or
64-bit extended length, optional 4-byte masking key) and then jumps over the
payload without looking at it, so its cost is per frame, not per byte.

Its whole state between chunks is:

* ``skip``: payload bytes of the frame in flight still to come, and that
  frame's first header byte and payload length (reported when it completes);
* ``head``: the first bytes of a header that a chunk cut short (at most 13).

When both are empty the stream is between two frames (``at_boundary``): the
one place the proxy may insert a close frame of its own.

Close frames: the one payload the tracker reads.  The stream's *first*
close frame (opcode 8) is kept -- its status code and reason, unmasked,
at most 125 payload bytes (a control frame's limit; an oversized one is
cut there) -- however its header and payload are split over reads: the
masking key and the bytes still wanted stay in the tracker until the
frame completes.  Then :attr:`~PyFrameTracker.close` has ``(code,
reason)`` (1005 for an empty payload, RFC 6455 7.1.5; -1 for a one-byte
one, which has no code), the tracker adds one to the code's bucket
(:func:`close_code_bucket`) after its opcode counters, and the next
:meth:`~PyFrameTracker.count` returns True so the relay learns, in the
read that completed it, which side sent the first close frame.  Data
frames pay nothing for this: in C the test rides on the opcode test the
per-opcode counters already make, and only a close frame's header, or a
read that carries its payload, does more.

A frame is reported when its last payload byte has passed (a frame with an
empty payload: when its header has), as the module's
``frame_counter_process_message`` returns 1 only at the end of the payload
and its caller then counts the frame, adds its payload length and writes the
log line.  So counts never include a frame still in flight, a frame cut off
by a closed connection is never counted, and log lines of the two directions
follow the order in which frames completed.  Unlike the module, a header may
be split at any byte: the module assumes the extended length arrives in one
read and misparses (or crashes) otherwise.

The tracker observes and never judges: RSV bits, reserved opcodes, unmasked
client frames and oversized control frames are all counted, because failing
the connection is the endpoints' job, not the proxy's.  The single error is a
64-bit length with its top bit set (forbidden by RFC 6455 and not
representable as a signed 64-bit offset): the stream can no longer be
followed, so ``error`` becomes true and the tracker counts nothing more on
that stream.  It never raises into the I/O layer.

Two implementations share this interface: :class:`PyFrameTracker` below is
the reference, and ``ngxws/ws/_speedups.c`` is the same state machine in C
(:data:`CFrameTracker`).  :data:`FrameTracker` is the C one when it was built,
unless the environment sets ``NGXWS_NO_SPEEDUPS=1``.  The tests check both
against each other on randomly split streams.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

__all__ = [
    "CFrameTracker",
    "CLineFormat",
    "CLOSE_CODE_BUCKETS",
    "CLOSE_CODE_FIELDS",
    "CLOSE_NONE",
    "CPoller",
    "c_dial",
    "CRelay",
    "CSplice",
    "POLL_READ",
    "POLL_WRITE",
    "CloseCode",
    "DIRECTION_FIELDS",
    "close_code_bucket",
    "OPCLASS",
    "MESSAGE_SIZE_BOUNDS",
    "OPCODE_CLASSES",
    "OPCODE_FIELDS",
    "OpcodeTally",
    "FrameTracker",
    "Opcode",
    "PyFrameTracker",
    "encode_close_frame",
]


class Opcode(enum.IntEnum):
    """RFC 6455 opcodes, for code that writes or names frames.

    :meth:`FrameTracker.feed_frames` returns plain ints, not members: reserved
    opcodes (3-7, 0xB-0xF) pass through the proxy and have no member here.
    """

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """Close codes ngxws sends itself (the ones the module sends, same values)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    TRY_AGAIN_LATER = 1013  # ws_max_connections reached: "Try Again Later"
    CONNECTION_AGED = 4001  # ws_conn_age reached: "Connection is Aged"


# The per-opcode counters :meth:`PyFrameTracker.count` adds to (at
# ``counters[opcodes + i]``), in this order; "other" is every reserved opcode.
OPCODE_CLASSES: tuple[str, ...] = ("text", "binary", "continuation", "close", "ping", "pong", "other")
# opcode -> index in OPCODE_CLASSES (the C one has the same table, OPCLASS)
OPCLASS: tuple[int, ...] = (2, 0, 1, 6, 6, 6, 6, 6, 3, 4, 5, 6, 6, 6, 6, 6)

# After them, at ``counters[opcodes + 7 + i]``: data messages (text or binary
# frame, then continuations up to FIN) whose payload was at most
# MESSAGE_SIZE_BOUNDS[i] bytes, per bucket (not cumulative); the 6th: larger.
MESSAGE_SIZE_BOUNDS: tuple[int, ...] = (64, 1024, 16384, 262144, 1048576)
OPCODE_FIELDS = len(OPCODE_CLASSES) + len(MESSAGE_SIZE_BOUNDS) + 1  # 13 counters

# After them, at ``counters[opcodes + OPCODE_FIELDS + i]``: streams whose first
# close frame had a code in bucket i (close_code_bucket): every code of the
# registered range 1000-1015 on its own (an empty close counts as 1005), then
# 3000-3999 (registered with IANA), 4000-4999 (private use), everything else
# (0-999, 1016-2999, 5000+, a one-byte payload), and -- added by the tunnel
# when it ends, never by the tracker -- "none": no close frame came that way.
CLOSE_CODE_BUCKETS: tuple[str, ...] = (
    *(str(code) for code in range(1000, 1016)),
    "3000-3999",
    "4000-4999",
    "other",
    "none",
)
CLOSE_CODE_FIELDS = len(CLOSE_CODE_BUCKETS)  # 20
CLOSE_NONE = CLOSE_CODE_FIELDS - 1
DIRECTION_FIELDS = OPCODE_FIELDS + CLOSE_CODE_FIELDS  # a tracker's block: 33 counters
CLOSE_KEEP = 125  # close payload bytes kept: a control frame's limit (RFC 6455 5.5)
_CL_NONE, _CL_TAKING, _CL_SEEN = 0, 1, 2


def close_code_bucket(code: int) -> int:
    """The index in CLOSE_CODE_BUCKETS of a close frame's ``code`` (-1: no code)."""
    if 1000 <= code <= 1015:
        return code - 1000
    if 3000 <= code <= 3999:
        return 16
    if 4000 <= code <= 4999:
        return 17
    return 18

# Nothing completed in this chunk: the common answer while a large payload
# streams through, so it is one shared tuple rather than a new one per read.
_NOTHING: tuple[int, int] = (0, 0)


class PyFrameTracker:
    """Follows one direction of a websocket byte stream, reading frame headers only.

    Pure-Python reference implementation; ``_speedups.FrameTracker`` must
    behave identically.  ``feed`` is written for speed (locals, index
    arithmetic, no per-frame objects) because it is also the fallback when the
    C extension is not built.
    """

    __slots__ = (
        "_cl_buf",
        "_cl_key",
        "_cl_len",
        "_cl_new",
        "_cl_state",
        "_codes_at",
        "_counters",
        "_error",
        "_head",
        "_index",
        "_ops",
        "_pending_b0",
        "_pending_len",
        "_reads",
        "_skip",
    )

    def __init__(self, counters: memoryview | None = None, index: int = 0, opcodes: int = -1) -> None:
        """``counters`` (a writable array of signed 64-bit ints, e.g. this
        worker's shared slot) and ``index``: where :meth:`count` adds frames,
        payload and bytes (``counters[index:index + 3]``); ``opcodes`` (if
        not negative): where it adds completed frames per opcode class
        (``counters[opcodes + OPCODE_CLASSES.index(name)]``) and, after
        them, completed data messages per size bucket (MESSAGE_SIZE_BOUNDS)
        and the first close frame's code bucket (CLOSE_CODE_BUCKETS)."""
        if counters is not None:
            if counters.itemsize != 8 or counters.readonly:
                raise TypeError("counters must be a writable array of signed 64-bit ints")
            if index < 0 or len(counters) < index + 3:
                raise IndexError("counters[index:index+3] out of range")
            if opcodes >= 0 and len(counters) < opcodes + DIRECTION_FIELDS:
                raise IndexError("counters[opcodes:opcodes+33] out of range")
        self._counters = counters
        self._index = index
        self._ops = OpcodeTally(counters, opcodes) if counters is not None and opcodes >= 0 else None
        # the close-code buckets (whatever method scans: a close is rare)
        self._codes_at = opcodes + OPCODE_FIELDS if counters is not None and opcodes >= 0 else -1
        self._cl_state = _CL_NONE  # the stream's first close frame: none, in flight, seen
        self._cl_new = False  # it completed since count() last returned
        self._cl_key: bytes | None = None  # its masking key
        self._cl_len = 0  # its payload length
        self._cl_buf = bytearray()  # its payload so far, unmasked (at most CLOSE_KEEP)
        self._reads = 0  # chunks fed: the tunnel's idle check compares it, no clock per read
        self._skip = 0  # payload bytes of the frame in flight not yet seen
        self._pending_len = 0  # that frame's payload length, reported when skip reaches 0
        self._pending_b0 = 0  # and its FIN/opcode byte (for feed_frames)
        self._head = b""  # start of a header cut by the end of the last chunk
        self._error = False

    @property
    def error(self) -> bool:
        """True once the stream cannot be followed; then ``feed*()`` return nothing."""
        return self._error

    @property
    def reads(self) -> int:
        """How many chunks were fed (``feed``, ``feed_frames`` or ``count``) so far."""
        return self._reads

    @property
    def close(self) -> tuple[int, bytes] | None:
        """``(code, reason)`` of the stream's first close frame once it
        completed (1005 for an empty payload, -1 for a one-byte one; the
        reason as sent, cut at 123 bytes), else None."""
        if self._cl_state != _CL_SEEN:
            return None
        buf = self._cl_buf
        if self._cl_len == 0:
            return 1005, b""
        if self._cl_len == 1:
            return -1, b""
        return (buf[0] << 8) | buf[1], bytes(buf[2:])

    def count(self, data: bytes | bytearray | memoryview) -> bool:
        """Scan one chunk like :meth:`feed` and add ``(frames, payload,
        len(data))`` to ``counters[index:index + 3]``; return True when the
        relay must look: :attr:`error`, or the stream's first close frame
        completed since the last ``count`` (:attr:`close`).

        The relay's one call per read (in C: no result tuple, no Python
        arithmetic); here the reference for what the C one must do.
        """
        c = self._counters
        if self._ops is not None:
            # The reference (and the fallback) takes the per-frame path only
            # when asked for opcodes; C counts them inside its one scan.
            seen = self.feed_frames(data)
            self._ops.add(seen)
            frames, payload = len(seen), sum(f[1] for f in seen)
        else:
            frames, payload = self.feed(data)
        if c is not None:
            i = self._index
            c[i] += frames
            c[i + 1] += payload
            c[i + 2] += len(data)
        if self._cl_new:  # rare: the first close frame completed
            self._cl_new = False
            return True
        return self._error

    @property
    def at_boundary(self) -> bool:
        """True when the bytes fed so far end exactly between two frames.

        That is where the proxy may insert a frame of its own (a close) without
        cutting one of the peer's frames.  False after ``error``: frame
        boundaries are no longer known.
        """
        return not (self._skip or self._head or self._error)

    def feed(self, data: bytes | bytearray | memoryview) -> tuple[int, int]:
        """Scan one chunk; return ``(frames, payload)`` for frames completed in it.

        ``frames`` is how many frames had their last byte in this chunk and
        ``payload`` the sum of their payload lengths.
        """
        self._reads += 1
        if self._error:
            return _NOTHING
        n = len(data)
        pos = self._skip
        frames = 0
        total = 0
        if pos:
            if self._cl_state == _CL_TAKING:  # the close frame in flight
                self._close_take(data, 0, pos)
            if pos > n:
                self._skip = pos - n
                return _NOTHING
            self._skip = 0
            frames = 1
            total = self._pending_len
            if self._cl_state == _CL_TAKING:
                self._close_end()
        elif self._head:
            b0 = self._head[0]
            hdr, length = self._finish_head(data)
            if hdr <= 0:
                return _NOTHING
            pos = hdr + length
            if self._cl_state == _CL_TAKING:
                self._close_take(data, hdr, pos)
            if pos > n:
                self._hold(b0, length, pos - n)
                return _NOTHING
            frames = 1
            total = length
            if self._cl_state == _CL_TAKING:
                self._close_end()
        # Hot loop, kept in one piece: _finish_head and feed_frames hold the
        # same header arithmetic, each tested against this one.
        while pos < n:
            if pos + 2 > n:
                self._head = bytes(data[pos:])
                break
            b1 = data[pos + 1]
            length = b1 & 0x7F
            hdr = pos + 6 if b1 & 0x80 else pos + 2
            if length < 126:
                if hdr > n:
                    self._head = bytes(data[pos:])
                    break
            elif length == 126:
                hdr += 2
                if hdr > n:
                    self._head = bytes(data[pos:])
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            else:
                hdr += 8
                if hdr > n:
                    self._head = bytes(data[pos:])
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                if length >> 63:
                    self._error = True
                    break
            end = hdr + length
            if end > n:
                if data[pos] & 0x0F == 8 and self._cl_state == _CL_NONE:
                    self._close_begin(data, pos, hdr, length)
                    self._close_take(data, hdr, n)
                self._hold(data[pos], length, end - n)
                break
            if data[pos] & 0x0F == 8:
                self._close_whole(data, pos, hdr, length)
            frames += 1
            total += length
            pos = end
        return (frames, total) if frames else _NOTHING

    def feed_frames(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, bool]]:
        """Scan one chunk like :meth:`feed`; return ``(opcode, payload_length, fin)`` per frame.

        One tuple per frame completed in this chunk, in stream order.  Used
        only for per-frame logging, so it may allocate per frame.
        """
        out: list[tuple[int, int, bool]] = []
        self._reads += 1
        if self._error:
            return out
        n = len(data)
        pos = self._skip
        if pos:
            if self._cl_state == _CL_TAKING:
                self._close_take(data, 0, pos)
            if pos > n:
                self._skip = pos - n
                return out
            self._skip = 0
            b0 = self._pending_b0
            out.append((b0 & 0x0F, self._pending_len, bool(b0 & 0x80)))
            if self._cl_state == _CL_TAKING:
                self._close_end()
        elif self._head:
            b0 = self._head[0]
            hdr, length = self._finish_head(data)
            if hdr <= 0:
                return out
            pos = hdr + length
            if self._cl_state == _CL_TAKING:
                self._close_take(data, hdr, pos)
            if pos > n:
                self._hold(b0, length, pos - n)
                return out
            out.append((b0 & 0x0F, length, bool(b0 & 0x80)))
            if self._cl_state == _CL_TAKING:
                self._close_end()
        while pos < n:
            hdr, length = _parse_header(data, pos, n)
            if hdr == 0:
                self._head = bytes(data[pos:])
                return out
            if hdr < 0:
                self._error = True
                return out
            b0 = data[pos]
            end = hdr + length
            if end > n:
                if b0 & 0x0F == 8 and self._cl_state == _CL_NONE:
                    self._close_begin(data, pos, hdr, length)
                    self._close_take(data, hdr, n)
                self._hold(b0, length, end - n)
                return out
            if b0 & 0x0F == 8:
                self._close_whole(data, pos, hdr, length)
            out.append((b0 & 0x0F, length, bool(b0 & 0x80)))
            pos = end
        return out

    def _hold(self, b0: int, length: int, missing: int) -> None:
        """A frame whose header has passed but whose last ``missing`` payload bytes have not."""
        self._skip = missing
        self._pending_len = length
        self._pending_b0 = b0

    def _finish_head(self, data: bytes | bytearray | memoryview) -> tuple[int, int]:
        """Complete the header kept from the last chunk with the start of ``data``.

        Returns ``(end, length)`` where ``end`` is the offset in ``data`` just
        past the header; ``(0, 0)`` if ``data`` still does not complete it (the
        bytes are kept), ``(-1, 0)`` on the unfollowable length (``error`` set).
        """
        kept = self._head
        buf = kept + bytes(data[: 14 - len(kept)])
        hdr, length = _parse_header(buf, 0, len(buf))
        if hdr == 0:
            self._head = buf
            return 0, 0
        self._head = b""
        if hdr < 0:
            self._error = True
            return -1, 0
        if buf[0] & 0x0F == 8 and self._cl_state == _CL_NONE:
            self._close_begin(buf, 0, hdr, length)  # the caller takes its payload
        return hdr - len(kept), length

    # -- the first close frame (rare: off the hot loops' common path) ----------

    def _close_begin(self, data: bytes | bytearray | memoryview, pos: int, hdr: int, length: int) -> None:
        """The header at ``data[pos:hdr]`` starts the stream's first close frame."""
        self._cl_key = bytes(data[hdr - 4 : hdr]) if data[pos + 1] & 0x80 else None
        self._cl_len = length
        self._cl_buf = bytearray()
        self._cl_state = _CL_TAKING

    def _close_take(self, data: bytes | bytearray | memoryview, start: int, stop: int) -> None:
        """``data[start:stop]`` (clipped to ``data``) is its payload's next part."""
        have = len(self._cl_buf)
        piece = bytes(data[start : min(stop, start + min(self._cl_len, CLOSE_KEEP) - have)])
        key = self._cl_key
        if key is not None:
            piece = bytes(b ^ key[(have + i) & 3] for i, b in enumerate(piece))
        self._cl_buf += piece

    def _close_end(self) -> None:
        self._cl_state = _CL_SEEN
        self._cl_new = True
        if self._codes_at >= 0:
            assert self._counters is not None
            code = self.close
            self._counters[self._codes_at + close_code_bucket(code[0] if code else -1)] += 1

    def _close_whole(self, data: bytes | bytearray | memoryview, pos: int, hdr: int, length: int) -> None:
        """A close frame complete in ``data``: kept if it is the stream's first."""
        if self._cl_state == _CL_NONE:
            self._close_begin(data, pos, hdr, length)
            self._close_take(data, hdr, hdr + length)
            self._close_end()


class OpcodeTally:
    """Per-opcode frames and message sizes at ``counters[index:index + OPCODE_FIELDS]``
    for frames from ``feed_frames`` (what the C ``count`` does inside its scan)."""

    __slots__ = ("counters", "index", "msg")

    def __init__(self, counters: memoryview, index: int) -> None:
        self.counters = counters
        self.index = index
        self.msg = 0  # payload so far of the data message in flight

    def add(self, frames: list[tuple[int, int, bool]]) -> None:
        c, i = self.counters, self.index
        for opcode, length, fin in frames:
            c[i + OPCLASS[opcode]] += 1
            if opcode <= 2:  # data: text/binary start a message, continuations add
                size = length if opcode else self.msg + length
                if fin:
                    self.msg = 0
                    c[i + 7 + _size_bucket(size)] += 1
                else:
                    self.msg = size


def _size_bucket(size: int) -> int:
    for i, bound in enumerate(MESSAGE_SIZE_BOUNDS):
        if size <= bound:
            return i
    return len(MESSAGE_SIZE_BOUNDS)


def _parse_header(data: bytes | bytearray | memoryview, pos: int, n: int) -> tuple[int, int]:
    """Decode the header starting at ``data[pos]``, looking no further than ``data[n]``.

    Returns ``(end, length)``: ``end`` is the offset just past the header
    (masking key included).  ``(0, 0)`` means the header is incomplete,
    ``(-1, 0)`` a 64-bit length with the top bit set.
    """
    if pos + 2 > n:
        return 0, 0
    b1 = data[pos + 1]
    length = b1 & 0x7F
    hdr = pos + 6 if b1 & 0x80 else pos + 2
    if length == 126:
        hdr += 2
        if hdr > n:
            return 0, 0
        length = (data[pos + 2] << 8) | data[pos + 3]
    elif length == 127:
        hdr += 8
        if hdr > n:
            return 0, 0
        length = int.from_bytes(data[pos + 2 : pos + 10], "big")
        if length >> 63:
            return -1, 0
    elif hdr > n:
        return 0, 0
    return hdr, length


def encode_close_frame(code: int, reason: str) -> bytes:
    """Build a server-to-client close frame: FIN, opcode 8, unmasked, code + UTF-8 reason.

    Used where ngxws speaks for itself (``ws_max_connections``,
    ``ws_conn_age``), as the module does.  Servers must not mask (RFC 6455
    5.1); a control frame carries at most 125 payload bytes (5.5), so the
    reason is limited to 123 UTF-8 bytes.
    """
    if not 1000 <= code <= 4999:
        raise ValueError(f"close code out of range: {code}")
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > 125:
        raise ValueError(f"close reason too long: {len(payload) - 2} bytes > 123")
    return bytes((0x80 | Opcode.CLOSE, len(payload))) + payload


def _speedups_disabled() -> bool:
    """``NGXWS_NO_SPEEDUPS`` set to anything but empty or ``0`` forces pure Python."""
    return os.environ.get("NGXWS_NO_SPEEDUPS", "") not in ("", "0")


CFrameTracker: type[_speedups.FrameTracker] | None
"""The C tracker from ``_speedups.c``, or None when the extension is not built."""
try:
    from ngxws.ws import _speedups
except ImportError:  # optional: setup.py builds it when a compiler is there
    CFrameTracker = None
else:
    CFrameTracker = _speedups.FrameTracker

CRelay: type[_speedups.Relay] | None
"""The unlogged relay's read handler in C (``tunnel._Side._read_unlogged``
without a Python frame), or None when the extension is not built or is
switched off (the relay then runs that method)."""
CRelay = None if CFrameTracker is None or _speedups_disabled() else _speedups.Relay

CSplice: type[_speedups.Splice] | None
"""Both directions of an unlogged plain tunnel in C (``ngxws.proxy.splice``),
or None when the extension is not built or is switched off."""
CSplice = None if CRelay is None else _speedups.Splice

CLineFormat: type[_speedups.LineFormat] | None
"""A logged side's ws_log line in C (``FrameTracker.log``, ``_loglines.c``),
or None when the extension is not built or is switched off (the side then
renders with ``wslog.FrameLogger.lines_for_frames``, the reference)."""
CLineFormat = None if CRelay is None else _speedups.LineFormat

CPoller: type[_speedups.Poller] | None
"""This worker's own epoll set for the sockets without a transport
(``ngxws.proxy.splice``); there whenever ``CSplice`` is."""
CPoller = None if CSplice is None else _speedups.Poller
c_dial: Callable[[int, str, int], tuple[int, int]] | None
"""An upgrade's upstream connect in one call (``_dial.c``, ngxws.proxy.dial);
there whenever ``CSplice`` is (a Dial is made only for a tunnel relayed in C)."""
c_dial = None if CSplice is None else _speedups.dial
POLL_READ, POLL_WRITE = 1, 2  # _poller.c POLL_*

if TYPE_CHECKING:
    # For annotations (``tracker: FrameTracker``); the C type has the same interface.
    FrameTracker = PyFrameTracker
else:
    FrameTracker = (
        CFrameTracker if CFrameTracker is not None and not _speedups_disabled() else PyFrameTracker
    )
