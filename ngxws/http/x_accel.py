"""X-Accel-Redirect's pure parts (the redirect is ngxws.proxy.x_accel's):
what an upstream's redirecting head leaves to the final answer, and
ngx_http_parse_unsafe_uri()'s verdict on the URI."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["COPIED", "Copied", "copied_of", "split_unsafe"]

# ngx_http_upstream_headers_in[] entries whose redirect flag is 1
COPIED = frozenset({"content-type", "set-cookie", "content-disposition", "cache-control", "expires", "accept-ranges"})


@dataclass(frozen=True, slots=True)
class Copied:
    """What the final answer keeps of the redirecting upstream's head:
    its Content-Type (r->headers_out.content_type, which the static module
    does not replace) and the other copied lines, in their order."""

    content_type: str | None
    headers: tuple[tuple[str, str], ...]


def copied_of(headers: list[tuple[str, str]]) -> Copied:
    """ngx_http_upstream_process_headers(): the copy handlers of the lines
    ``COPIED`` names, run in the upstream's order (the last Content-Type
    stands: ngx_http_upstream_copy_content_type)."""
    ctype = None
    lines: list[tuple[str, str]] = []
    for name, value in headers:
        low = name.lower()
        if low == "content-type":
            ctype = value
        elif low in COPIED:
            lines.append((name, value))
    return Copied(ctype, tuple(lines))


def _unsafe(uri: str) -> bool:
    """A ``..`` segment at the start or after a "/", or a NUL."""
    if "\0" in uri or (uri.startswith("..") and (len(uri) == 2 or uri[2] == "/")):
        return True
    at = uri.find("/..")
    while at >= 0:
        if at + 3 == len(uri) or uri[at + 3] == "/":
            return True
        at = uri.find("/..", at + 1)
    return False


def split_unsafe(value: str) -> tuple[str, str | None] | None:
    """ngx_http_parse_unsafe_uri(): (uri, args or None), None when unsafe
    (empty, args only, or ``..`` before or after %-unescaping)."""
    if not value or value[0] == "?":
        return None
    uri, sep, args = value.partition("?")
    if _unsafe(uri) or ("%" in uri and _unsafe(unquote(uri, errors="surrogateescape"))):
        return None
    return uri, (args if sep else None)
