"""ngx_http_process_request_header(): what the checks at the end of a
request head need, gathered line by line as ngx_http_process_request_headers()
hands each header line to its handler, and the verdict on the whole head.

Read by ``http.parser``'s line walk and by ``http.fast_head`` (a whole
head of the common shape at once); both give the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.http.request import valid_host

if TYPE_CHECKING:
    from ngxws.http.parser import RequestLine

# ngx_off_t's maximum: Content-Length and chunk sizes above it are refused.
MAX_OFF_T = (1 << 63) - 1

# Headers nginx keeps one of (ngx_http_process_unique_header_line; Host has
# its own handler with the same rule).
UNIQUE_HEADERS = frozenset({
    b"host", b"if-modified-since", b"if-unmodified-since", b"if-match", b"if-none-match",
    b"content-length", b"content-range", b"if-range", b"transfer-encoding", b"expect",
    b"authorization",
})


# Header names HeadFacts.add acts on (any other valid line is just passed on).
WATCHED = UNIQUE_HEADERS | {b"connection", b"upgrade"}


def content_length_value(value: bytes) -> int:
    """ngx_atoof(): decimal digits only, at most ngx_off_t; -1 when invalid."""
    if not value or not value.isdigit() or not value.isascii():
        return -1
    n = int(value)
    return n if n <= MAX_OFF_T else -1


class HeadFacts:
    """What the checks at the end of a head need, gathered line by line."""

    __slots__ = ("host", "content_length", "transfer_encoding", "connection", "upgrade", "seen")

    def __init__(self) -> None:
        self.host: bytes | None = None
        self.content_length: bytes | None = None
        self.transfer_encoding: bytes | None = None
        self.connection = 0  # 0 none, 1 close, 2 keep-alive (ngx_http_process_connection)
        self.upgrade = False
        self.seen: set[bytes] = set()

    def add(self, name: bytes, value: bytes) -> int:
        """One valid header line, as ngx_http_process_request_headers()
        hands it to its handler; a status when nginx refuses it here."""
        key = name.lower()
        if key in UNIQUE_HEADERS:
            if key in self.seen:
                return 400  # "client sent duplicate header line" / "duplicate host header"
            self.seen.add(key)
            if key == b"host":
                if not valid_host(value.decode("latin-1")):
                    return 400
                self.host = value
            elif key == b"content-length":
                self.content_length = value
            elif key == b"transfer-encoding":
                self.transfer_encoding = value
        elif key == b"connection":
            low = value.lower()
            if b"close" in low:
                self.connection = 1
            elif b"keep-alive" in low:
                self.connection = 2
        elif key == b"upgrade":
            self.upgrade = True
        return 0


def head_verdict(line: RequestLine, facts: HeadFacts) -> tuple[int, int, bool]:
    """ngx_http_process_request_header(): (status, body framing, chunked).

    Body framing is the Content-Length (0 without one)."""
    version = line.version
    if facts.host is None and version > 1000:
        return 400, 0, False  # HTTP/1.1 request without "Host" header
    length = 0
    if facts.content_length is not None:
        length = content_length_value(facts.content_length)
        if length < 0:
            return 400, 0, False  # invalid "Content-Length" header
    chunked = False
    if facts.transfer_encoding is not None:
        if version < 1001:
            return 400, 0, False  # HTTP/1.0 request with "Transfer-Encoding"
        if facts.transfer_encoding.lower() != b"chunked":
            return 501, 0, False  # unknown "Transfer-Encoding"
        if facts.content_length is not None:
            return 400, 0, False  # "Content-Length" and "Transfer-Encoding" at the same time
        chunked = True
    if line.method in (b"CONNECT", b"TRACE"):
        return 405, 0, False
    return 0, length, chunked


def keep_alive(line: RequestLine, facts: HeadFacts) -> bool:
    """ngx_http_handler(): Connection: close/keep-alive, else by version."""
    if facts.connection == 1:
        return False
    if facts.connection == 2:
        return True
    return line.version > 1000
