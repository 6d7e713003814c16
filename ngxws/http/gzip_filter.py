"""The gzip filter (ngx_http_gzip_filter_module) and ngx_http_gzip_ok(),
pure: what a response head becomes when ``gzip`` is on, and the bytes of
its body.

Per response, in nginx's order: ``eligible`` is the header filter's first
test (status 200/403/404, no Content-Encoding yet, a length unknown or at
least ``gzip_min_length``, a type in ``gzip_types``); an eligible response
gets ``Vary: Accept-Encoding`` under ``gzip_vary on`` whatever comes next
(r->gzip_vary).  ``accepted`` is ngx_http_gzip_ok() for the request:
Accept-Encoding, ``gzip_disable msie6``, ``gzip_http_version``,
``gzip_proxied`` (only for a request with Via) and the ``gzip_disable``
regexes.  A compressed response's head: Content-Length and Accept-Ranges
cleared (so no range is served), a strong ETag weakened, ``Content-Encoding:
gzip`` pushed last onto the list (the headers filter, add_header's lines,
ran before it).

The body: zlib's gzip stream (nginx 1.22 asks deflateInit2() for wbits + 16:
zlib writes the 10-byte header -- mtime 0, OS 3 -- and the crc32/size
trailer), level ``gzip_comp_level``, window and memory level reduced for a
small known length as ngx_http_gzip_filter_memory() does.  Python's zlib is
the same system library nginx links, and deflate's output does not depend
on how its input is split while nothing is flushed, so feeding the same
bytes gives the same bytes.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence

from ngxws.config.gzip import GzipConf
from ngxws.http.headers_filter import parse_http_date
from ngxws.http.request import RequestHead

__all__ = [
    "GzipStream",
    "accepted",
    "accepts_gzip",
    "compressed_headers",
    "eligible",
    "gzip_body",
    "is_msie6",
    "memory",
]

_STATUSES = frozenset({200, 403, 404})
_VERSIONS = {"0.9": 9, "1.0": 1000, "1.1": 1001}


def _content_type(value: str | None) -> str:
    """The type ngx_http_test_content_type() looks up, lower case: the
    value up to the ``;`` of a ``charset=`` parameter (content_type_len as
    ngx_http_upstream_copy_content_type() and the charset filter leave
    it), else the whole value."""
    if not value:
        return ""
    at = value.find(";")
    while at >= 0:
        rest = value[at + 1 :].lstrip(" ")
        if not rest:
            break
        if rest[:8].lower() == "charset=":
            return value[:at].lower()
        at = value.find(";", at + 1)
    return value.lower()


def eligible(conf: GzipConf, status: int, content_type: str | None, length: int, encoded: bool = False) -> bool:
    """ngx_http_gzip_header_filter()'s first test (``length`` -1: unknown;
    ``encoded``: the response carries a non-empty Content-Encoding)."""
    if not conf.enabled or status not in _STATUSES or encoded:
        return False
    if length != -1 and length < conf.min_length:
        return False
    if conf.types is None:  # "gzip_types *"
        return True
    return bool(content_type) and _content_type(content_type) in conf.types


def accepts_gzip(value: str) -> bool:
    """The Accept-Encoding test of ngx_http_gzip_ok(): the "gzip," fast
    path, then ngx_http_gzip_accept_encoding() (q=0 and anything it cannot
    read decline)."""
    if len(value) < 4:
        return False
    if value.startswith("gzip,"):
        return True
    low = value.lower()
    start = 0
    while True:
        p = low.find("gzip", start)
        if p < 0:
            return False
        if p == start or low[p - 1] in ", ":  # at the start of what is left to search, as nginx
            break
        start = p + 4
    i, last = p + 4, len(value)
    while i < last:
        c = value[i]
        i += 1
        if c == ",":
            return True
        if c == ";":
            break
        if c != " ":
            return False
    else:
        return True
    while i < last:  # quantity: " q"
        c = value[i]
        i += 1
        if c in "qQ":
            break
        if c != " ":
            return False
    else:
        return True
    if i + 2 > last or value[i] != "=":
        return False
    return _quantity(value, i + 1) != 0


def _quantity(value: str, i: int) -> int:
    """ngx_http_gzip_quantity(): q in thousandths-ish, 0 when invalid."""
    last = len(value)
    c = value[i]
    i += 1
    if c not in "01":
        return 0
    q = (ord(c) - 48) * 100
    if i == last:
        return q
    c = value[i]
    i += 1
    if c in ", ":
        return q
    if c != ".":
        return 0
    n = 0
    while i < last:
        c = value[i]
        i += 1
        if c in ", ":
            break
        if "0" <= c <= "9":
            q += ord(c) - 48
            n += 1
            continue
        return 0
    if q > 100 or n > 3:
        return 0
    return q


def is_msie6(user_agent: str) -> bool:
    """r->headers_in.msie6 as ngx_http_process_user_agent() sets it."""
    at = user_agent.find("MSIE ")
    msie6 = False
    if at >= 0 and at + 7 < len(user_agent) and user_agent[at + 6] == ".":
        major = user_agent[at + 5]
        msie6 = major in "45" or (major == "6" and "SV1" not in user_agent[at + 8 :])
    return msie6 and "Opera" not in user_agent


def _token(lines: Sequence[str], name: str) -> bool:
    """ngx_http_parse_multi_header_lines(): ``name`` as an item of any line."""
    for value in lines:
        items = value.split(",")
        for item in items:
            item = item.lstrip(" ")
            if item[: len(name)].lower() == name and not item[len(name) :].strip(" "):
                return True
    return False


def accepted(conf: GzipConf, head: RequestHead, headers: Sequence[tuple[str, str]], now: float | None = None) -> bool:
    """ngx_http_gzip_ok() for ``head``, given the response's ``headers``
    (Expires, Date, Cache-Control, Last-Modified and ETag matter to
    ``gzip_proxied``)."""
    ae = head.header("accept-encoding")
    if ae is None or not accepts_gzip(ae):
        return False
    ua = head.header("user-agent")
    if conf.disable_msie6 and ua is not None and is_msie6(ua):
        return False
    if _VERSIONS.get(head.version, 0) < _VERSIONS[conf.http_version]:
        return False
    if head.header("via") is not None and not _proxied_ok(conf.proxied, head, headers, now):
        return False
    if conf.disable and ua is not None:
        return not any(regex.search(ua) for regex in conf.disable)
    return True


def _proxied_ok(p: frozenset[str], head: RequestHead, headers: Sequence[tuple[str, str]], now: float | None) -> bool:
    if "off" in p:
        return False
    if "any" in p or ("auth" in p and head.header("authorization") is not None):
        return True
    names: dict[str, str] = {}
    cache_control: list[str] = []
    for name, value in headers:
        low = name.lower()
        if low == "cache-control":
            cache_control.append(value)
        else:
            names.setdefault(low, value)
    expires = names.get("expires")
    if expires is not None:
        if "expired" not in p:
            return False
        at = parse_http_date(expires)
        if at is None:
            return False
        date = names.get("date")
        then = (time.time() if now is None else now) if date is None else parse_http_date(date)
        return then is not None and at < then
    if cache_control:
        return any(word in p and _token(cache_control, word) for word in ("no-cache", "no-store", "private"))
    if "no_last_modified" in p and "last-modified" in names:
        return False
    return not ("no_etag" in p and "etag" in names)


def compressed_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The head of a compressed response: ngx_http_clear_content_length(),
    ngx_http_clear_accept_ranges(), ngx_http_weak_etag() (an unquoted ETag
    is dropped), then ``Content-Encoding: gzip`` pushed onto the list."""
    out: list[tuple[str, str]] = []
    etag_seen = False
    for name, value in headers:
        low = name.lower()
        if low in ("content-length", "accept-ranges"):
            continue
        if low == "etag" and not etag_seen:
            etag_seen = True
            if not (len(value) > 2 and value.startswith("W/")):
                if not value.startswith('"'):
                    continue
                value = "W/" + value
        out.append((name, value))
    out.append(("Content-Encoding", "gzip"))
    return out


