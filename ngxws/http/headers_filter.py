"""The header filter of ngx_http_headers_module: ``expires`` and
``add_header`` applied to a response head about to be sent.

Pure: given the location's ``HeadersConf``, the status, the headers the
response already carries and a way to render variables, it returns the
headers to send.  Called for every response nginx's header filter would
see for the main request: static files, ``return``, error pages,
redirects and proxied responses.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Sequence

from ngxws.config.headers import Expires, HeadersConf, parse_expires
from ngxws.sinks.timefmt import http_date

__all__ = ["SAFE_STATUSES", "apply_headers", "labelled", "parse_http_date"]

# ngx_http_headers_filter(): expires, and add_header without "always", only
# for these statuses
SAFE_STATUSES = frozenset({200, 201, 204, 206, 301, 302, 303, 304, 307, 308})

_EPOCH = "Thu, 01 Jan 1970 00:00:01 GMT"
_MAX = "Thu, 31 Dec 2037 23:55:55 GMT"
# add_header names nginx sets in place of the response's own header
# (ngx_http_set_last_modified, ngx_http_set_response_header)
_REPLACING = ("last-modified", "etag")


def parse_http_date(value: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT")))
    except ValueError:
        return None


def labelled(conf: HeadersConf, status: int, content_type: str | None) -> str | None:
    """``charset``: the Content-Type with ``; charset=X`` added, as
    ngx_http_charset_header_filter() + ngx_http_header_filter() write it --
    only for a bare type in ``charset_types`` (a type with parameters, a
    charset of its own included, is sent as it is), never on a 301/302
    (ngx_http_set_charset)."""
    charset = conf.charset
    if charset is None or not content_type or status in (301, 302):
        return content_type
    if ";" in content_type or " " in content_type:
        return content_type
    types = conf.charset_types
    if content_type.lower() not in types and "*" not in types:
        return content_type
    return f"{content_type}; charset={charset}"


def _next_time(seconds: int, now: float) -> int:
    """ngx_next_time(): the next local time of day ``seconds`` after midnight."""
    local = time.localtime(now)
    at = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, seconds // 3600,
                      seconds // 60 % 60, seconds % 60, 0, 0, -1))  # fmt: skip
    if at > now:
        return int(at)
    return int(time.mktime((local.tm_year, local.tm_mon, local.tm_mday + 1, seconds // 3600,
                            seconds // 60 % 60, seconds % 60, 0, 0, -1)))  # fmt: skip


def _set_expires(out: list[tuple[str, str]], pair: tuple[str, str]) -> list[tuple[str, str]]:
    """ngx_http_set_expires(): the Expires r->headers_out points to (the
    last one copied) and the first Cache-Control take the new values where
    they stand, the other Cache-Control lines go; missing ones are added."""
    exp = next((i for i in range(len(out) - 1, -1, -1) if out[i][0].lower() == "expires"), None)
    if exp is None:
        out.append(("Expires", pair[0]))
    else:
        out[exp] = ("Expires", pair[0])
    cc = next((i for i, (n, _) in enumerate(out) if n.lower() == "cache-control"), None)
    if cc is None:
        return [*out, ("Cache-Control", pair[1])]
    out[cc] = ("Cache-Control", pair[1])
    return [h for i, h in enumerate(out) if i == cc or h[0].lower() != "cache-control"]


def _expires(conf: Expires, render: Callable[[str], str], now: float,
             last_modified: float | None) -> tuple[str, str] | None:  # fmt: skip
    """ngx_http_set_expires(): (Expires, Cache-Control), None to add nothing."""
    if conf.template is not None:
        parsed = parse_expires(render(conf.template), conf.kind == "modified")
        if isinstance(parsed, str) or parsed.kind == "off":
            return None
        conf = parsed
    if conf.kind == "epoch":
        return _EPOCH, "no-cache"
    if conf.kind == "max":
        return _MAX, "max-age=315360000"
    if conf.seconds == 0 and conf.kind != "daily":
        return http_date(now), "max-age=0"
    whole = int(now)
    if conf.kind == "daily":
        at = _next_time(conf.seconds, whole)
        max_age = at - whole
    elif conf.kind == "access" or last_modified is None:
        at, max_age = whole + conf.seconds, conf.seconds
    else:
        at = int(last_modified) + conf.seconds
        max_age = at - whole
    cache = "no-cache" if conf.seconds < 0 or max_age < 0 else f"max-age={max_age}"
    return http_date(at), cache


def apply_headers(
    conf: HeadersConf,
    status: int,
    headers: Sequence[tuple[str, str]],
    render: Callable[[str], str],
    *,
    now: float | None = None,
    slot_last_modified: bool = True,
) -> list[tuple[str, str]]:
    """The headers to send: ``headers`` with Expires/Cache-Control set by
    ``expires`` and ``add_header``'s lines added (empty values add nothing).
    An ``add_header`` ETag or Last-Modified replaces the value where the
    header stands (ngx_http_set_response_header), except a Last-Modified
    nginx keeps in its own slot (``slot_last_modified``: a file's, not an
    upstream's), which becomes a new line of the list."""
    out = list(headers)
    if not conf.active:
        return out
    if conf.charset is not None:
        out = [(n, labelled(conf, status, v) or v) if n.lower() == "content-type" else (n, v) for n, v in out]
    safe = status in SAFE_STATUSES
    clock = time.time() if now is None else now
    if conf.expires is not None and safe:
        lm = next((parse_http_date(v) for n, v in out if n.lower() == "last-modified"), None)
        pair = _expires(conf.expires, render, clock, lm)
        if pair is not None:
            out = _set_expires(out, pair)
    for name, template, always in conf.add:
        if not safe and not always:
            continue
        value = render(template)
        if not value:
            continue
        low = name.lower()
        if low in _REPLACING:
            at = next((i for i, (n, _) in enumerate(out) if n.lower() == low), None)
            if at is not None and not (low == "last-modified" and slot_last_modified):
                out[at] = (name, value)
                continue
            out = [(n, v) for n, v in out if n.lower() != low]
        out.append((name, value))
    return out
