"""An HTTP/1.x request head, as nginx sees it after parsing.

The bytes are read by ``http.parser`` (nginx's grammar) for
``proxy.client``; this module holds what is derived from the head without
I/O: the normalised URI nginx matches locations on and header look-up
(what an ``Upgrade`` header leads to is ``proxy.upgrade``'s).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

# an absolute-form target: nginx accepts any scheme (ngx_http_parse_request_line)
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# names valid_host() accepts without its per-character walk
_PLAIN_HOST = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?(?::[0-9]*)?")


class BadRequest(Exception):
    """The head is unusable; ``status`` is what nginx would answer."""

    def __init__(self, status: int = 400, reason: str = "") -> None:
        super().__init__(reason or str(status))
        self.status = status


def normalise_uri(path: str) -> str:
    """nginx's URI normalisation: %XX decoded, ``//`` merged, ``.``/``..`` resolved.

    A ``..`` that climbs above the root is a 400 in nginx.
    """
    if not path.startswith("/"):
        raise BadRequest(400, "URI does not start with /")
    if "%" in path and _BAD_ESCAPE.search(path):
        raise BadRequest(400, "invalid %-escape in URI")  # ngx_http_parse_complex_uri's sw_quoted
    decoded = unquote(path, errors="surrogateescape") if "%" in path else path
    if "\x00" in decoded:
        raise BadRequest(400, "NUL in URI")
    if "//" not in decoded and "/." not in decoded:
        return decoded
    out: list[str] = []
    parts = decoded.split("/")
    for i, seg in enumerate(parts[1:], start=1):
        last = i == len(parts) - 1
        if seg == "" and not last:
            continue  # merge_slashes on
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if not out:
                raise BadRequest(400, "URI above root")
            out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    return "/" + "/".join(out)


# the line that ends a head: empty but for CRs, after a line end
_BLANK_LINE = re.compile(rb"\n\r*\n")


class HeadBuffers:
    """nginx's header buffers, simulated on the raw bytes of one request head
    (ngx_http_alloc_large_header_buffer), so ngxws refuses exactly the heads
    nginx refuses.

    The head is read into a ``client_header_buffer_size`` buffer (1k); when
    it fills up mid-head, the line being read moves to a fresh large buffer
    (``large_client_header_buffers NUM SIZE``).  A request line that does not
    fit one large buffer is a 414; a header line, or a head needing more
    than NUM large buffers, a 400 ("Request Header Or Cookie Too Large").
    """

    __slots__ = ("num", "size", "cap", "used", "line", "busy", "request_line", "done", "_blank", "at")

    def __init__(self, num: int, size: int, first: int = 1024) -> None:
        self.num = num
        self.size = size
        # reset(first), without the call (one per connection)
        self.cap = first
        self.used = self.line = self.busy = self.at = 0
        self.request_line = self._blank = True
        self.done = False

    def reset(self, first: int = 1024) -> None:
        self.cap = first
        self.used = 0
        self.line = 0  # bytes of the line being read
        self.busy = 0  # large buffers in use
        self.request_line = True
        self.done = False
        self._blank = True  # the line read so far is empty (end of head when it ends)
        self.at = 0  # where in the data fed last the head outgrew the buffers

    def feed(self, data: bytes) -> int:
        """Account for ``data``; 0 while the head fits, else nginx's status."""
        if self.used == 0 and self.request_line and data[:1] not in (b"\r", b"\n"):
            # the common case: a whole head within the first buffer -- where
            # the line walk below would end, found in one search
            m = _BLANK_LINE.search(data, 0, self.cap)
            if m is not None:
                self.used = m.end()
                self.request_line = False
                self.done = True
                return 0
        i = 0
        n = len(data)
        while i < n and not self.done:
            if self.used == self.cap:
                if self.line >= self.size or self.busy >= self.num:
                    self.at = i
                    return 414 if self.request_line else 400
                self.busy += 1
                self.cap = self.size
                self.used = self.line
            room = min(self.cap - self.used, n - i)
            chunk = data[i : i + room]
            nl = chunk.find(b"\n")
            if nl < 0:
                self.used += room
                self.line += room
                if chunk.strip(b"\r"):
                    self._blank = False
                i += room
                continue
            line_part = chunk[:nl]
            self.used += nl + 1
            i += nl + 1
            if self._blank and not line_part.strip(b"\r") and not self.request_line:
                self.done = True
                break
            self.request_line = False
            self.line = 0
            self._blank = True
        return 0


