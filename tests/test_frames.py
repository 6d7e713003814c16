"""Tests for the header-only frame tracker (``ngxws.ws.frames``).

Three layers:

* byte-exact vectors (RFC 6455 section 5.7 examples and the odd cases the
  tracker must pass through without judging), fed whole and split;
* hypothesis: random frame streams cut at random points must give, chunk by
  chunk, exactly what a model of "count a frame when its last byte has
  passed" (the module's frame_counter_process_message) predicts, for both
  implementations; after every prefix the running totals are the frames
  complete in it; and the C tracker must agree with the Python one on
  arbitrary bytes, chunk by chunk;
* frames serialized by the ``websockets`` library, as a second opinion on the
  wire format.

The C comparison needs the extension built in place
(``python setup.py build_ext --inplace``); without it those tests skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame
from websockets.frames import Opcode as WsOpcode

from ngxws.ws.frames import (
    MESSAGE_SIZE_BOUNDS,
    OPCODE_CLASSES,
    CFrameTracker,
    CloseCode,
    Opcode,
    PyFrameTracker,
    encode_close_frame,
)

Tracker = Callable[[], PyFrameTracker]
FrameInfo = tuple[int, int, bool]

REPO = Path(__file__).resolve().parent.parent
NO_C = pytest.mark.skipif(
    CFrameTracker is None, reason="C extension not built (python setup.py build_ext --inplace)"
)
IMPLS = [
    pytest.param(PyFrameTracker, id="py"),
    pytest.param(CFrameTracker, id="c", marks=NO_C),
]
SETTINGS = settings(max_examples=200, deadline=None)
MASK_KEY = b"\x37\xfa\x21\x3d"


# --- building frames ----------------------------------------------------------


def header(
    b0: int, length: int, *, mask: bool = False, width: int | None = None, key: bytes = MASK_KEY
) -> bytes:
    """A frame header; ``width`` forces the length encoding (7, 16 or 64 bits).

    Non-minimal encodings are legal input for the tracker (it does not judge),
    so tests may force them.
    """
    if width is None:
        width = 7 if length < 126 else 16 if length < 65536 else 64
    m = 0x80 if mask else 0
    if width == 7:
        head = bytes((b0, m | length))
    elif width == 16:
        head = bytes((b0, m | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((b0, m | 127)) + length.to_bytes(8, "big")
    return head + (key if mask else b"")


def frame(b0: int, payload: bytes, *, mask: bool = False, width: int | None = None) -> bytes:
    """Header plus payload (left as is: the tracker never reads it, masked or not)."""
    return header(b0, len(payload), mask=mask, width=width) + payload


def hello(opcode: int = 1, fin: bool = True) -> bytes:
    return frame((0x80 if fin else 0) | opcode, b"Hello")


BAD_LENGTH = bytes((0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0))  # 64-bit length, top bit set


# --- feeding helpers -----------------------------------------------------------


def feed_chunks(tracker: PyFrameTracker, chunks: Sequence[bytes]) -> list[tuple[int, int]]:
    return [tracker.feed(c) for c in chunks]


def feed_frames_chunks(tracker: PyFrameTracker, chunks: Sequence[bytes]) -> list[list[FrameInfo]]:
    return [tracker.feed_frames(c) for c in chunks]


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, repeats make empty chunks)."""
    bounds = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def totals(results: Sequence[tuple[int, int]]) -> tuple[int, int]:
    return sum(r[0] for r in results), sum(r[1] for r in results)


# --- byte-exact vectors ------------------------------------------------------------


@dataclass(frozen=True)
class Vector:
    name: str
    data: bytes
    frames: list[FrameInfo]
    error: bool = False


