"""Issue 13 (W5, the client's head): ``fast_head.read_head`` -- a whole head
of the common shape in a few regex calls -- delivers what the parser's line
walk (the ports of ngx_http_parse_request_line / _header_line and
ngx_http_process_request_header) delivers from the same bytes.

The C scan (``_head.scan_head``) is checked against its Python reference
``py_scan_head`` over the same corpus, every prefix and random mutations,
and the whole comparison runs with each of them.

Every input is read three ways: by a parser with the fast reader
(``heads=True``, as the client connection reads), by one without it (the
line walk alone: the oracle), and by the line walk fed in two pieces.  The
events (heads, bodies, completions, the upgrade offset, the error status)
must be equal; a head read fast must also say ``plain`` exactly when it has
no Content-Length, Transfer-Encoding or Expect.
"""

from __future__ import annotations

import itertools
import random

import pytest

from ngxws.http import fast_head
from ngxws.http.fast_head import py_scan_head, read_head
from ngxws.http.parser import ParseError, RequestParser, UpgradeRequest
from ngxws.http.request import RequestHead


class Recorder:
    """The client connection's side of the parser, as a list of events."""

    def __init__(self) -> None:
        self.parser: RequestParser | None = None
        self.events: list[tuple[str, object]] = []
        self.fast = 0
        self._url = b""
        self._headers: list[tuple[str, str]] = []

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:  # what ClientConnection makes of the lines
        p = self.parser
        assert p is not None
        head = RequestHead(
            method=p.get_method().decode("latin-1"),
            target=self._url.decode("latin-1"),
            version=p.get_http_version(),
            headers=self._headers,
            keep_alive=p.should_keep_alive(),
        )
        self.events.append(("head", head))

    def on_request_head(self, head: RequestHead, plain: bool) -> None:
        self.fast += 1
        bodyless = all(head.header(n) is None for n in ("content-length", "transfer-encoding", "expect"))
        assert plain is bodyless, head
        self.events.append(("head", head))
        if plain:  # the request is complete with its head: no on_message_complete follows
            self.events.append(("complete", None))

    def on_body(self, body: bytes) -> None:
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + body)  # type: ignore[operator]
        else:
            self.events.append(("body", body))

    def on_message_complete(self) -> None:
        self.events.append(("complete", None))


def read(pieces: list[bytes], heads: bool) -> tuple[list[tuple[str, object]], object, int]:
    rec = Recorder()
    parser = rec.parser = RequestParser(rec, heads=heads)
    outcome: object = None
    for i, piece in enumerate(pieces):
        try:
            parser.feed_data(piece)
        except ParseError as exc:
            outcome = ("error", exc.status, exc.http09)
            break
        except UpgradeRequest as exc:
            outcome = ("upgrade", exc.args[0] + sum(len(p) for p in pieces[:i]))
            break
    return rec.events, outcome, rec.fast


def same(data: bytes, cut: int | None = None) -> int:
    """Read ``data`` the three ways; returns how many heads were read fast."""
    fast = read([data], True)
    walk = read([data], False)
    assert fast[:2] == walk[:2], data[:200]
    if cut is not None and 0 < cut < len(data):
        pieces = read([data[:cut], data[cut:]], True)
        assert pieces[:2] == walk[:2], (data[:200], cut)
    return fast[2]


METHODS = [b"GET", b"POST", b"HEAD", b"CONNECT", b"TRACE", b"M-SEARCH", b"G_T", b"get", b""]
TARGETS = [
    b"/", b"/a/b?x=1&y", b"/a/../b", b"/../x", b"/a/./b/", b"/%41%2f", b"/%zz", b"/%00", b"//x//y", b"/a?b#c",
    b"/\x80\xff\xe9", b"/a\x7fb", b"/a b", b"http://h.example/x", b"http://h:8080", b"*", b"/?", b"/a/..",
    b"/" + b"p" * 300,
]
VERSIONS = [b" HTTP/1.1", b" HTTP/1.0", b" HTTP/1.2", b" HTTP/2.0", b" HTTP/1.10", b"", b" HTTP/1.1  ", b" http/1.1"]
ENDS = [b"\r\n", b"\n", b"\r\r\n"]
HEADERS = [
    b"Host: a.example", b"host:a", b"HOST:   b.example:8080   ", b"Host: bad/host", b"Host:", b"Host: [::1]:80",
    b"Host: a..b", b"Host: x.\xe9", b"Content-Length: 5", b"Content-Length: 0", b"content-length: 007",
    b"Content-Length: -1", b"Content-Length: 1 2", b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity", b"Connection: close",
    b"connection: Keep-Alive", b"Connection: Upgrade", b"Connection: keep-alive, close", b"Upgrade: websocket",
    b"UPGRADE:", b"Expect: 100-continue", b"Authorization: Basic eA==", b"If-Match: *", b"Cookie: a=b",
    b"X_U: underscore", b"X Y: invalid name", b"X.Y: dotted", b"X-Nul: a\x00b", b"X-Sp:   both   ",
    b"X-Tab: \tv\t", b"X-Latin: caf\xe9 \xff", b"X-Colon: a:b: c", b"X-Empty:", b"X-Spaces:    ",
    b"\x80Name: v", b": no name", b" folded", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Version: 13", b"X-Long: " + b"v" * 500, b"X-CL: Close", b"X-Cr: a\rb",
]
BODIES = [b"", b"hello", b"\x81\x85abcd", b"GET /next HTTP/1.1\r\nHost: n\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n"]


