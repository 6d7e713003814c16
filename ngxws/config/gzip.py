"""``gzip`` and its settings: ngx_http_gzip_filter_module's directives
(``gzip``, ``gzip_types``, ``gzip_min_length``, ``gzip_comp_level``),
ngx_http_gzip_static_module's ``gzip_static`` and the core module's
(``gzip_vary``, ``gzip_http_version``, ``gzip_proxied``, ``gzip_disable``),
with nginx's argument checks and messages.

``GzipCore`` is mixed into the loader's ``Core`` so that each directive is
inherited on its own (http -> server -> location), as
ngx_http_gzip_merge_conf() and ngx_http_core_merge_loc_conf() merge them:
``gzip_types`` (ngx_http_types_slot: a level's own list starts from
text/html; ``*`` is any type) and the ``gzip_disable`` regexes are arrays a
level replaces as a whole, its ``msie6`` flag is inherited apart;
``gzip_proxied`` words are ORed within a block (ngx_conf_set_bitmask_slot).
The decisions made per response are in ``ngxws.http.gzip_filter`` (and,
for ``gzip_static``, ``ngxws.http.static.precompressed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngxws.config.pcre import compile_pcre
from ngxws.config.units import parse_size

if TYPE_CHECKING:
    from ngxws.config.levels import Level
    from ngxws.config.reading import Node
    from ngxws.config.setters import Setter, SetterContext

__all__ = ["GzipConf", "GzipCore", "GZIP_SETTERS", "HTML_TYPES", "PROXIED_WORDS"]

# ngx_http_html_default_types: in every gzip_types list
HTML_TYPES = frozenset({"text/html"})

# ngx_http_gzip_proxied_mask
PROXIED_WORDS = ("off", "expired", "no-cache", "no-store", "private", "no_last_modified", "no_etag", "auth", "any")


@dataclass(frozen=True)
class GzipConf:
    """The gzip settings in force at a location.  ``types`` None: ``*``.
    ``wbits``/``memlevel``: nginx's defaults (the undocumented gzip_window
    and gzip_hash are not read), reduced per response for a small known
    length (``ngxws.http.gzip_filter.memory``)."""

    enabled: bool = False
    types: frozenset[str] | None = HTML_TYPES
    min_length: int = 20
    level: int = 1
    wbits: int = 15  # MAX_WBITS
    memlevel: int = 8  # MAX_MEM_LEVEL - 1
    vary: bool = False
    http_version: str = "1.1"
    proxied: frozenset[str] = frozenset({"off"})
    disable_msie6: bool = False
    disable: tuple[re.Pattern[str], ...] = ()
    static: str = "off"  # gzip_static: "off", "on" or "always"


@dataclass(frozen=True)
class GzipCore:
    """The loader's per-level slots (mixed into its ``Core``)."""

    gzip: bool = False
    gzip_types: frozenset[str] | None = HTML_TYPES
    gzip_min_length: int = 20
    gzip_comp_level: int = 1
    gzip_vary: bool = False
    gzip_http_version: str = "1.1"
    gzip_proxied: frozenset[str] = frozenset({"off"})
    gzip_disable: tuple[re.Pattern[str], ...] = ()
    gzip_disable_msie6: bool = False
    gzip_static: str = "off"

    def gzip_conf(self) -> GzipConf:
        return GzipConf(
            enabled=self.gzip, types=self.gzip_types, min_length=self.gzip_min_length,
            level=self.gzip_comp_level, vary=self.gzip_vary, http_version=self.gzip_http_version,
            proxied=self.gzip_proxied, disable_msie6=self.gzip_disable_msie6, disable=self.gzip_disable,
            static=self.gzip_static,
        )  # fmt: skip


def _flag(node: Node) -> bool:
    # ngx_conf_set_flag_slot
    value = node.args[0].lower()
    if value not in ("on", "off"):
        raise node.error(f'invalid value "{node.args[0]}" in "{node.name}" directive, it must be "on" or "off"')
    return value == "on"


def _gzip(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["gzip"] = _flag(node)


def _gzip_vary(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["gzip_vary"] = _flag(node)


def _gzip_types(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_http_types_slot: "*" makes any type match, for the rest of the block too
    if "gzip_types" in level.core and level.core["gzip_types"] is None:
        return
    types = set(level.core.get("gzip_types", HTML_TYPES))
    for arg in node.args:
        if arg == "*":
            level.core["gzip_types"] = None
            return
        low = arg.lower()
        if low in types:
            ctx.warnings.append(f'duplicate MIME type "{low}" in {node.source}')
            continue
        types.add(low)
    level.core["gzip_types"] = frozenset(types)


def _gzip_comp_level(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_conf_set_num_slot, then ngx_conf_check_num_bounds (its message names no directive)
    text = node.args[0]
    if not text.isdigit():
        raise node.error(f'"{node.name}" directive invalid number')
    value = int(text)
    if not 1 <= value <= 9:
        raise node.error("value must be between 1 and 9")
    level.core["gzip_comp_level"] = value


def _gzip_min_length(ctx: SetterContext, node: Node, level: Level) -> None:
    try:  # ngx_conf_set_size_slot
        level.core["gzip_min_length"] = parse_size(node.args[0])
    except ValueError:
        raise node.error(f'"{node.name}" directive invalid value') from None


def _gzip_http_version(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_conf_set_enum_slot
    if node.args[0] not in ("1.0", "1.1"):
        raise node.error(f'invalid value "{node.args[0]}"')
    level.core["gzip_http_version"] = node.args[0]


def _gzip_static(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_conf_set_enum_slot (ngx_http_gzip_static): names compared caseless
    value = node.args[0].lower()
    if value not in ("off", "on", "always"):
        raise node.error(f'invalid value "{node.args[0]}"')
    level.core["gzip_static"] = value


def _gzip_proxied(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_conf_set_bitmask_slot: ORed with the block's earlier gzip_proxied
    words: set[str] = set(level.core.get("gzip_proxied", ()))
    for arg in node.args:
        low = arg.lower()
        if low not in PROXIED_WORDS:
            raise node.error(f'invalid value "{arg}"')
        if low in words:
            ctx.warnings.append(f'duplicate value "{arg}" in {node.source}')
        words.add(low)
    level.core["gzip_proxied"] = frozenset(words)


def _gzip_disable(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_http_gzip_disable(): the level's regex array exists from its first
    # gzip_disable on (so "gzip_disable msie6" alone drops inherited regexes)
    from ngxws.config.rewrite import regex_error  # (rewrite imports the model, which imports this)

    regexes = list(level.core.get("gzip_disable", ()))
    for arg in node.args:
        if arg == "msie6":
            level.core["gzip_disable_msie6"] = True
            continue
        error = regex_error(arg)
        if error is not None:
            raise node.error(error)
        regexes.append(compile_pcre(arg, caseless=True))
    level.core["gzip_disable"] = tuple(regexes)


GZIP_SETTERS: dict[str, Setter] = {
    "gzip": _gzip,
    "gzip_types": _gzip_types,
    "gzip_comp_level": _gzip_comp_level,
    "gzip_min_length": _gzip_min_length,
    "gzip_vary": _gzip_vary,
    "gzip_http_version": _gzip_http_version,
    "gzip_proxied": _gzip_proxied,
    "gzip_disable": _gzip_disable,
    "gzip_static": _gzip_static,
}
