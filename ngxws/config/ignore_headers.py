"""``proxy_ignore_headers``: which upstream headers nginx does not act on.

ngx_conf_set_bitmask_slot() over ngx_http_upstream_ignore_headers_masks[]:
the names are matched case-insensitively, an unknown one is
``invalid value "X"`` (emerg), and a block's lines add up while a block
that has the directive replaces what it inherits.  ngxws acts on
X-Accel-Redirect only (ngxws.proxy.x_accel follows it unless it is
ignored); the others name what ngxws does not act on anyway, except that
nginx would then let a cached answer be stored: each is reported as
changing behaviour only where it is not ``X-Accel-Redirect``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngxws.config.directives import Handling, StockRule

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

_OTHERS = StockRule(
    Handling.IGNORED_CHANGES_BEHAVIOUR,
    "only X-Accel-Redirect is acted on; the other upstream headers are passed unfiltered",
)


def set_ignore_headers(ctx: SetterContext, node: Node, level: Level) -> None:
    names = [a.lower() for a in node.args]
    for arg in node.args:
        if arg.lower() not in _NAMES:
            raise node.error(f'invalid value "{arg}"')
    ignored = "x-accel-redirect" in names
    level.proxy["ignore_x_accel_redirect"] = bool(level.proxy.get("ignore_x_accel_redirect")) or ignored
    if any(n != "x-accel-redirect" for n in names):
        ctx.ignore(node, _OTHERS)