def valid_host(host: str) -> bool:
    """ngx_http_validate_host(): no ``/``, control bytes or spaces, no
    ``..``; a trailing dot and a ``:port`` (or what follows a ``[...]``
    literal) are cut off, and something must remain."""
    if _PLAIN_HOST.fullmatch(host):
        return True
    dot_pos = len(host)
    host_len = len(host)
    state = 0  # 0 usual, 1 in a [literal], 2 the rest (port)
    for i, ch in enumerate(host):
        if ch == ".":
            if dot_pos == i - 1:
                return False
            dot_pos = i
        elif ch == ":":
            if state == 0:
                host_len = i
                state = 2
        elif ch == "[":
            if i == 0:
                state = 1
        elif ch == "]":
            if state == 1:
                host_len = i + 1
                state = 2
        elif ch == "/" or ch <= " " or ch == "\x7f":
            return False
    if dot_pos == host_len - 1:
        host_len -= 1
    return host_len > 0


# names header() is asked for in lower case: no lower() needed
_LOWER_NAMES = frozenset({
    "host", "content-length", "transfer-encoding", "expect", "upgrade", "connection", "content-type",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "sec-websocket-extensions",
    "authorization", "cookie", "user-agent", "referer", "x-forwarded-for", "x-real-ip", "accept-encoding",
    "if-modified-since", "if-unmodified-since", "if-match", "if-none-match", "if-range", "range",
})


@dataclass
class RequestHead:
    """One parsed request head.  ``headers`` keep their order and spelling:
    they are forwarded to the upstream as they came."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    keep_alive: bool
    path: str = ""
    args: str | None = None
    request_uri: str = ""  # $request_uri: the target minus an absolute-form's scheme://host
    uri_host: str | None = None  # the host of an absolute-form target (wins over Host)
    # the client's $request_uri when this head is an internal redirect or a
    # subrequest (nginx never changes r->unparsed_uri)
    client_uri: str | None = None
    _index: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.request_uri = self.target
        if _ABSOLUTE.match(self.target):
            # absolute-form: nginx takes the path part (and the host from it)
            after_scheme = self.target.split("://", 1)[1]
            end = len(after_scheme)
            for stop in "/?":
                at = after_scheme.find(stop)
                if 0 <= at < end:
                    end = at
            self.uri_host = after_scheme[:end] or None
            rest = after_scheme[end:]
            self.request_uri = rest if rest.startswith("/") else "/" + rest
        raw_path, sep, query = self.request_uri.partition("?")
        self.path = normalise_uri(raw_path)
        self.args = query if sep else None
        for name, value in self.headers:
            key = name.lower()
            # nginx keeps the first occurrence for single-value lookups
            self._index.setdefault(key, value)

    def header(self, name: str) -> str | None:
        """Case-insensitive header value (first occurrence)."""
        if name in _LOWER_NAMES:  # the names ngxws asks for, lower-cased already
            return self._index.get(name)
        return self._index.get(name.lower())

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} HTTP/{self.version}"

    @property
    def fails_preconditions(self) -> bool:
        """ngx_http_not_modified_filter on a 200 nginx makes itself (no ETag,
        no Last-Modified): If-Unmodified-Since, or If-Match other than
        ``*``, cannot hold, and the answer is 412."""
        if self._index.get("if-unmodified-since") is not None:
            return True
        match = self._index.get("if-match")
        return match is not None and match != "*"

    @property
    def host(self) -> str | None:
        return self._index.get("host")

    @property
    def header_map(self) -> dict[str, str]:
        """Lower-cased name -> first value; what ``$http_NAME`` reads."""
        return self._index


def valid_websocket_key(key: str) -> bool:
    """A Sec-WebSocket-Key is base64 of 16 bytes (24 characters)."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False
