"""The client request reader: nginx 1.22's own grammar, without I/O.

ngxws used llhttp (httptools) for client requests, and llhttp is both
stricter and more lenient than nginx: it refused heads nginx serves (bare
LF line ends, header names with bytes outside the token set) and let
through what nginx refuses (userinfo in an absolute-form target, an empty
Host, ``Transfer-Encoding: identity, chunked``, TE on HTTP/1.0, CONNECT),
and it tunnelled an upgrade request's body instead of reading it.  This
module reads requests the way ``ngx_http_parse.c`` and
``ngx_http_request.c`` do, and keeps httptools' calling convention
(``feed_data`` calling ``on_message_begin``, ``on_url``, ``on_header``,
``on_headers_complete``, ``on_body``, ``on_message_complete`` on the
protocol) so the connection code did not have to change shape.

Theory of operation.  ``feed_data`` consumes bytes as they come:

- *head*: line by line.  The request line is checked by
  ``scan_request_line`` (a port of ngx_http_parse_request_line), each
  header line by ``scan_header_line`` (ngx_http_parse_header_line).  Both
  are per-byte ports run on the rare line that the fast regexes below do
  not accept whole; both answer "need more" for an incomplete line, so an
  invalid byte is answered at once, as nginx does, without waiting for
  the rest of the head.  Header lines are judged in order like
  ngx_http_process_request_headers(): invalid names are ignored (not
  forwarded), a second Host or unique header is a 400.  At the end of the
  head ngx_http_process_request_header()'s checks run (``head_verdict``).
- *body*: ``Content-Length`` bytes, or chunks read by ``ChunkedReader``
  (ngx_http_parse_chunked).  A malformed body raises ``ParseError`` before
  the request is complete, so nothing of it reaches an upstream.
- *upgrade*: a request with an ``Upgrade`` header (nginx tunnels when the
  upstream answers 101 to such a request) raises ``UpgradeRequest`` after
  its body, with the offset in the last data where the tunnel's bytes
  begin (httptools' ``HttpParserUpgrade`` convention).

Errors raise ``ParseError(status)``; exceptions from the callbacks go
through untouched.
"""

from __future__ import annotations

import re
from typing import Protocol

from ngxws.http.fast_head import read_head
from ngxws.http.head_facts import (  # noqa: F401 (the parser's names, re-exported)
    MAX_OFF_T,
    UNIQUE_HEADERS,
    WATCHED,
    HeadFacts,
    content_length_value,
    head_verdict,
    keep_alive,
)
from ngxws.http.request import BadRequest, RequestHead, normalise_uri, valid_host

AGAIN = -1  # the line is a valid prefix: more bytes are needed
DONE = 1  # scan_header_line: the empty line that ends the head


class ParseError(BadRequest):
    """The request is malformed; ``status`` is nginx's answer, sent without
    a head when ``http09`` (the request line said no version)."""

    http09 = False


class UpgradeRequest(Exception):
    """The request is complete and asks for an upgrade; ``args[0]`` is the
    offset in the data last fed where the other protocol's bytes begin."""


class RequestProtocol(Protocol):
    def on_message_begin(self) -> None: ...
    def on_url(self, url: bytes) -> None: ...
    def on_header(self, name: bytes, value: bytes) -> None: ...
    def on_headers_complete(self) -> None: ...
    def on_body(self, body: bytes) -> None: ...
    def on_message_complete(self) -> None: ...


class HeadProtocol(RequestProtocol, Protocol):
    """A protocol given a head of the common shape whole (``RequestParser(heads=True)``):
    ``on_request_head`` stands for on_message_begin, on_url, on_header... and
    on_headers_complete; ``plain``: no Content-Length, no Expect -- the
    request has no body and is complete: no on_message_complete follows."""

    def on_request_head(self, head: RequestHead, plain: bool) -> None: ...


# -- the request line -------------------------------------------------------

# The common shape, accepted whole without the per-byte scan (the scan
# accepts every line this matches, with the same fields).
_FAST_REQUEST_LINE = re.compile(rb"([A-Z]+) (/[!-~\x80-\xff]*) HTTP/1\.([01])\r?\n")
_FAST_HEADER_LINE = re.compile(rb"([A-Za-z0-9-]+):([^\x00\r\n]*)\r?\n")
_FAST_HEADER_BLOCK = re.compile(rb"(?:[A-Za-z0-9-]+:[^\x00\r\n]*\r?\n)*")
_FAST_HEADER_PAIRS = re.compile(rb"([A-Za-z0-9-]+):([^\x00\r\n]*)\r?\n")