def common_heads() -> list[bytes]:
    return [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85abcdhello",
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.0\n\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nCookie: a\r\ncookie: b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabcREST",
    ]


def random_heads(rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):  # bounded
        end = rng.choice(ENDS) if rng.random() < 0.2 else b"\r\n"
        line = rng.choice(METHODS[:3] if rng.random() < 0.7 else METHODS) + b" "
        line += rng.choice(TARGETS[:3] if rng.random() < 0.6 else TARGETS)
        line += rng.choice(VERSIONS[:2] if rng.random() < 0.8 else VERSIONS)
        lines = [line]
        if rng.random() < 0.8:
            lines.append(b"Host: h.example")
        lines += rng.sample(HEADERS, rng.randrange(0, 7))
        if rng.random() < 0.1:
            lines.append(rng.choice(lines[1:] or [b"Host: again"]))  # a name twice
        head = b"".join(x + (rng.choice(ENDS) if rng.random() < 0.1 else end) for x in lines)
        out.append(head + end + rng.choice(BODIES))
    return out


@pytest.fixture(params=["c", "python"], autouse=True)
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with the C scan (when built: it is, by ``make``) and with the Python one."""
    if request.param == "python":
        monkeypatch.setattr(fast_head, "scan_head", py_scan_head)
    return str(request.param)


def test_c_scan_is_built(scanner: str) -> None:
    from ngxws.http import _head

    assert fast_head.scan_head is (_head.scan_head if scanner == "c" else py_scan_head)


def test_c_scan_equals_python_scan(scanner: str) -> None:
    """Over the corpus, every prefix of the common heads, and random byte
    changes: the C scan answers what the regexes answer."""
    from ngxws.http._head import scan_head

    rng = random.Random(99)
    corpus = common_heads() + random_heads(rng, 1500)
    for data in common_heads():
        corpus += [data[:i] for i in range(len(data))]
    for _ in range(3000):  # bounded
        data = bytearray(rng.choice(corpus) or b"GET / HTTP/1.1\r\n\r\n")
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data))
            data[at] = rng.choice(b"\x00\r\n :/-_\t\x7f\x80\xffAaZz09H.?%")
        corpus.append(bytes(data))
    hits = 0
    for data in corpus:
        for pos in (0, 2) if len(data) > 2 else (0,):
            want = py_scan_head(data, pos)
            assert scan_head(data, pos) == want, (data[:200], pos)
            hits += want is not None
    assert hits > 500


def test_common_heads_read_fast_and_equal() -> None:
    fast = sum(same(h) for h in common_heads())
    assert fast >= 4  # the websocket upgrade, the plain GET, the POST, HTTP/1.0


@pytest.mark.parametrize("seed", range(4))
def test_random_heads_equal(seed: int) -> None:
    rng = random.Random(seed)
    heads = random_heads(rng, 1500)
    fast = sum(same(h, rng.randrange(1, len(h) + 1)) for h in heads)
    # both paths are exercised: many heads are read fast, many fall back
    assert 100 < fast < len(heads)


def test_every_single_header_line() -> None:
    """Each header line alone, and each pair, after a common request line."""
    for a, b in itertools.product([None, *HEADERS], repeat=2):  # bounded: 47 x 47
        lines = [b"GET /x HTTP/1.1", b"Host: h", *(x for x in (a, b) if x is not None)]
        for end in ENDS:
            same(end.join(lines) + end + end + b"tail")


def test_fast_reader_declines_what_it_cannot_judge() -> None:
    """None, not a guess: the line walk answers these (400, 405, 501, a
    head not complete, another shape)."""
    for data in [
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        b"GET /../a HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nX_Y: a\r\nHost: a\r\n\r\n",
    ]:
        assert read_head(data, 0) is None, data


def test_fast_head_is_the_dataclass_head() -> None:
    """The head made without __init__ has every field RequestHead's own
    construction gives (a field added later must be set by read_head too)."""
    data = b"GET /a/%62/../c?q=1 HTTP/1.1\r\nHost: H.example\r\nX-A:  1 \r\nUpgrade: websocket\r\n\r\n"
    got = read_head(data, 0)
    assert got is not None
    head, end, length, upgrade, plain = got
    want = RequestHead("GET", "/a/%62/../c?q=1", "1.1", [("Host", "H.example"), ("X-A", "1"), ("Upgrade", "websocket")],
                       True)
    assert head == want and vars(head) == vars(want)
    assert (end, length, upgrade, plain) == (len(data), 0, True, True)
    assert head.path == "/a/c" and head.args == "q=1" and head.header("x-a") == "1"
