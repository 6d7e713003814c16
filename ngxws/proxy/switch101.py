"""The client's 101 for a location whose 101 goes through no filter (pure).

``handshake.switching_head`` builds the answer to a websocket 101 through
the general steps every response head takes: the hidden-header set, the
headers filter (``header_phase.filtered``: add_header, expires, charset)
and ``responses.response_head`` (ngx_http_header_filter's order).  For a
location without ``add_header``/``expires``/``charset`` whose upstream's
Server and Date stay hidden (no ``proxy_pass_header`` for them) -- nearly
every websocket location -- those steps reduce to one line per passed
header after nginx's own status line, Server, Date and ``Connection:
upgrade``.  ``plain_hidden`` says, once per location, whether that holds
(and what is hidden); ``plain_answer`` writes such a 101.  Anything else
goes through ``switching_head`` as before; tests/test_switch101.py proves
the two equal over a table of 101s and locations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.config.memo import PerObject
from ngxws.http.responses import SERVER
from ngxws.proxy.upstream_response import OWN_HEADERS, SwitchHead, hidden_headers
from ngxws.sinks.timefmt import http_date_now

if TYPE_CHECKING:
    from ngxws.config.model import Location

__all__ = ["plain_answer", "plain_hidden"]

_AFTER_STATUS = f"\r\nServer: {SERVER}\r\nDate: "


def _plain_hidden(loc: Location) -> frozenset[str] | None:
    hidden = hidden_headers(loc.proxy.hide_headers, loc.proxy.pass_headers)
    return None if loc.headers.active or not OWN_HEADERS <= hidden else hidden


plain_hidden: PerObject[Location, frozenset[str] | None] = PerObject(_plain_hidden)
"""What a location hides of an upstream's 101 when its answer is plain
(``plain_answer`` writes it), else None (``switching_head`` does); noted
once per location."""


def plain_answer(response: SwitchHead, hidden: frozenset[str]) -> bytes:
    """``switching_head(response, <an inactive headers filter>, hidden)``
    for a ``hidden`` that holds Server and Date: the status line, nginx's
    Server and Date, ``Connection: upgrade``, then the upstream's headers
    that are not hidden (its Upgrade always), in its order."""
    lines = [f"HTTP/1.1 101 {response.reason or 'Switching Protocols'}{_AFTER_STATUS}{http_date_now()}\r\nConnection: upgrade"]
    for name, value in response.headers:
        low = name.lower()
        if low == "upgrade" or low not in hidden:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