class RequestLine:
    __slots__ = ("method", "target", "major", "minor", "end", "host")

    def __init__(self, method: bytes, target: bytes, major: int, minor: int, end: int, host: bytes | None) -> None:
        self.method = method
        self.target = target  # from the scheme (absolute-form) or the first "/"
        self.major = major
        self.minor = minor
        self.end = end  # index after the line's LF
        self.host = host  # absolute-form's host, None otherwise

    @property
    def version(self) -> int:
        """nginx's http_version: major * 1000 + minor (9 for HTTP/0.9)."""
        return self.major * 1000 + self.minor


def _alpha(ch: int) -> bool:
    return 0x61 <= (ch | 0x20) <= 0x7A


def _digit(ch: int) -> bool:
    return 0x30 <= ch <= 0x39


_IP_LITERAL = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-._~!$&'()*+,;=")
_HOST = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-")


def scan_request_line(buf: bytes, start: int = 0) -> tuple[int, RequestLine | None]:
    """ngx_http_parse_request_line() on ``buf[start:]`` (leading CR/LF
    already skipped).  Returns (0, line), (AGAIN, None) for a valid
    prefix, or (400 | 505, None)."""
    m = _FAST_REQUEST_LINE.match(buf, start)
    if m is not None:
        return 0, RequestLine(m.group(1), m.group(2), 1, int(m.group(3)), m.end(), None)
    return _scan_request_line(buf, start)


def _scan_request_line(buf: bytes, start: int) -> tuple[int, RequestLine | None]:
    n = len(buf)
    p = start
    # states, in ngx_http_parse_request_line's order
    state = "method"
    method_end = uri_start = uri_end = -1
    schema_start = host_start = host_end = -1
    major = 0
    minor = 9  # no "HTTP/x.y": HTTP/0.9
    while p < n:
        ch = buf[p]
        if state == "method":
            if ch == 0x20:
                if p == start:
                    return 400, None
                method_end = p
                state = "spaces_before_uri"
            elif not (0x41 <= ch <= 0x5A or ch == 0x5F or ch == 0x2D):
                return 400, None
        elif state == "spaces_before_uri":
            if ch == 0x2F:
                uri_start = p
                state = "after_slash_in_uri"
            elif _alpha(ch):
                schema_start = p
                state = "schema"
            elif ch != 0x20:
                return 400, None
        elif state == "schema":
            if ch == 0x3A:
                state = "schema_slash"
            elif not (_alpha(ch) or _digit(ch) or ch in b"+-."):
                return 400, None
        elif state == "schema_slash":
            if ch != 0x2F:
                return 400, None
            state = "schema_slash_slash"
        elif state == "schema_slash_slash":
            if ch != 0x2F:
                return 400, None
            state = "host_start"
        elif state in ("host_start", "host", "host_end"):
            if state == "host_start":
                host_start = p
                if ch == 0x5B:
                    state = "host_ip_literal"
                    p += 1
                    continue
                state = "host"
            if state == "host" and ch in _HOST:
                p += 1
                continue
            host_end = p
            if ch == 0x3A:
                state = "port"
            elif ch == 0x2F:
                uri_start = p
                state = "after_slash_in_uri"
            elif ch == 0x3F:
                uri_start = p
                state = "uri"
            elif ch == 0x20:
                uri_end = p
                state = "http_09"
            else:
                return 400, None
        elif state == "host_ip_literal":
            if ch == 0x5D:
                state = "host_end"
            elif ch not in _IP_LITERAL:
                return 400, None
        elif state == "port":
            if _digit(ch):
                pass
            elif ch == 0x2F:
                uri_start = p
                state = "after_slash_in_uri"
            elif ch == 0x3F:
                uri_start = p
                state = "uri"
            elif ch == 0x20:
                uri_end = p
                state = "http_09"
            else:
                return 400, None
        elif state in ("after_slash_in_uri", "check_uri", "uri"):
            if ch == 0x20:
                uri_end = p
                state = "http_09"
            elif ch == 0x0D:
                uri_end = p
                state = "almost_done"
            elif ch == 0x0A:
                uri_end = p
                return 0, _line(buf, start, method_end, schema_start, uri_start, uri_end, host_start, host_end, 0, 9, p + 1)
            elif ch < 0x20 or ch == 0x7F:
                return 400, None
        elif state == "http_09":
            if ch == 0x20:
                pass
            elif ch == 0x0D:
                state = "almost_done"
            elif ch == 0x0A:
                return 0, _line(buf, start, method_end, schema_start, uri_start, uri_end, host_start, host_end, 0, 9, p + 1)
            elif ch == 0x48:  # H
                state = "H"
            else:
                return 400, None
        elif state in ("H", "HT", "HTT", "HTTP"):
            want, following = {"H": (0x54, "HT"), "HT": (0x54, "HTT"), "HTT": (0x50, "HTTP"), "HTTP": (0x2F, "first_major")}[state]
            if ch != want:
                return 400, None
            state = following
        elif state == "first_major":
            if not (0x31 <= ch <= 0x39):
                return 400, None
            major = ch - 0x30
            if major > 1:
                return 505, None
            state = "major"
        elif state == "major":
            if ch == 0x2E:
                state = "first_minor"
            elif not _digit(ch):
                return 400, None
            else:
                major = major * 10 + ch - 0x30
                if major > 1:
                    return 505, None
        elif state == "first_minor":
            if not _digit(ch):
                return 400, None
            minor = ch - 0x30
            state = "minor"
        elif state == "minor":
            if ch == 0x0D:
                state = "almost_done"
            elif ch == 0x0A:
                return 0, _line(buf, start, method_end, schema_start, uri_start, uri_end, host_start, host_end, major, minor, p + 1)
            elif ch == 0x20:
                state = "spaces_after_digit"
            elif not _digit(ch) or minor > 99:
                return 400, None
            else:
                minor = minor * 10 + ch - 0x30
        elif state == "spaces_after_digit":
            if ch == 0x0D:
                state = "almost_done"
            elif ch == 0x0A:
                return 0, _line(buf, start, method_end, schema_start, uri_start, uri_end, host_start, host_end, major, minor, p + 1)
            elif ch != 0x20:
                return 400, None
        elif state == "almost_done":
            if ch != 0x0A:
                return 400, None
            return 0, _line(buf, start, method_end, schema_start, uri_start, uri_end, host_start, host_end, major, minor, p + 1)
        p += 1
    return AGAIN, None


