"""``proxy_ignore_headers``: which upstream headers nginx does not act on.

ngx_conf_set_bitmask_slot() over ngx_http_upstream_ignore_headers_masks[]:
the names are matched case-insensitively, an unknown one is
``invalid value "X"`` (emerg), and a block's lines add up while a block
that has the directive replaces what it inherits.  ngxws acts on
X-Accel-Redirect (ngxws.proxy.x_accel follows it unless it is ignored).
Of the others, nginx 1.22's ngx_http_upstream.c acts on X-Accel-Limit-Rate,
X-Accel-Buffering and X-Accel-Charset, which ngxws never acts on (it hides
them, as nginx does): ignoring them makes nginx do what ngxws does, so
they are harmless.  X-Accel-Expires, Expires, Cache-Control, Set-Cookie and
Vary it acts on only for the proxy cache (under ``NGX_HTTP_CACHE``, with
``r->cache``): reported with the cache's directives, harmless where no
``proxy_cache`` is on (``Reader.settled_ignored``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.config.directives import CACHE_HEADERS_REASON, Handling, StockRule

if TYPE_CHECKING:
    from ngxws.config.levels import Level
    from ngxws.config.reading import Node
    from ngxws.config.setters import SetterContext

__all__ = ["set_ignore_headers"]

# ngx_http_upstream_ignore_headers_masks[], lowercased
_NAMES = frozenset({
    "x-accel-redirect", "x-accel-expires", "x-accel-limit-rate", "x-accel-buffering", "x-accel-charset",
    "expires", "cache-control", "set-cookie", "vary",
})  # fmt: skip

# acted on by nginx, never by ngxws (nor passed on: HIDDEN_BY_DEFAULT)
_NEVER_ACTED = frozenset({"x-accel-limit-rate", "x-accel-buffering", "x-accel-charset"})
_NOT_ACTED = StockRule(
    Handling.IGNORED_HARMLESS,
    "ngxws does not act on X-Accel-Limit-Rate, X-Accel-Buffering or X-Accel-Charset either",
)
# acted on by nginx for its proxy cache only
_CACHE_ONLY = frozenset({"x-accel-expires", "expires", "cache-control", "set-cookie", "vary"})
_FOR_THE_CACHE = StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, CACHE_HEADERS_REASON)


def set_ignore_headers(ctx: SetterContext, node: Node, level: Level) -> None:
    names = [a.lower() for a in node.args]
    for arg in node.args:
        if arg.lower() not in _NAMES:
            raise node.error(f'invalid value "{arg}"')
    ignored = "x-accel-redirect" in names
    level.proxy["ignore_x_accel_redirect"] = bool(level.proxy.get("ignore_x_accel_redirect")) or ignored
    if _NEVER_ACTED.intersection(names):
        ctx.ignore(node, _NOT_ACTED)
    if _CACHE_ONLY.intersection(names):
        ctx.ignore(node, _FOR_THE_CACHE)
