"""Whether a location's 101 goes through no headers filter (pure).

``handshake.switching_head`` builds the answer to a websocket 101 through
the general steps every response head takes: the hidden-header set, the
headers filter (``header_phase.filtered``: add_header, expires, charset)
and ``responses.response_head`` (ngx_http_header_filter's order).  For a
location without ``add_header``/``expires``/``charset`` whose upstream's
Server and Date stay hidden (no ``proxy_pass_header`` for them) -- nearly
every websocket location -- those steps reduce to one line per passed
header after nginx's own status line, Server, Date and ``Connection:
upgrade``.  ``plain_hidden`` says, once per location, whether that holds
(and what is hidden): ``switching_head`` then runs without the filter.
tests/test_switch101.py proves the two roads equal over a table of 101s
and locations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.config.memo import PerObject
from ngxws.proxy.upstream_response import OWN_HEADERS, hidden_headers

if TYPE_CHECKING:
    from ngxws.config.model import Location

__all__ = ["plain_hidden"]

def _plain_hidden(loc: Location) -> frozenset[str] | None:
    hidden = hidden_headers(loc.proxy.hide_headers, loc.proxy.pass_headers)
    return None if loc.headers.active or not OWN_HEADERS <= hidden else hidden


plain_hidden: PerObject[Location, frozenset[str] | None] = PerObject(_plain_hidden)
"""What a location hides of an upstream's 101 when no headers filter can
act on it (``switching_head`` runs without one), else None (the filter
runs); noted once per location."""