VECTORS = [
    # RFC 6455 section 5.7, verbatim.
    Vector("rfc single unmasked text", bytes.fromhex("810548656c6c6f"), [(1, 5, True)]),
    Vector("rfc single masked text", bytes.fromhex("818537fa213d7f9f4d5158"), [(1, 5, True)]),
    Vector(
        "rfc fragmented unmasked text",
        bytes.fromhex("010348656c") + bytes.fromhex("80026c6f"),
        [(1, 3, False), (0, 2, True)],
    ),
    Vector("rfc unmasked ping", bytes.fromhex("890548656c6c6f"), [(9, 5, True)]),
    Vector("rfc masked pong", bytes.fromhex("8a8537fa213d7f9f4d5158"), [(10, 5, True)]),
    Vector(
        "rfc 256 bytes binary, 16-bit length",
        bytes.fromhex("827e0100") + bytes(256),
        [(2, 256, True)],
    ),
    Vector(
        "rfc 64KiB binary, 64-bit length",
        bytes.fromhex("827f0000000000010000") + bytes(65536),
        [(2, 65536, True)],
    ),
    # Lengths at the encoding boundaries, masked and not.
    Vector("125, 7-bit", frame(0x82, bytes(125)), [(2, 125, True)]),
    Vector("126, 16-bit masked", frame(0x82, bytes(126), mask=True), [(2, 126, True)]),
    Vector("65535, 16-bit", frame(0x82, bytes(65535)), [(2, 65535, True)]),
    Vector("65536, 64-bit masked", frame(0x82, bytes(65536), mask=True), [(2, 65536, True)]),
    Vector("zero payload", bytes((0x81, 0x00)), [(1, 0, True)]),
    Vector("zero payload masked", bytes((0x81, 0x80)) + MASK_KEY, [(1, 0, True)]),
    Vector(
        "zero payloads back to back",
        bytes((0x89, 0x00, 0x8A, 0x80)) + MASK_KEY + bytes((0x80, 0x00)),
        [(9, 0, True), (10, 0, True), (0, 0, True)],
    ),
    Vector(
        "close with code and reason",
        bytes.fromhex("881103f5") + b"Try Again Later",
        [(8, 17, True)],
    ),
    # Observed, never judged.
    Vector("rsv bits set", frame(0xF1, b"abc"), [(1, 3, True)]),
    Vector(
        "reserved opcodes",
        frame(0x83, b"") + frame(0x07, b"x") + frame(0x8B, b"yz") + frame(0x0F, b""),
        [(3, 0, True), (7, 1, False), (11, 2, True), (15, 0, False)],
    ),
    Vector("control frame over 125", frame(0x89, bytes(200)), [(9, 200, True)]),
    Vector("fragmented control frame", frame(0x08, b"\x03\xe8"), [(8, 2, False)]),
    Vector("non-minimal 16-bit length", frame(0x82, b"abcde", width=16), [(2, 5, True)]),
    Vector(
        "non-minimal 64-bit length masked",
        frame(0x82, b"abcde", mask=True, width=64),
        [(2, 5, True)],
    ),
    # Headers alone: the frames are in flight, not counted (yet).
    Vector("largest legal 64-bit length", header(0x82, 2**63 - 1), []),
    Vector("length above 32 bits", header(0x82, 2**32 + 7, mask=True), []),
    # The one error: frames before it in the same chunk still count, none after.
    Vector("top-bit 64-bit length", BAD_LENGTH, [], error=True),
    Vector(
        "top-bit length after frames",
        hello() + frame(0x82, bytes(300)) + BAD_LENGTH + hello(),
        [(1, 5, True), (2, 300, True)],
        error=True,
    ),
    Vector(
        "top-bit length, masked",
        hello() + bytes((0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)) + MASK_KEY,
        [(1, 5, True)],
        error=True,
    ),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("vec", VECTORS, ids=[v.name for v in VECTORS])
class TestVectors:
    def test_whole(self, impl: Tracker, vec: Vector) -> None:
        t = impl()
        assert t.feed(vec.data) == (len(vec.frames), sum(f[1] for f in vec.frames))
        assert t.error is vec.error
        t = impl()
        assert t.feed_frames(vec.data) == vec.frames
        assert t.error is vec.error

    def test_byte_by_byte(self, impl: Tracker, vec: Vector) -> None:
        data = vec.data[:2000]  # past every vector's last header; the rest in one piece
        t = impl()
        got = [info for i in range(len(data)) for info in t.feed_frames(data[i : i + 1])]
        got += t.feed_frames(vec.data[2000:])
        assert got == vec.frames
        assert t.error is vec.error

    def test_every_split(self, impl: Tracker, vec: Vector) -> None:
        points = range(min(len(vec.data), 300) + 1)
        whole = (len(vec.frames), sum(f[1] for f in vec.frames))
        for point in points:
            t = impl()
            assert totals(feed_chunks(t, cut(vec.data, [point]))) == whole, point
            assert t.error is vec.error
            t = impl()
            got = [i for part in feed_frames_chunks(t, cut(vec.data, [point])) for i in part]
            assert got == vec.frames, point


@pytest.mark.parametrize("impl", IMPLS)
class TestTracker:
    def test_accepts_bytes_like(self, impl: Tracker) -> None:
        data = hello() + frame(0x82, bytes(300), mask=True)
        for chunk in (data, bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
            assert impl().feed(chunk) == (2, 305)
            assert impl().feed_frames(chunk) == [(1, 5, True), (2, 300, True)]

    def test_counted_when_payload_completes(self, impl: Tracker) -> None:
        """Counted at its last payload byte, as the module does; not at the header."""
        t = impl()
        data = frame(0x82, bytes(1000), mask=True)
        assert t.feed(data[:8]) == (0, 0)
        assert t.feed(data[8:500]) == (0, 0)
        assert t.feed(data[500:-1]) == (0, 0)
        assert t.feed(data[-1:] + hello()) == (2, 1005)
        t = impl()
        assert t.feed_frames(data[:8]) == []
        assert t.feed_frames(data[8:] + hello()[:3]) == [(2, 1000, True)]
        assert t.feed_frames(hello()[3:]) == [(1, 5, True)]

    def test_header_ending_a_chunk(self, impl: Tracker) -> None:
        """A header at the end of a read: an empty payload completes the frame, else not."""
        t = impl()
        assert t.feed(bytes((0x89, 0x80)) + MASK_KEY) == (1, 0)
        assert t.feed(bytes((0x81, 0x85)) + MASK_KEY) == (0, 0)
        assert not t.at_boundary
        assert t.feed_frames(b"Hello") == [(1, 5, True)]
        assert t.at_boundary

    def test_length_above_32_bits_completes(self, impl: Tracker) -> None:
        """The payload still to come is 64-bit: 4 GiB + 7 bytes later the frame counts."""
        t = impl()
        assert t.feed(header(0x82, 2**32 + 7, mask=True)) == (0, 0)
        block = memoryview(bytes(1 << 26))
        for _ in range(64):  # 2**32 bytes, each read skipped whole
            assert t.feed(block) == (0, 0)
        assert t.feed_frames(bytes(7) + hello()) == [(2, 2**32 + 7, True), (1, 5, True)]
        assert t.at_boundary

    def test_cut_off_frame_never_counted(self, impl: Tracker) -> None:
        t = impl()
        data = hello() + frame(0x82, bytes(300))
        assert t.feed(data[:-1]) == (1, 5)  # the connection closes here

    def test_long_skip_across_many_chunks(self, impl: Tracker) -> None:
        t = impl()
        assert t.feed(header(0x82, 70000, width=64)) == (0, 0)
        for _ in range(69):
            assert t.feed(bytes(1000)) == (0, 0)
        assert t.feed_frames(bytes(1000) + hello(9)) == [(2, 70000, True), (9, 5, True)]

    def test_empty_chunks(self, impl: Tracker) -> None:
        t = impl()
        assert t.feed(b"") == (0, 0)
        assert t.feed(b"\x81") == (0, 0)
        assert t.feed(b"") == (0, 0)
        assert t.feed_frames(b"") == []
        assert t.feed(b"\x05Hello") == (1, 5)

    def test_error_is_sticky(self, impl: Tracker) -> None:
        t = impl()
        assert t.feed(hello() + BAD_LENGTH[:5]) == (1, 5)
        assert not t.error
        assert t.feed(BAD_LENGTH[5:] + hello()) == (0, 0)
        assert t.error
        assert t.feed(hello()) == (0, 0)
        assert t.feed_frames(hello()) == []
        assert t.error

    def test_error_is_read_only(self, impl: Tracker) -> None:
        t = impl()
        with pytest.raises(AttributeError):
            t.error = True  # type: ignore[misc]
        with pytest.raises(AttributeError):
            t.at_boundary = False  # type: ignore[misc]

    def test_at_boundary(self, impl: Tracker) -> None:
        """Where the proxy may slip in its own close frame without cutting a peer's frame."""
        t = impl()
        assert t.at_boundary
        data = frame(0x82, bytes(10), mask=True)
        for chunk, boundary in ((data[:1], False), (data[1:7], False), (data[7:], True)):
            t.feed(chunk)
            assert t.at_boundary is boundary
        t.feed(BAD_LENGTH)
        assert t.error and not t.at_boundary

    def test_feed_and_feed_frames_share_state(self, impl: Tracker) -> None:
        data = frame(0x82, bytes(200), mask=True) + hello() + frame(0x89, b"")
        t = impl()
        assert t.feed(data[:3]) == (0, 0)
        assert t.feed_frames(data[3:9]) == []
        assert t.feed(data[9:212]) == (1, 200)
        assert t.feed_frames(data[212:]) == [(1, 5, True), (9, 0, True)]


# --- hypothesis: random streams, random cuts --------------------------------------------

LENGTHS = st.one_of(
    st.integers(0, 130),
    st.sampled_from([125, 126, 127, 255, 256, 65535, 65536, 65537]),
)


@st.composite
def frame_specs(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """One frame: (bytes, header length, payload length), any opcode/RSV/FIN/mask."""
    b0 = draw(st.integers(0, 255))
    length = draw(LENGTHS)
    mask = draw(st.booleans())
    minimal = 7 if length < 126 else 16 if length < 65536 else 64
    width = draw(st.sampled_from([w for w in (7, 16, 64) if w >= minimal]))
    key = draw(st.binary(min_size=4, max_size=4))
    head = header(b0, length, mask=mask, width=width, key=key)
    return head + b"\xa5" * length, len(head), length


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int], list[tuple[int, FrameInfo]], bool]:
    """A serialized stream, cut points, and per frame (offset of its last byte + 1, info).

    Total size is kept small: at most one frame of 64 KiB or more.
    """
    specs = draw(st.lists(frame_specs(), max_size=8))
    big = [i for i, s in enumerate(specs) if s[2] >= 65535]
    specs = [s for i, s in enumerate(specs) if i not in big[1:]]
    data = b""
    ends: list[tuple[int, FrameInfo]] = []
    for raw, _head_len, length in specs:
        ends.append((len(data) + len(raw), (raw[0] & 0x0F, length, bool(raw[0] & 0x80))))
        data += raw
    error = draw(st.booleans())
    if error:  # an unfollowable header, then a frame that must not count
        data += BAD_LENGTH + draw(st.sampled_from([b"", MASK_KEY])) + hello()
    points = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return data, points, ends, error


def expected_per_chunk(
    ends: Sequence[tuple[int, FrameInfo]], chunks: Sequence[bytes]
) -> list[list[FrameInfo]]:
    """Model: a frame belongs to the chunk holding its last byte (header or payload)."""
    out: list[list[FrameInfo]] = []
    start = 0
    for chunk in chunks:
        stop = start + len(chunk)
        out.append([info for end, info in ends if start < end <= stop])
        start = stop
    return out


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(stream=streams())
def test_random_cuts_match_model(
    impl: Tracker, stream: tuple[bytes, list[int], list[tuple[int, FrameInfo]], bool]
) -> None:
    data, points, ends, error = stream
    chunks = cut(data, points)
    expected = expected_per_chunk(ends, chunks)
    boundaries = {0, *(end for end, _ in ends)}  # where frames start or stop

    t = impl()
    offset = 0
    got: list[list[FrameInfo]] = []
    for chunk in chunks:
        got.append(t.feed_frames(chunk))
        offset += len(chunk)
        assert t.at_boundary is (offset in boundaries and not t.error)
    assert got == expected
    assert t.error is error

    t = impl()
    assert feed_chunks(t, chunks) == [(len(e), sum(f[1] for f in e)) for e in expected]
    assert t.error is error

    whole = impl()
    assert whole.feed_frames(data) == [info for _, info in ends]
    assert whole.error is error


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(stream=streams())
def test_every_prefix_counts_complete_frames(
    impl: Tracker, stream: tuple[bytes, list[int], list[tuple[int, FrameInfo]], bool]
) -> None:
    """After any prefix, the running totals are exactly the frames complete in it.

    What the stats page shows at any moment: never a frame still in flight.
    """
    data, points, ends, _ = stream
    t = impl()
    frames = payload = offset = 0
    for chunk in cut(data, points):
        f, p = t.feed(chunk)
        frames, payload, offset = frames + f, payload + p, offset + len(chunk)
        done = [info for end, info in ends if end <= offset]
        assert (frames, payload) == (len(done), sum(info[1] for info in done))


@NO_C
@SETTINGS
@given(
    data=st.one_of(
        st.binary(max_size=600),
        streams().map(lambda s: s[0]),
    ),
    points=st.lists(st.integers(0, 10**6), max_size=12),
    modes=st.lists(st.integers(0, 2), min_size=13, max_size=13),
    index=st.integers(0, 5),
    opcodes=st.sampled_from([-1, 8, 9]),
)
def test_c_matches_python(
    data: bytes, points: list[int], modes: list[int], index: int, opcodes: int
) -> None:
    """Chunk by chunk, on any bytes at all, including garbage and mixed
    feed/feed_frames/count: same results, same counter slots (opcode counters
    included), same read count, same first close frame."""
    assert CFrameTracker is not None
    chunks = cut(data, [p % (len(data) + 1) for p in points])
    py_slots = memoryview(bytearray(48 * 8)).cast("q")
    c_slots = memoryview(bytearray(48 * 8)).cast("q")
    py = PyFrameTracker(py_slots, index, opcodes)
    c = CFrameTracker(c_slots, index, opcodes)
    for chunk, mode in zip(chunks, modes, strict=False):
        if mode == 2:
            assert c.count(chunk) is py.count(chunk)
        elif mode == 1:
            assert c.feed_frames(chunk) == py.feed_frames(chunk)
        else:
            assert c.feed(chunk) == py.feed(chunk)
        assert c.error is py.error
        assert c.at_boundary is py.at_boundary
        assert c.reads == py.reads
        assert c.close == py.close
        assert c_slots.tolist() == py_slots.tolist()


@pytest.mark.parametrize("impl", IMPLS)
def test_count_adds_to_the_slot(impl: Tracker) -> None:
    """count(): frames completed, their payload and every byte read go to
    counters[index:index+3]; nothing else in the array is touched."""
    slots = memoryview(bytearray(8 * 8)).cast("q")
    slots[0] = 7
    t = impl(slots, 4)  # type: ignore[call-arg]
    assert t.count(hello()[:3]) is False
    assert slots.tolist() == [7, 0, 0, 0, 0, 0, 3, 0]
    assert t.count(hello()[3:] + hello()) is False
    assert slots.tolist() == [7, 0, 0, 0, 2, 10, 14, 0]
    assert t.reads == 2
    assert t.count(BAD_LENGTH) is True  # stream lost: bytes still counted, frames no more
    assert slots.tolist() == [7, 0, 0, 0, 2, 10, 14 + len(BAD_LENGTH), 0]


@pytest.mark.parametrize("impl", IMPLS)
def test_count_adds_per_opcode(impl: Tracker) -> None:
    """count() with ``opcodes``: each completed frame adds 1 to its class in
    OPCODE_CLASSES order; a frame in flight is not counted until it completes.
    Then the message-size histogram: a data message counts at its FIN frame."""
    slots = memoryview(bytearray(36 * 8)).cast("q")
    t = impl(slots, 0, 3)  # type: ignore[call-arg]
    text = bytes((0x01, 2)) + b"ab"  # text, not FIN
    cont = bytes((0x80, 1)) + b"c"  # continuation, FIN
    binary = bytes((0x82, 126, 0, 200)) + bytes(200)
    ping, pong = bytes((0x89, 0)), bytes((0x8A, 0))
    close = bytes((0x88, 2, 0x03, 0xE8))
    reserved = bytes((0x83, 0))
    stream = text + cont + binary + ping + pong + close + reserved + hello()
    t.count(stream[:10])
    assert slots.tolist()[3:10] == [1, 0, 1, 0, 0, 0, 0]  # binary still in flight
    t.count(stream[10:])
    assert slots.tolist()[:3] == [8, 2 + 1 + 200 + 2 + 5, len(stream)]
    assert slots.tolist()[3:10] == [2, 1, 1, 1, 1, 1, 1]
    assert dict(zip(OPCODE_CLASSES, slots.tolist()[3:10], strict=True))["other"] == 1
    # messages: "ab"+"c" (3 bytes, two frames), 200 bytes, hello (5 bytes)
    assert slots.tolist()[10:16] == [2, 1, 0, 0, 0, 0]
    assert len(MESSAGE_SIZE_BOUNDS) + 1 == 6
    with pytest.raises(IndexError):
        impl(slots, 0, 4)  # type: ignore[call-arg]


@pytest.mark.parametrize("impl", IMPLS)
def test_count_slot_checked(impl: Tracker) -> None:
    slots = memoryview(bytearray(8 * 8)).cast("q")
    with pytest.raises(IndexError):
        impl(slots, 6)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        impl(memoryview(bytes(64)).cast("q"), 0)  # type: ignore[call-arg]
    assert impl().count(hello()) is False  # no slot: scan only


# --- second opinion: frames serialized by the websockets library ------------------------

WS_OPCODES = [WsOpcode.CONT, WsOpcode.TEXT, WsOpcode.BINARY]
WS_CTRL = [WsOpcode.CLOSE, WsOpcode.PING, WsOpcode.PONG]


@st.composite
def ws_frames(draw: st.DrawFn) -> Frame:
    if draw(st.booleans()):
        opcode = draw(st.sampled_from(WS_CTRL))
        return Frame(opcode, bytes(draw(st.integers(0, 125))))
    opcode = draw(st.sampled_from(WS_OPCODES))
    return Frame(opcode, bytes(draw(LENGTHS)), fin=draw(st.booleans()))


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(
    frames=st.lists(st.tuples(ws_frames(), st.booleans()), max_size=6),
    points=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_websockets_library_frames(
    impl: Tracker, frames: list[tuple[Frame, bool]], points: list[int]
) -> None:
    frames = [f for f in frames if len(f[0].data) < 65535][:5] + [
        f for f in frames if len(f[0].data) >= 65535
    ][:1]
    data = b"".join(f.serialize(mask=mask, extensions=[]) for f, mask in frames)
    t = impl()
    got = [
        info
        for part in feed_frames_chunks(t, cut(data, [p % (len(data) + 1) for p in points]))
        for info in part
    ]
    assert got == [(int(f.opcode), len(f.data), f.fin) for f, _ in frames]
    assert not t.error


# --- frames ngxws writes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (CloseCode.TRY_AGAIN_LATER, "Try Again Later"),
        (CloseCode.CONNECTION_AGED, "Connection is Aged"),
        (1000, ""),
        (4999, "é" * 61),
    ],
)
def test_encode_close_frame(code: int, reason: str) -> None:
    expected = Frame(WsOpcode.CLOSE, Close(code, reason).serialize()).serialize(
        mask=False, extensions=[]
    )
    assert encode_close_frame(code, reason) == expected
    assert PyFrameTracker().feed_frames(expected) == [(Opcode.CLOSE, len(expected) - 2, True)]


def test_encode_close_frame_vector() -> None:
    assert encode_close_frame(1013, "Try Again Later") == b"\x88\x11\x03\xf5Try Again Later"


@pytest.mark.parametrize(("code", "reason"), [(999, ""), (5000, ""), (1000, "x" * 124)])
def test_encode_close_frame_rejects(code: int, reason: str) -> None:
    with pytest.raises(ValueError):
        encode_close_frame(code, reason)


# --- implementation selection -------------------------------------------------------------


def _selected(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NGXWS_NO_SPEEDUPS"}
    if env_value is not None:
        env["NGXWS_NO_SPEEDUPS"] = env_value
    code = "from ngxws.ws import frames; print(frames.FrameTracker.__module__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@NO_C
def test_c_selected_by_default() -> None:
    assert _selected(None) == "ngxws.ws._speedups"
    assert _selected("0") == "ngxws.ws._speedups"


def test_no_speedups_env_forces_python() -> None:
    assert _selected("1") == "ngxws.ws.frames"