def _line(
    buf: bytes, start: int, method_end: int, schema_start: int, uri_start: int, uri_end: int,
    host_start: int, host_end: int, major: int, minor: int, end: int,
) -> RequestLine:
    first = schema_start if schema_start >= 0 else uri_start
    host = buf[host_start:host_end] if host_end >= 0 else None
    return RequestLine(buf[start:method_end], buf[first:uri_end], major, minor, end, host)


# -- header lines -------------------------------------------------------------


_TOKEN = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def scan_header_line(buf: bytes, start: int, underscores: bool = False) -> tuple[int, int, bytes, bytes, bool]:
    """ngx_http_parse_header_line() on ``buf[start:]``.

    Returns (status, end, name, value, invalid): status 0 for a header line,
    DONE for the empty line ending the head, AGAIN for a valid prefix, 400;
    ``invalid`` marks a name nginx ignores (ignore_invalid_headers on):
    a byte outside the token set, or ``_`` unless ``underscores``."""
    m = _FAST_HEADER_LINE.match(buf, start)
    if m is not None:
        return 0, m.end(), m.group(1), m.group(2).strip(b" "), False
    n = len(buf)
    p = start
    if p >= n:
        return AGAIN, start, b"", b"", False
    ch = buf[p]
    if ch == 0x0A:
        return DONE, p + 1, b"", b"", False
    if ch == 0x0D:
        if p + 1 >= n:
            return AGAIN, start, b"", b"", False
        return (DONE, p + 2, b"", b"", False) if buf[p + 1] == 0x0A else (400, p, b"", b"", False)
    if ch <= 0x20 or ch == 0x7F or ch == 0x3A:
        return 400, p, b"", b"", False
    invalid = False
    name_end = -1
    value_start = value_end = -1
    state = "name"
    while p < n:
        ch = buf[p]
        if state == "name":
            if ch in _TOKEN:
                pass
            elif ch == 0x5F:
                invalid = invalid or not underscores
            elif ch == 0x3A:
                name_end = p
                state = "space_before_value"
            elif ch == 0x0D:
                name_end = value_start = value_end = p
                state = "almost_done"
            elif ch == 0x0A:
                return 0, p + 1, buf[start:p], b"", invalid
            elif ch <= 0x20 or ch == 0x7F:
                return 400, p, b"", b"", False
            else:
                invalid = True
        elif state == "space_before_value":
            if ch == 0x20:
                pass
            elif ch == 0x0D:
                value_start = value_end = p
                state = "almost_done"
            elif ch == 0x0A:
                return 0, p + 1, buf[start:name_end], b"", invalid
            elif ch == 0x00:
                return 400, p, b"", b"", False
            else:
                value_start = p
                state = "value"
        elif state == "value":
            if ch == 0x20:
                value_end = p
                state = "space_after_value"
            elif ch == 0x0D:
                value_end = p
                state = "almost_done"
            elif ch == 0x0A:
                return 0, p + 1, buf[start:name_end], buf[value_start:p], invalid
            elif ch == 0x00:
                return 400, p, b"", b"", False
        elif state == "space_after_value":
            if ch == 0x20:
                pass
            elif ch == 0x0D:
                state = "almost_done"
            elif ch == 0x0A:
                return 0, p + 1, buf[start:name_end], buf[value_start:value_end], invalid
            elif ch == 0x00:
                return 400, p, b"", b"", False
            else:
                state = "value"
        elif state == "almost_done":
            if ch == 0x0A:
                return 0, p + 1, buf[start:name_end], buf[value_start:value_end], invalid
            if ch != 0x0D:
                return 400, p, b"", b"", False
        p += 1
    return AGAIN, start, b"", b"", False