def memory(conf: GzipConf, length: int) -> tuple[int, int]:
    """ngx_http_gzip_filter_memory(): window bits and memory level, smaller
    for a small known length ("the actual zlib window size is smaller by
    262 bytes")."""
    wbits, memlevel = conf.wbits, conf.memlevel
    if length > 0:
        while length < (1 << (wbits - 1)) - 262:
            wbits -= 1
            memlevel -= 1
        memlevel = max(memlevel, 1)
    return wbits, memlevel


class GzipStream:
    """One response's deflate stream, fed as the body comes.  ``flush``
    each piece (nginx's Z_SYNC_FLUSH for a buffer marked flush:
    ``proxy_buffering off``)."""

    __slots__ = ("_z", "_flush")

    def __init__(self, conf: GzipConf, length: int, flush: bool = False) -> None:
        wbits, memlevel = memory(conf, length)
        self._z = zlib.compressobj(conf.level, zlib.DEFLATED, wbits + 16, memlevel)
        self._flush = flush

    def compress(self, data: bytes) -> bytes:
        out = self._z.compress(data)
        if self._flush and data:
            out += self._z.flush(zlib.Z_SYNC_FLUSH)
        return out

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


def gzip_body(conf: GzipConf, body: bytes) -> bytes:
    """A whole in-memory body (its length is the Content-Length nginx knew)."""
    stream = GzipStream(conf, len(body))
    return stream.compress(body) + stream.finish()


def decide(
    conf: GzipConf, head: RequestHead, status: int, headers: Sequence[tuple[str, str]], length: int,
    encoded: bool = False, tested: bool | None = None,
) -> tuple[bool, GzipConf | None]:
    """The header filter's verdict on a response (its Content-Type is the
    first in ``headers``): whether ``Vary: Accept-Encoding`` is written, and
    the settings to compress it with (None: sent as it is).  ``tested``:
    ngx_http_gzip_ok()'s answer when it was asked before (by gzip_static:
    nginx keeps the first answer, r->gzip_tested)."""
    ctype = next((value for name, value in headers if name.lower() == "content-type"), None)
    if not eligible(conf, status, ctype, length, encoded):
        return False, None
    ok = accepted(conf, head, headers) if tested is None else tested
    return conf.vary, conf if ok else None
