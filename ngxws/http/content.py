"""nginx's content phase as a pure decision: which handler answers a
request that got through the rewrite, preaccess and access phases.

nginx picks one content handler per location (clcf->handler, set by the
directive that claims the location: proxy_pass, ws_stat, fastcgi_pass...;
else the static/index modules).  ``decide`` returns that choice as an
*action* the client connection carries out; it reads only the location and
whether the request asked to switch protocols -- no socket, clock or file.
"""

from __future__ import annotations

from dataclasses import dataclass

from ngxws.config.model import Location


@dataclass(frozen=True)
class StatsPage:
    """``ws_stat``: the module's statistics page."""


@dataclass(frozen=True)
class StubStatus:
    """``stub_status``: nginx's connection counters (ngx_http_stub_status_handler)."""


@dataclass(frozen=True)
class Static:
    """No content directive: root/alias, index, try_files (ngx_http_static_module)."""


@dataclass(frozen=True)
class ProxyHTTP:
    """``proxy_pass``, a plain HTTP request (ngx_http_proxy_handler)."""


@dataclass(frozen=True)
class Upgrade:
    """``proxy_pass`` with a request asking to switch protocols: the
    upstream's 101 turns the connection into a tunnel."""


@dataclass(frozen=True)
class Error:
    """An error nginx generates itself (through error_page if one names it)."""

    status: int


Action = StatsPage | StubStatus | Static | ProxyHTTP | Upgrade | Error


def decide(loc: Location, upgrade: bool) -> Action:
    """The content handler for ``loc``; ``upgrade``: the request carries
    ``Upgrade`` (ngxws.http.parser's UpgradeRequest)."""
    if loc.ws_stat:
        return StatsPage()
    if loc.stub_status:  # (beside proxy_pass in one location, nginx's last directive wins)
        return StubStatus()
    if loc.proxy_pass is None:
        if loc.unserved_handler is not None:
            # a content handler ngxws cannot run (uwsgi_pass...): fail closed
            # with nginx's answer for an unreachable upstream
            return Error(502)
        return Static()
    if upgrade:
        return Upgrade()
    return ProxyHTTP()
