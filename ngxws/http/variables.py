"""nginx variables beyond the proxy's own (ngx_http_variables.c), for the
one evaluator, ``RequestVariables``: the ones that read request headers by
name (``$cookie_*``, ``$content_length``...), connection facts
(``$connection``, ``$connection_requests``) and the clock (``$msec``,
``$time_iso8601``, ``$time_local``).  No clock and no randomness are read
here: both come in through the evaluator's injected ``clock`` and
``random_hex`` (ngxws.http.upstream_request).
"""

from __future__ import annotations

import socket
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from ngxws.sinks.timefmt import iso8601_local, msec

if TYPE_CHECKING:
    from ngxws.http.upstream_request import RequestVariables

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=1)
def hostname() -> str:
    """``$hostname``: gethostname(), read once as nginx does at start."""
    return socket.gethostname()


def time_local(t: float) -> str:
    """``26/Nov/2026:03:45:00 +0000``: ngx_cached_http_log_time."""
    tm = time.localtime(int(t))
    off = tm.tm_gmtoff // 60
    sign = "-" if off < 0 else "+"
    off = abs(off)
    return (
        f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year:04d}:"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {sign}{off // 60:02d}{off % 60:02d}"
    )


def cookie(v: RequestVariables, name: str) -> str:
    """``$cookie_NAME``: nginx 1.22's ngx_http_parse_multi_header_lines():
    a ``NAME=`` (no regard to case) at the start of the header or after a
    ``;`` or ``,`` (and spaces); its value runs to the next ``;``."""
    wanted = name.lower()
    n = len(wanted)
    for key, value in v.head.headers:
        if key.lower() != "cookie":
            continue
        start, end = 0, len(value)
        while start < end:
            if value[start : start + n].lower() == wanted:
                at = start + n
                while at < end and value[at] == " ":
                    at += 1
                if at < end and value[at] == "=":
                    at += 1
                    while at < end and value[at] == " ":
                        at += 1
                    stop = value.find(";", at)
                    return value[at : stop if stop >= 0 else end]
            while start < end:
                ch = value[start]
                start += 1
                if ch in ";,":
                    break
            while start < end and value[start] == " ":
                start += 1
    return ""


def other_variable(v: RequestVariables, name: str) -> str:
    """The variables the evaluator does not compute itself; ``""`` for
    an unknown one (the loader reports those)."""
    h = v.head
    if name.startswith("cookie_"):
        return cookie(v, name[7:])
    if name == "content_length":
        return h.header("content-length") or ""
    if name == "content_type":
        return h.header("content-type") or ""
    if name == "https":
        return "on" if v.scheme == "https" else ""
    if name == "hostname":
        return hostname()
    if name == "request_id":
        if not v.request_id:
            v.request_id = v.random_hex()
        return v.request_id
    if name == "msec":
        return msec(v.clock())
    if name == "time_iso8601":
        return iso8601_local(v.clock())
    if name == "time_local":
        return time_local(v.clock())
    if name == "connection":
        return str(v.connection)
    if name == "connection_requests":
        return str(v.connection_requests)
    if name == "proxy_port":
        return v.proxy_port
    if name == "status":
        return f"{v.status:03d}"
    if name == "request":
        uri = h.client_uri if h.client_uri is not None else h.target
        return f"{h.method} {uri} HTTP/{h.version}"
    if name == "request_length":
        return ""
    return ""
