"""The frame tracker's close frames (issue 14): the first close frame of a
stream is read -- code and reason, unmasked -- however its header and
payload are split over reads; its code's bucket counts once; ``count()``
says so in the read that completes it.  Both implementations, against a
model, and C against Python on random streams cut at random points.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_frames import IMPLS, NO_C, Tracker, cut, frame, hello

from ngxws.ws.frames import (
    CLOSE_CODE_BUCKETS,
    DIRECTION_FIELDS,
    OPCODE_FIELDS,
    CFrameTracker,
    PyFrameTracker,
    close_code_bucket,
)

SETTINGS = settings(max_examples=200, deadline=None)
OPS = 3  # where the tests' trackers put their opcode block


def masked(b0: int, payload: bytes, key: bytes) -> bytes:
    """A client frame: the payload XORed with ``key`` (RFC 6455 5.3)."""
    data = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        length = bytes((0x80 | n,))
    elif n < 65536:
        length = bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    else:
        length = bytes((0x80 | 127,)) + n.to_bytes(8, "big")
    return bytes((b0,)) + length + key + data


def close_frame(code: int | None, reason: bytes = b"", key: bytes | None = None) -> bytes:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return masked(0x88, payload, key) if key is not None else frame(0x88, payload)


def slots() -> memoryview:
    return memoryview(bytearray((OPS + DIRECTION_FIELDS) * 8)).cast("q")


def buckets(s: memoryview) -> dict[str, int]:
    at = OPS + OPCODE_FIELDS
    return {name: n for name, n in zip(CLOSE_CODE_BUCKETS, s.tolist()[at:], strict=True) if n}


@pytest.mark.parametrize(
    ("code", "bucket"),
    [(1000, "1000"), (1005, "1005"), (1015, "1015"), (1016, "other"), (2999, "other"), (3000, "3000-3999"),
     (3999, "3000-3999"), (4000, "4000-4999"), (4999, "4000-4999"), (5000, "other"), (0, "other"), (-1, "other")],
)
def test_code_buckets(code: int, bucket: str) -> None:
    assert CLOSE_CODE_BUCKETS[close_code_bucket(code)] == bucket


@pytest.mark.parametrize("impl", IMPLS)
def test_first_close_frame_split_everywhere(impl: Tracker) -> None:
    """A masked close frame with a reason, then a second close frame (not
    read), cut at every single point and at every pair of points."""
    key = b"\x9a\x01\xff\x42"
    first = close_frame(4001, b"Connection is Aged", key)
    data = hello() + first + close_frame(1000, b"", key) + hello()
    for i in range(len(data) + 1):
        for j in range(i, min(len(data), i + 9) + 1):
            s = slots()
            t = impl(s, 0, OPS)  # type: ignore[call-arg]
            flags = [t.count(c) for c in cut(data, [i, j])]
            assert t.close == (4001, b"Connection is Aged"), (i, j)
            assert buckets(s) == {"4000-4999": 1}
            # True once: in the read that brought the close frame's last byte
            end = len(hello()) + len(first)
            assert flags == [i < end <= max(i, j) if k == 1 else (end <= i if k == 0 else j < end)
                             for k in range(3)], (i, j, flags)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("wire", "close", "bucket"),
    [
        (close_frame(None), (1005, b""), "1005"),  # empty: no status code (RFC 6455 7.1.5)
        (frame(0x88, b"\x03"), (-1, b""), "other"),  # one byte: no code can be read
        (close_frame(1000, b"bye"), (1000, b"bye"), "1000"),
        (close_frame(3001, "\u00e9".encode(), b"\0\0\0\1"), (3001, "\u00e9".encode()), "3000-3999"),
        (close_frame(1002, b"x" * 200), (1002, b"x" * 123), "1002"),  # oversized: kept up to 125 bytes
        (frame(0x08, b"\x03\xe8"), (1000, b""), "1000"),  # without FIN: still a close frame
    ],
)
def test_close_payloads(impl: Tracker, wire: bytes, close: tuple[int, bytes], bucket: str) -> None:
    for chunks in ([wire], [wire[:1], wire[1:]], [wire[:3], wire[3:5], wire[5:]], [bytes((b,)) for b in wire]):
        s = slots()
        t = impl(s, 0, OPS)  # type: ignore[call-arg]
        assert t.close is None
        flags = [t.count(c) for c in chunks if c]
        assert flags[-1] is True and not any(flags[:-1])
        assert t.close == close
        assert buckets(s) == {bucket: 1}
        assert t.count(close_frame(4000)) is False  # only the first one counts


@pytest.mark.parametrize("impl", IMPLS)
def test_every_method_reads_the_close(impl: Tracker) -> None:
    """feed and feed_frames read it too; the bucket counts when the tracker
    has counters (the logged relay scans with feed_frames)."""
    data = hello() + close_frame(1001, b"going", b"abcd")
    for method in ("feed", "feed_frames"):
        s = slots()
        t = impl(s, 0, OPS)  # type: ignore[call-arg]
        for c in cut(data, [9, 12]):
            getattr(t, method)(c)
        assert t.close == (1001, b"going")
        assert buckets(s) == {"1001": 1}
        assert t.count(b"") is True  # count() after it: the news is still there, once
        assert t.count(b"") is False
    t = impl()
    t.feed(data)
    assert t.close == (1001, b"going")


@st.composite
def close_streams(draw: st.DrawFn) -> tuple[bytes, list[int], tuple[int, bytes] | None]:
    """Frames of any kind, masked or not, some of them close frames with a
    code and a reason; the first close frame's (code, reason) as expected."""
    data = b""
    first: tuple[int, bytes] | None = None
    for _ in range(draw(st.integers(0, 6))):
        key = draw(st.one_of(st.none(), st.binary(min_size=4, max_size=4)))
        if draw(st.booleans()):
            code = draw(st.one_of(st.integers(0, 65535), st.sampled_from([1000, 1001, 1011, 3000, 4001, 4999])))
            reason = draw(st.binary(max_size=130))
            payload = draw(st.sampled_from([b"", code.to_bytes(2, "big")[:1], code.to_bytes(2, "big") + reason]))
            b0 = draw(st.sampled_from([0x88, 0x08, 0xC8]))
            if first is None:
                kept = payload[:125]
                first = (1005, b"") if not kept else (-1, b"") if len(kept) == 1 else (code, kept[2:])
        else:
            b0 = draw(st.sampled_from([0x81, 0x82, 0x01, 0x80, 0x89, 0x8A, 0x83]))
            payload = bytes(draw(st.sampled_from([0, 1, 125, 126, 300, 70000])))
        data += masked(b0, payload, key) if key is not None else frame(b0, payload)
    points = draw(st.lists(st.integers(0, len(data)), max_size=10))
    return data, points, first


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(stream=close_streams())
def test_random_streams_match_model(impl: Tracker, stream: tuple[bytes, list[int], tuple[int, bytes] | None]) -> None:
    data, points, first = stream
    s = slots()
    t = impl(s, 0, OPS)  # type: ignore[call-arg]
    flags = [t.count(c) for c in cut(data, points)]
    assert t.close == first
    assert sum(flags) == (first is not None)
    assert sum(buckets(s).values()) == (first is not None)
    if first is not None:
        assert buckets(s) == {CLOSE_CODE_BUCKETS[close_code_bucket(first[0])]: 1}


@NO_C
@SETTINGS
@given(stream=close_streams(), modes=st.lists(st.integers(0, 2), min_size=11, max_size=11))
def test_c_matches_python_on_close_frames(stream: tuple[bytes, list[int], tuple[int, bytes] | None],
                                          modes: list[int]) -> None:
    assert CFrameTracker is not None
    data, points, _ = stream
    py_slots, c_slots = slots(), slots()
    py, c = PyFrameTracker(py_slots, 0, OPS), CFrameTracker(c_slots, 0, OPS)
    for chunk, mode in zip(cut(data, points), modes, strict=False):
        if mode == 2:
            assert c.count(chunk) is py.count(chunk)
        elif mode == 1:
            assert c.feed_frames(chunk) == py.feed_frames(chunk)
        else:
            assert c.feed(chunk) == py.feed(chunk)
        assert c.close == py.close
        assert c.at_boundary is py.at_boundary
        assert c_slots.tolist() == py_slots.tolist()
