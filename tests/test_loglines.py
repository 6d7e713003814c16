"""ws_log lines rendered in C (``FrameTracker.log``, ``_loglines.c``)
against the reference: ``PyFrameTracker.feed_frames`` then
``FrameLogger.lines_for_frames``, the lines encoded as ``LogFile`` writes
them.  Random streams cut at random points, random templates (every slot,
the request's variables with their escaping, ``%``, non-ASCII and raw
header bytes, close-only and unknown names), the module's per-frame
template and the chainstack fork's per-message ones, each read at its own
time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngxws.config.model import WsLogTemplates
from ngxws.sinks.logfile import LogFile
from ngxws.sinks.timefmt import TimeCache
from ngxws.sinks.wslog import C_SLOTS, CLIENT, UPSTREAM, FrameLogger
from ngxws.ws.frames import OPCODE_FIELDS, CFrameTracker, CLineFormat, PyFrameTracker
from tests.test_wslog import T0, make_conn

pytestmark = pytest.mark.skipif(CLineFormat is None, reason="the C extension is not built")

SLOT_VARS = [f"${name}" for name in C_SLOTS]
CONN_VARS = [
    "$remote_addr", "$remote_port", "$request_id", "$request", "$uri", "$remote_user",
    "$http_x_forwarded_for", "$http_user_agent", "$upstream_addr", "$server_name",
]  # fmt: skip
OTHER = ["$ws_close_code", "$ws_frames_client", "$nosuchvar", "${ws_opcode}x", "$", "%", "%%d", "é", " "]
LITERALS = st.text(alphabet="abc =:-[]\"\\%é\t", max_size=6)

templates = st.lists(
    st.one_of(st.sampled_from(SLOT_VARS + CONN_VARS + OTHER), LITERALS), min_size=0, max_size=9
).map("".join)
ESCAPES = st.sampled_from(["", "default", "json", "none"])


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame as a peer sends it: any opcode (reserved ones too), FIN or
    not, masked or not, a length in 7, 16 or 64 bits."""
    opcode = draw(st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11]))
    fin = draw(st.booleans())
    length = draw(st.one_of(st.integers(0, 130), st.sampled_from([125, 126, 65535, 65536])))
    masked = draw(st.booleans())
    width = draw(st.sampled_from([w for w in (7, 16, 64) if w >= (7 if length < 126 else 16 if length < 65536 else 64)]))
    head = bytes([(0x80 if fin else 0) | opcode])
    mbit = 0x80 if masked else 0
    if width == 7:
        head += bytes([mbit | length])
    elif width == 16:
        head += bytes([mbit | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + length.to_bytes(8, "big")
    if masked:
        head += b"\x11\x22\x33\x44"
    return head + b"\x5a" * length


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """A stream cut into chunks anywhere (headers split too), at most one big
    frame -- or any bytes at all (garbage must be followed as the reference
    follows it, never crash)."""
    if draw(st.integers(0, 4)) == 0:
        data = draw(st.binary(max_size=400))
    else:
        parts = draw(st.lists(frames(), max_size=10))
        big = [i for i, p in enumerate(parts) if len(p) > 60000]
        data = b"".join(p for i, p in enumerate(parts) if i not in big[1:])
    if draw(st.booleans()):  # then a length the stream cannot follow
        data += b"\x82\x7f\xff" + b"\x00" * 7 + b"\x81\x00"
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks, start = [], 0
    for c in [*cuts, len(data)]:
        chunks.append(data[start:c])
        start = c
    return chunks


def conn() -> object:
    """Header bytes that are not UTF-8 (kept as surrogates) and a % in a value."""
    return make_conn(
        headers=[("host", "example.com"), ("user-agent", 'Mozilla "5%" \\ caf\xc3\xa9 \xff'),
                 ("x-forwarded-for", "203.0.113.9")],  # fmt: skip
        opened_at=T0 + 0.75,
    )


@settings(max_examples=300, deadline=None)
@given(
    chunks=streams(),
    frame=st.one_of(st.none(), templates),
    client=st.one_of(st.none(), templates),
    server=st.one_of(st.none(), templates),
    escape=ESCAPES,
    source=st.sampled_from([CLIENT, UPSTREAM]),
    offsets=st.lists(st.floats(-2.0, 5000.0, allow_nan=False), min_size=1, max_size=12),
)
def test_c_lines_match_the_reference(
    chunks: list[bytes],
    frame: str | None,
    client: str | None,
    server: str | None,
    escape: str,
    source: str,
    offsets: list[float],
) -> None:
    escapes = (("frame", escape), ("client", escape), ("server", escape)) if escape else ()
    tmpl = WsLogTemplates(frame=frame, client=client, server=server, escapes=escapes)
    info = conn()
    reference = FrameLogger(tmpl, info, TimeCache())  # type: ignore[arg-type]
    fl = FrameLogger(tmpl, info, TimeCache())  # type: ignore[arg-type]
    fmt = fl.line_format(source)
    assert CFrameTracker is not None
    c_slots = memoryview(bytearray(48 * 8)).cast("q")
    c = CFrameTracker(c_slots, 2, 5)
    py = PyFrameTracker()
    counted = memoryview(bytearray(48 * 8)).cast("q")
    counter = PyFrameTracker(counted, 2, 5)
    for i, chunk in enumerate(chunks):
        now = T0 + offsets[i % len(offsets)]
        lines, n, payload = c.log(chunk, fmt, now)
        seen = py.feed_frames(chunk)
        expected = reference.lines_for_frames(seen, source, now)
        assert lines == "".join(f"{line}\n" for line in expected).encode("utf-8", "surrogateescape")
        assert (n, payload) == (len(seen), sum(f[1] for f in seen))
        counter.count(chunk)  # the shared slot and opcode counters as count() keeps them
        assert c.error is py.error and c.close == py.close and c.reads == py.reads
    assert c_slots.tolist() == counted.tolist()


def test_without_a_format_it_only_counts() -> None:
    assert CFrameTracker is not None
    slots = memoryview(bytearray(48 * 8)).cast("q")
    t = CFrameTracker(slots, 0, 3)
    assert t.log(b"\x81\x02hi\x89\x00", None, time.time()) == (b"", 2, 2)
    assert slots[:3].tolist() == [2, 2, 6]
    assert sum(slots[3 : 3 + OPCODE_FIELDS]) == 2 + 1  # text, ping, one message size


def test_module_default_and_chainstack_lines() -> None:
    """The goldens of test_wslog, through the C renderer."""
    info = make_conn()
    fl = FrameLogger(WsLogTemplates(frame="$time_local: packet received from $ws_packet_source"), info)
    assert CFrameTracker is not None
    t = CFrameTracker()
    assert t.log(b"\x81\x05hello\x89\x00", fl.line_format(CLIENT), T0)[0] == (
        b"Wed, 25 Nov 2026 08:44:08 GMT: packet received from client\n" * 2
    )
    chain = FrameLogger(WsLogTemplates(client="CLIENT->SERVER: $ws_message_size ($http_upgrade)"), info)
    fmt = chain.line_format(CLIENT)
    assert chain.line_format(UPSTREAM) is None  # no server template: no line that way
    # text 100 + ping + continuation 50 | continuation 25 FIN
    first = b"\x01\x64" + b"x" * 100 + b"\x89\x00" + b"\x00\x32" + b"y" * 50
    assert t.log(first, fmt, T0)[0] == b""
    assert t.log(b"\x80\x19" + b"z" * 25, fmt, T0)[0] == b"CLIENT->SERVER: 175 (websocket)\n"


def test_bad_formats_are_refused() -> None:
    assert CLineFormat is not None and CFrameTracker is not None
    with pytest.raises(ValueError, match="no slot"):
        CLineFormat((b"x", 99), b"client", True, T0, None, None, None)
    with pytest.raises(ValueError, match="no clock"):
        CLineFormat((C_SLOTS.index("time_local"),), b"client", True, T0, None, None, None)
    with pytest.raises(TypeError, match="LineFormat"):
        CFrameTracker().log(b"\x81\x00", "not a format", T0)  # type: ignore[arg-type]


@pytest.fixture
def log_path(tmp_path: object) -> Iterator[str]:
    path = os.path.join(str(tmp_path), "ws.log")
    yield path


def test_logfile_keeps_encoded_and_text_lines_in_order(log_path: str) -> None:
    f = LogFile(log_path)
    f.append("open é")
    f.write_lines(b"frame 1\nframe 2\n")
    f.append("between")
    f.write_lines(b"frame 3\n")
    f.append("close")
    assert f.pending == len("open é\nframe 1\nframe 2\nbetween\nframe 3\nclose\n")
    f.close()
    with open(log_path, "rb") as got:
        assert got.read() == "open é\nframe 1\nframe 2\nbetween\nframe 3\nclose\n".encode()


def test_logfile_flushes_encoded_lines_past_its_buffer(log_path: str) -> None:
    from ngxws.sinks.logfile import MAX_BUFFER

    f = LogFile(log_path)
    f.write_lines(b"x" * (MAX_BUFFER + 1) + b"\n")
    assert f.pending == 0  # written at once
    assert os.path.getsize(log_path) == MAX_BUFFER + 2
    f.close()
