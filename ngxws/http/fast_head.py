"""A whole request head of the common shape, read in one go.

``http.parser`` reads a head line by line, as ngx_http_parse_request_line()
and ngx_http_parse_header_line() do, and calls the protocol once per line:
some 80 Python calls for a browser's upgrade request.  Most heads have one
shape: an origin-form request line of HTTP/1.0 or 1.1 and header lines of
token names whose values hold no NUL, all in the data at hand.  For those,
``read_head`` does what the line walk would do with one call of
``scan_head`` (``_head.c``; ``py_scan_head``, a few regexes and one decode
of the header block, without the extension), and builds the
``RequestHead`` and the facts of ngx_http_process_request_header() itself.

It answers only what it is sure of: anything else -- another shape, a head
not complete yet, a name twice, Transfer-Encoding, a head nginx refuses
(no Host on HTTP/1.1, a bad Host or Content-Length, CONNECT/TRACE, a URI
above the root) -- is None, and the parser's line walk reads it from the
same bytes, as before.  tests/test_fast_head.py checks over a corpus that
every head read here is the one the line walk delivers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from operator import itemgetter

from ngxws.http.head_facts import content_length_value
from ngxws.http.request import _PLAIN_HOST, BadRequest, RequestHead, normalise_uri, valid_host

# The parser's _FAST_REQUEST_LINE, then _FAST_HEADER_BLOCK, then the empty
# line: the lines the parser accepts whole without its per-byte scans.
_HEAD = re.compile(
    rb"([A-Z]+) (/[!-~\x80-\xff]*) HTTP/1\.([01])\r?\n((?:[A-Za-z0-9-]+:[^\x00\r\n]*\r?\n)*)\r?\n"
)
# one header line of the block, decoded: the value without the spaces
# around it (the parser's value.strip(b" "))
_PAIR = re.compile(r"([A-Za-z0-9-]+): *((?:[^\x00\r\n]*[^\x00\r\n ])?) *\r?\n")
# the names of the lower-cased block, in the same order
_NAME = re.compile(r"^[a-z0-9-]+(?=:)", re.MULTILINE)

# the headers HeadFacts acts on, by what the fast reader does with them
_HANDLED = frozenset({"host", "content-length", "connection", "upgrade"})
_UNIQUE_PLAIN = frozenset({  # UNIQUE_HEADERS whose one occurrence is just passed on
    "if-modified-since", "if-unmodified-since", "if-match", "if-none-match", "content-range", "if-range",
    "authorization",
})
_LOOKED_AT = _HANDLED | _UNIQUE_PLAIN | {"transfer-encoding", "expect"}

# the common methods and Connection values, without a decode or lower()
_METHODS = {m.encode(): m for m in ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH")}
_CONNECTION = {"close": 1, "Close": 1, "keep-alive": 2, "Keep-Alive": 2, "upgrade": 0, "Upgrade": 0}

_value = itemgetter(1)
_new = object.__new__


def read_head(buf: bytes, pos: int) -> tuple[RequestHead, int, int, bool, bool] | None:
    """The request head at ``buf[pos:]``, when it has the common shape and
    nginx takes it: (head, index after it, Content-Length (0: none),
    Upgrade asked, plain); None for the parser's line walk.

    ``head.keep_alive`` is what ngx_http_handler() decides.  ``plain``: no
    Content-Length and no Expect -- no body, no ``100 Continue``, so the
    body plan (``body_plan_for``) has nothing to decide."""
    got = scan_head(buf, pos)
    if got is None:
        return None  # another shape, not complete, or a name twice (a unique one is a 400)
    method, uri, http11, headers, index, end = got
    keep = http11  # ngx_http_handler(): by the version, unless Connection says
    length = 0
    plain = True
    upgrade = False
    host = False
    for key in _LOOKED_AT.intersection(index):
        if key == "host":
            value = index[key]
            if not (_PLAIN_HOST.fullmatch(value) or valid_host(value)):  # valid_host()'s own first test
                return None  # "client sent invalid host header"
            host = True
        elif key == "content-length":
            length = content_length_value(index[key].encode("latin-1"))
            plain = False
            if length < 0:
                return None  # invalid "Content-Length" header
        elif key == "connection":
            value = index[key]
            said = _CONNECTION[value] if value in _CONNECTION else _connection(value)
            if said:
                keep = said == 2
        elif key == "upgrade":
            upgrade = True
        elif key == "expect":
            plain = False
        elif key not in _UNIQUE_PLAIN:
            return None  # Transfer-Encoding
    if (not host and http11) or method in ("CONNECT", "TRACE"):
        return None  # a 400 or a 405
    raw_path, sep, query = uri.partition("?") if "?" in uri else (uri, "", "")
    if "%" in raw_path or "//" in raw_path or "/." in raw_path:
        try:
            path = normalise_uri(raw_path)
        except BadRequest:
            return None  # ngx_http_process_request_uri(): a 400
    else:
        path = raw_path  # what normalise_uri() answers for it: a "/" first, no NUL (_HEAD)
    # the RequestHead __post_init__ makes of an origin-form target, made here
    head: RequestHead = _new(RequestHead)
    head.method = method
    head.target = head.request_uri = uri
    head.version = "1.1" if http11 else "1.0"
    head.headers = headers
    head.keep_alive = keep
    head.path = path
    head.args = query if sep else None
    head.uri_host = head.client_uri = None
    head._index = index
    return head, end, length, upgrade, plain


def py_scan_head(buf: bytes, pos: int) -> tuple[str, str, bool, list[tuple[str, str]], dict[str, str], int] | None:
    """The common shape at ``buf[pos:]``: (method, target, HTTP/1.1?, the
    header pairs, {lower-cased name: value}, index after the head); None for
    another shape, a head not complete, or a name that comes twice.  The
    reference of ``_head.scan_head`` (C), and what runs without it."""
    m = _HEAD.match(buf, pos)
    if m is None:
        return None
    method, target, minor, block = m.groups()
    text = block.decode("latin-1")
    headers: list[tuple[str, str]] = _PAIR.findall(text)
    index = dict(zip(_NAME.findall(text.lower()), map(_value, headers), strict=True))
    if len(index) != len(headers):
        return None
    meth = _METHODS[method] if method in _METHODS else method.decode("latin-1")
    return meth, target.decode("latin-1"), minor == b"1", headers, index, m.end()


scan_head: Callable[[bytes, int], tuple[str, str, bool, list[tuple[str, str]], dict[str, str], int] | None]
try:
    from ngxws.http._head import scan_head
except ImportError:  # optional: setup.py builds it when a compiler is there
    scan_head = py_scan_head
else:
    if os.environ.get("NGXWS_NO_SPEEDUPS", "") not in ("", "0"):  # as ngxws.ws.frames
        scan_head = py_scan_head


def _connection(value: str) -> int:
    """HeadFacts' reading of Connection: 1 close, 2 keep-alive, else 0."""
    low = value.lower()
    return 1 if "close" in low else 2 if "keep-alive" in low else 0