# -- chunked bodies -------------------------------------------------------------


class ChunkedReader:
    """ngx_http_parse_chunked(): yields the data of a chunked body, refuses
    what nginx refuses (the chunk size is hex digits, at most ngx_off_t;
    lines end in LF or CRLF; extensions and trailers are skipped)."""

    __slots__ = ("state", "size")

    def __init__(self) -> None:
        self.state = "chunk_start"
        self.size = 0

    def feed(self, buf: bytes, pos: int, out: list[bytes]) -> tuple[int, bool]:
        """Read from ``buf[pos:]``, appending data to ``out``; returns (new
        position, body complete).  Raises ParseError(400)."""
        n = len(buf)
        state = self.state
        while pos < n:
            if state == "chunk_data":
                take = min(self.size, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self.size -= take
                if self.size == 0:
                    state = "after_data"
                continue
            ch = buf[pos]
            pos += 1
            if state == "chunk_start":
                d = _hexval(ch)
                if d < 0:
                    raise ParseError(400, "client sent invalid chunked body")
                self.size = d
                state = "chunk_size"
            elif state == "chunk_size":
                if self.size > MAX_OFF_T // 16:
                    raise ParseError(400, "client sent invalid chunked body")
                d = _hexval(ch)
                if d >= 0:
                    self.size = self.size * 16 + d
                    continue
                last = self.size == 0
                if ch == 0x0D:
                    state = "last_ext_cr" if last else "ext_cr"
                elif ch == 0x0A:
                    state = "trailer" if last else "chunk_data"
                elif ch in (0x3B, 0x20, 0x09):
                    state = "last_ext" if last else "ext"
                else:
                    raise ParseError(400, "client sent invalid chunked body")
                if state == "chunk_data" and self.size > MAX_OFF_T - 5:
                    raise ParseError(400, "client sent invalid chunked body")
            elif state in ("ext", "last_ext"):
                if ch == 0x0D:
                    state = state + "_cr"
                elif ch == 0x0A:
                    state = "chunk_data" if state == "ext" else "trailer"
            elif state in ("ext_cr", "last_ext_cr"):
                if ch != 0x0A:
                    raise ParseError(400, "client sent invalid chunked body")
                state = "chunk_data" if state == "ext_cr" else "trailer"
            elif state == "after_data":
                if ch == 0x0D:
                    state = "after_data_cr"
                elif ch == 0x0A:
                    state = "chunk_start"
                else:
                    raise ParseError(400, "client sent invalid chunked body")
            elif state == "after_data_cr":
                if ch != 0x0A:
                    raise ParseError(400, "client sent invalid chunked body")
                state = "chunk_start"
            elif state == "trailer":
                if ch == 0x0D:
                    state = "trailer_cr"
                elif ch == 0x0A:
                    self.state = "chunk_start"
                    return pos, True
                else:
                    state = "trailer_header"
            elif state == "trailer_cr":
                if ch != 0x0A:
                    raise ParseError(400, "client sent invalid chunked body")
                self.state = "chunk_start"
                return pos, True
            elif state == "trailer_header":
                if ch == 0x0D:
                    state = "trailer_header_cr"
                elif ch == 0x0A:
                    state = "trailer"
            elif state == "trailer_header_cr":
                if ch != 0x0A:
                    raise ParseError(400, "client sent invalid chunked body")
                state = "trailer"
            if state == "chunk_data" and self.size == 0:
                state = "after_data"
        self.state = state
        return pos, False


def _hexval(ch: int) -> int:
    if 0x30 <= ch <= 0x39:
        return ch - 0x30
    c = ch | 0x20
    if 0x61 <= c <= 0x66:
        return c - 0x61 + 10
    return -1


# -- the reader -------------------------------------------------------------------


class RequestParser:
    """Client requests, one after another, in nginx's grammar; httptools'
    ``HttpRequestParser`` interface (see the module docstring)."""

    __slots__ = (
        "proto", "underscores", "_buf", "_state", "_line", "_facts", "_keep",
        "_remaining", "_chunked", "_heads", "_upgrade",
    )
    _facts: HeadFacts  # the head being read line by line: made by _begin, before any line


    def __init__(self, proto: RequestProtocol, underscores: bool = False, heads: bool = False) -> None:
        """``heads``: ``proto`` is a ``HeadProtocol``, given a head of the
        common shape whole (``fast_head``) instead of line by line."""
        self.proto = proto
        self.underscores = underscores
        self._buf = b""
        self._state = "request_line"
        self._line: RequestLine | None = None
        self._heads = heads
        self._upgrade = False  # the request read last asked for an upgrade (HTTP/1.x)
        self._keep = False
        self._remaining = 0
        self._chunked: ChunkedReader | None = None

    # httptools' accessors -------------------------------------------------

    def get_method(self) -> bytes:
        return self._line.method if self._line is not None else b""

    def get_http_version(self) -> str:
        """"1.0" or "1.1" (any HTTP/1.x above 1.0 behaves as 1.1 in nginx), "0.9"."""
        line = self._line
        if line is None or line.major == 0:
            return "0.9"
        return "1.0" if line.minor == 0 else "1.1"

    def should_keep_alive(self) -> bool:
        return self._keep

    # ------------------------------------------------------------------------

    def error_in(self, data: bytes) -> int:
        """Feed ``data``; the status nginx answers if it holds an error, else 0."""
        try:
            self.feed_data(data)
        except BadRequest as exc:
            return exc.status
        except UpgradeRequest:
            pass
        return 0

    def feed_data(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        base = len(buf) - len(data)  # where ``data`` starts in ``buf``
        pos = 0
        n = len(buf)
        proto = self.proto
        if self._state == "failed":
            return  # nothing is read after an error (the connection closes)
        while pos < n:
            state = self._state
            if state == "request_line":
                while pos < n and buf[pos] in (0x0D, 0x0A):
                    pos += 1  # nginx skips empty lines before a request
                if pos == n:
                    break
                fast = read_head(buf, pos) if self._heads else None
                if fast is not None:
                    head, pos, self._remaining, self._upgrade, plain = fast
                    self._line, self._keep = None, head.keep_alive
                    proto.on_request_head(head, plain)  # type: ignore[attr-defined]
                    if self._remaining:
                        self._state = "length"
                        continue
                    if not plain:  # (a plain head is complete with on_request_head)
                        proto.on_message_complete()  # _finish(): the state is request_line, no chunks
                    if self._upgrade:  # _upgrade_after()
                        self._buf = b""
                        raise UpgradeRequest(pos - base if pos > base else 0)
                    continue
                self._line = None
                status, line = scan_request_line(buf, pos)
                if status == AGAIN:
                    break
                if status:
                    self._fail(status)
                assert line is not None
                self._line = line
                if line.major == 0 and line.method != b"GET":
                    self._fail(400)  # "client sent invalid method in HTTP/0.9 request"
                self._begin(line)
                pos = line.end
                if line.major == 0:
                    # HTTP/0.9: no headers, the request is processed at once
                    self._complete_head()
                    self._finish()
                    continue
                self._state = "headers"
            elif state == "headers":
                block = _FAST_HEADER_BLOCK.match(buf, pos)
                if block is not None and block.end() > pos:
                    # common lines, all at once, without the per-byte scan
                    facts = self._facts
                    on_header = proto.on_header
                    for name, value in _FAST_HEADER_PAIRS.findall(buf, pos, block.end()):
                        value = value.strip(b" ")
                        if name.lower() in WATCHED:
                            refused = facts.add(name, value)
                            if refused:
                                self._fail(refused)
                        on_header(name, value)
                    pos = block.end()
                status, end, name, value, invalid = scan_header_line(buf, pos, self.underscores)
                if status == AGAIN:
                    break
                if status == DONE:
                    pos = end
                    if not self._complete_head():
                        self._finish()
                        if self._upgrade_after(pos, base):
                            return
                    continue
                if status:
                    self._fail(status)
                pos = end
                if invalid:
                    continue  # ignore_invalid_headers: dropped, not forwarded
                refused = self._facts.add(name, value)
                if refused:
                    self._fail(refused)
                proto.on_header(name, value)
            elif state == "length":
                take = min(self._remaining, n - pos)
                chunk = buf[pos : pos + take]
                pos += take
                self._remaining -= take
                if chunk:
                    proto.on_body(chunk)
                if self._remaining == 0:
                    self._finish()
                    if self._upgrade_after(pos, base):
                        return
            else:  # chunked
                reader = self._chunked
                assert reader is not None
                out: list[bytes] = []
                try:
                    pos, done = reader.feed(buf, pos, out)
                except ParseError:
                    self._buf = b""
                    self._state = "failed"
                    raise
                finally:
                    for piece in out:
                        if piece:
                            proto.on_body(piece)
                if done:
                    self._finish()
                    if self._upgrade_after(pos, base):
                        return
        self._buf = buf[pos:] if pos < n else b""

    def _begin(self, line: RequestLine) -> None:
        self._facts = HeadFacts()
        self.proto.on_message_begin()
        if line.host is not None and not valid_host(line.host.decode("latin-1")):
            self._fail(400)  # "client sent invalid host in request line"
        target = line.target
        if line.host is not None:
            rest = target.split(b"://", 1)[1][len(line.host) :].lstrip(b"0123456789:")
            path = rest if rest.startswith(b"/") else b"/" + rest
        else:
            path = target
        try:
            normalise_uri(path.split(b"?", 1)[0].decode("latin-1"))
        except BadRequest:
            self._fail(400)  # ngx_http_process_request_uri()
        self.proto.on_url(target)

    def _complete_head(self) -> bool:
        """The head is read: nginx's checks, then on_headers_complete.
        Returns whether a body follows."""
        line = self._line
        assert line is not None
        status, length, chunked = head_verdict(line, self._facts)
        if status:
            self._fail(status)
        self._keep = keep_alive(line, self._facts) and line.major > 0
        self._upgrade = self._facts.upgrade and line.major > 0
        self.proto.on_headers_complete()
        if chunked:
            self._chunked = ChunkedReader()
            self._state = "chunked"
            return True
        if length:
            self._remaining = length
            self._state = "length"
            return True
        return False

    def _finish(self) -> None:
        self._state = "request_line"
        self._chunked = None
        self.proto.on_message_complete()

    def _upgrade_after(self, pos: int, base: int) -> bool:
        """After a complete request with ``Upgrade``: hand the rest over."""
        if not self._upgrade:
            return False
        self._buf = b""
        raise UpgradeRequest(max(pos - base, 0))

    def _fail(self, status: int) -> None:
        self._buf = b""
        self._state = "failed"
        error = ParseError(status)
        error.http09 = self._line is not None and self._line.major == 0
        raise error
