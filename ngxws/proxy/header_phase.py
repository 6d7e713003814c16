"""Where the client connection runs the headers filter (``add_header``,
``expires``): one call per response head, with the location's settings and
the request's variables (ngx_http_headers_filter runs for the main request's
every response: static, ``return``, error pages, redirects, proxied)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ngxws.http.headers_filter import apply_headers, labelled
from ngxws.http.request import RequestHead

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.proxy.client import ClientConnection

__all__ = ["filtered", "typed"]


def filtered(
    client: ClientConnection,
    loc: Location | None,
    server: Server,
    head: RequestHead,
    status: int,
    headers: Sequence[tuple[str, str]],
) -> list[tuple[str, str]]:
    """``headers`` as the headers filter leaves them for ``status``."""
    if loc is None or not loc.headers.active:
        return list(headers)
    v = client._variables(head, server, ())
    return apply_headers(loc.headers, status, headers, v.render)


def typed(loc: Location | None, status: int, content_type: str | None) -> str | None:
    """The Content-Type of an answer ngxws writes itself, labelled by ``charset``."""
    return content_type if loc is None else labelled(loc.headers, status, content_type)


def charset_of(loc: Location | None, status: int) -> str | None:
    """The charset nginx's own error page (text/html) is labelled with."""
    label = typed(loc, status, "text/html")
    return None if label is None or label == "text/html" else label.rpartition("=")[2]
