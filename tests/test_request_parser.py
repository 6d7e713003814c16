"""ngxws.http.parser: nginx 1.22's request grammar, table by table.

Expected values come from ngx_http_parse.c / ngx_http_request.c (and were
checked against Debian's nginx by tests/differential)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngxws.http.parser import (
    AGAIN,
    DONE,
    ChunkedReader,
    ParseError,
    RequestParser,
    UpgradeRequest,
    _scan_request_line,
    content_length_value,
    scan_header_line,
    scan_request_line,
)
from ngxws.http.request import valid_host

# (line, status, method, target, (major, minor), absolute-form host)
REQUEST_LINES = [
    (b"GET / HTTP/1.1\r\n", 0, b"GET", b"/", (1, 1), None),
    (b"GET / HTTP/1.0\n", 0, b"GET", b"/", (1, 0), None),
    (b"GET /a?b#c HTTP/1.1\r\n", 0, b"GET", b"/a?b#c", (1, 1), None),
    (b"M-SEARCH_X /p HTTP/1.1\r\n", 0, b"M-SEARCH_X", b"/p", (1, 1), None),
    (b"GET   /p   HTTP/1.1  \r\n", 0, b"GET", b"/p", (1, 1), None),
    (b"GET /p HTTP/1.10\r\n", 0, b"GET", b"/p", (1, 10), None),
    (b"GET /p HTTP/1.999\r\n", 0, b"GET", b"/p", (1, 999), None),
    (b"GET /\xe9 HTTP/1.1\r\n", 0, b"GET", b"/\xe9", (1, 1), None),
    (b"GET http://a.test:80/p?x HTTP/1.1\r\n", 0, b"GET", b"http://a.test:80/p?x", (1, 1), b"a.test"),
    (b"GET http://a.test HTTP/1.1\r\n", 0, b"GET", b"http://a.test", (1, 1), b"a.test"),
    (b"GET http://a.test?x HTTP/1.1\r\n", 0, b"GET", b"http://a.test?x", (1, 1), b"a.test"),
    (b"GET ftp+x://[::1]:8/p HTTP/1.1\r\n", 0, b"GET", b"ftp+x://[::1]:8/p", (1, 1), b"[::1]"),
    (b"GET /p\r\n", 0, b"GET", b"/p", (0, 9), None),
    (b"GET /p \n", 0, b"GET", b"/p", (0, 9), None),
    (b"GET /p HTTP/1.1000\r\n", 400, None, None, None, None),
    (b"GET /p HTTP/2.0\r\n", 505, None, None, None, None),
    (b"GET /p HTTP/2garbage", 505, None, None, None, None),
    (b"GET /p HTTP/10.1\r\n", 505, None, None, None, None),
    (b"GET /p HTTP/0.9\r\n", 400, None, None, None, None),
    (b"GET /p HTTP/01.1\r\n", 400, None, None, None, None),
    (b"GET /p http/1.1\r\n", 400, None, None, None, None),
    (b"GET /p HTTP/1.1x\r\n", 400, None, None, None, None),
    (b"GET /p HTTP/1.1\rX\n", 400, None, None, None, None),
    (b"get /p HTTP/1.1\r\n", 400, None, None, None, None),
    (b" GET /p HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET * HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET p HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET /p\x01 HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET /p\x7f HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET http://u@a/ HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET http://a_b/ HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET http:/a/ HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET http://a:x/ HTTP/1.1\r\n", 400, None, None, None, None),
    (b"GET http://a\r\n", 400, None, None, None, None),
    (b"GET /p HTTP/1.1", AGAIN, None, None, None, None),
    (b"GE", AGAIN, None, None, None, None),
    (b"GET http://[::1", AGAIN, None, None, None, None),
]


@pytest.mark.parametrize(("line", "status", "method", "target", "version", "host"), REQUEST_LINES)
def test_request_line(line: bytes, status: int, method: bytes | None, target: bytes | None,
                      version: tuple[int, int] | None, host: bytes | None) -> None:
    got, parsed = scan_request_line(line)
    assert got == status
    if status == 0:
        assert parsed is not None
        assert (parsed.method, parsed.target, (parsed.major, parsed.minor), parsed.host) == (method, target, version, host)
        assert parsed.end == len(line)


# (line, status, name, value, invalid)
HEADER_LINES = [
    (b"Host: a\r\n", 0, b"Host", b"a", False),
    (b"Host:a\n", 0, b"Host", b"a", False),
    (b"X-A:   a b  \r\n", 0, b"X-A", b"a b", False),
    (b"X-A: \ta\t\r\n", 0, b"X-A", b"\ta\t", False),
    (b"X-A: a\x01\xff\r\n", 0, b"X-A", b"a\x01\xff", False),
    (b"X-A: a\r\r\n", 0, b"X-A", b"a", False),
    (b"NoColon\r\n", 0, b"NoColon", b"", False),
    (b"X-A:\r\n", 0, b"X-A", b"", False),
    (b"X_A: 1\r\n", 0, b"X_A", b"1", True),
    (b"X{A}: 1\r\n", 0, b"X{A}", b"1", True),
    (b"\xe9: 1\r\n", 0, b"\xe9", b"1", True),
    (b"X A: 1\r\n", 400, b"", b"", False),
    (b"X\tA: 1\r\n", 400, b"", b"", False),
    (b" X: 1\r\n", 400, b"", b"", False),
    (b": 1\r\n", 400, b"", b"", False),
    (b"X-A: a\x00\r\n", 400, b"", b"", False),
    (b"X-A: a\rb\r\n", 400, b"", b"", False),
    (b"\r\n", DONE, b"", b"", False),
    (b"\n", DONE, b"", b"", False),
    (b"\rX", 400, b"", b"", False),
    (b"X-A: partial", AGAIN, b"", b"", False),
]


@pytest.mark.parametrize(("line", "status", "name", "value", "invalid"), HEADER_LINES)
def test_header_line(line: bytes, status: int, name: bytes, value: bytes, invalid: bool) -> None:
    got, end, n, v, inv = scan_header_line(line, 0)
    assert got == status
    if status == 0:
        assert (n, v, inv, end) == (name, value, invalid, len(line))


def test_underscores_in_headers_on() -> None:
    assert scan_header_line(b"X_A: 1\r\n", 0, underscores=True)[4] is False


@pytest.mark.parametrize(("host", "ok"), [
    ("example.com", True), ("example.com.", True), (".example.com", True), ("ex\\ample", True),
    ("[::1]", True), ("[::1]:80", True), ("[::1", True), ("a:80", True), ("EXAMPLE.com", True),
    ("", False), (".", False), ("example..com", False), ("a/b", False), ("a b", False), ("\ta", False),
    ("a\x00", False), ("a\x7f", False), (":80", False),
])
def test_valid_host(host: str, ok: bool) -> None:
    assert valid_host(host) is ok


@pytest.mark.parametrize(("value", "n"), [
    (b"0", 0), (b"5", 5), (b"0005", 5), (b"9223372036854775807", (1 << 63) - 1),
    (b"9223372036854775808", -1), (b"", -1), (b"-1", -1), (b"+5", -1), (b"5 5", -1), (b"0x5", -1), (b"\xd9\xa5", -1),
])
def test_content_length(value: bytes, n: int) -> None:
    assert content_length_value(value) == n


# (body, data or None for 400)
CHUNKED = [
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\nhello\n0\n\n", b"hello"),
    (b"5;a=b\r\nhello\r\n3 \r\nabc\r\n0;x\r\n\r\n", b"helloabc"),
    (b"A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", b"0123456789"),
    (b"zz\r\n", None),
    (b"-5\r\n", None),
    (b"0x5\r\n", None),
    (b"3\r\nabcdef\r\n", None),
    (b"\r\n5\r\n", None),
    (b"fffffffffffffffff\r\n", None),
    (b"7fffffffffffffff\r\n", None),
]


@pytest.mark.parametrize(("body", "data"), CHUNKED)
def test_chunked(body: bytes, data: bytes | None) -> None:
    out: list[bytes] = []
    reader = ChunkedReader()
    if data is None:
        with pytest.raises(ParseError):
            reader.feed(body, 0, out)
        return
    pos, done = reader.feed(body, 0, out)
    assert done and pos == len(body) and b"".join(out) == data


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def on_message_begin(self) -> None:
        self.events.append(("begin", b""))

    def on_url(self, url: bytes) -> None:
        self.events.append(("url", url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.events.append(("header", name + b"=" + value))

    def on_headers_complete(self) -> None:
        self.events.append(("head", b""))

    def on_body(self, body: bytes) -> None:
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + body)
        else:
            self.events.append(("body", body))

    def on_message_complete(self) -> None:
        self.events.append(("complete", b""))


def feed(pieces: list[bytes]) -> tuple[list[tuple[str, bytes]], object]:
    rec = Recorder()
    parser = RequestParser(rec)
    outcome: object = None
    for i, piece in enumerate(pieces):
        try:
            parser.feed_data(piece)
        except ParseError as exc:
            outcome = exc.status
            break
        except UpgradeRequest as exc:
            # the rest of this piece and every later one belong to the tunnel
            outcome = ("upgrade", piece[exc.args[0]:] + b"".join(pieces[i + 1 :]))
            break
    return rec.events, outcome


# (request bytes, outcome: None, a status, or ("upgrade", tunnel bytes))
REQUESTS = [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
    (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.0\r\n\r\n", None),
    (b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    (b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    (b"GET /../x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"HEAD /p\r\n", 400),
    (b"GET /p\r\n", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\nFRAMES", ("upgrade", b"FRAMES")),
    (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhiFRAMES", ("upgrade", b"FRAMES")),
]


@pytest.mark.parametrize(("data", "outcome"), REQUESTS)
def test_requests(data: bytes, outcome: object) -> None:
    assert feed([data])[1] == outcome


def test_callbacks() -> None:
    events, outcome = feed([b"POST /u HTTP/1.1\r\nHost: a\r\nX_Drop: 1\r\nContent-Length: 2\r\n\r\nhi"])
    assert outcome is None
    assert events == [("begin", b""), ("url", b"/u"), ("header", b"Host=a"), ("header", b"Content-Length=2"),
                      ("head", b""), ("body", b"hi"), ("complete", b"")]


def test_error_before_the_head_ends() -> None:
    """nginx answers a bad line at once, without waiting for the rest."""
    assert feed([b"GET / HTTP/1.1\r\nX Y"])[1] == 400
    assert feed([b"GET / HTTP/1.1\r\nHost: a\r\n"])[1] is None  # still waiting


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_split_gives_the_same_events(data: st.DataObject) -> None:
    whole, _ = data.draw(st.sampled_from(REQUESTS))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=6)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    one_events, one_outcome = feed([whole])
    split_events, split_outcome = feed(pieces)
    assert split_events == one_events
    assert split_outcome == one_outcome


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([b"GET /", b"GET ", b"POST /a", b"X /"]))
def test_fast_path_agrees_with_the_port(tail: bytes, head: bytes) -> None:
    """The regex that accepts common lines whole says what the per-byte
    port of ngx_http_parse_request_line says."""
    line = head + tail + b" HTTP/1.1\r\n"
    status, parsed = scan_request_line(line)
    slow_status, slow = _scan_request_line(line, 0)
    assert status == slow_status
    if parsed is not None and slow is not None:
        assert (parsed.method, parsed.target, parsed.major, parsed.minor, parsed.end) == (
            slow.method, slow.target, slow.major, slow.minor, slow.end)


def test_error_in() -> None:
    assert RequestParser(Recorder()).error_in(b"GET /\x01") == 400
    assert RequestParser(Recorder()).error_in(b"GET / HTTP/2") == 505
    assert RequestParser(Recorder()).error_in(b"GET /aaaa") == 0


def test_nothing_is_read_after_an_error() -> None:
    rec = Recorder()
    parser = RequestParser(rec)
    with pytest.raises(ParseError):
        parser.feed_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    seen = list(rec.events)
    parser.feed_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert rec.events == seen
