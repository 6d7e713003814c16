"""``add_header`` and ``expires`` (ngx_http_headers_module), ``charset``
and ``charset_types`` (ngx_http_charset_filter_module, header part only):
their settings, nginx's argument checks (ngx_http_headers_add,
ngx_http_headers_expires) and inheritance.

ngxws never recodes a body: ``source_charset`` is accepted when it names
the ``charset`` in force (nginx then only labels the answer) and
``override_charset on`` is refused -- both would otherwise need a
``charset_map`` recoding.

Both live in ``Core`` as one slot each, so a level inherits them as
ngx_http_headers_merge_conf() does: ``expires`` is merged on its own, and a
level with any ``add_header`` replaces the parent's whole list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngxws.config.units import TimeSlot, parse_time

if TYPE_CHECKING:
    from ngxws.config.levels import Level
    from ngxws.config.reading import Node
    from ngxws.config.setters import Setter, SetterContext

__all__ = ["CHARSET_TYPES", "Expires", "HeadersConf", "HEADER_SETTERS", "parse_expires"]

# ngx_http_charset_default_types; text/html is in every charset_types list
# (ngx_http_types_slot with ngx_http_html_default_types)
CHARSET_TYPES = frozenset(
    {"text/html", "text/xml", "text/plain", "text/vnd.wap.wml", "application/javascript", "application/rss+xml"}
)


@dataclass(frozen=True)
class Expires:
    """``kind``: "epoch", "max", "off" (only from a variable's value),
    "access" (now + seconds), "modified" (Last-Modified + seconds), "daily"
    (the next ``seconds`` after midnight, the ``@`` form).  ``template``:
    the value as written when it holds variables (parsed per request, as
    ngx_http_set_expires() does)."""

    kind: str
    seconds: int = 0
    template: str | None = None


@dataclass(frozen=True)
class HeadersConf:
    """What the header filter adds in a location: (name, value, always)."""

    add: tuple[tuple[str, str, bool], ...] = ()
    expires: Expires | None = None
    charset: str | None = None  # None: "charset off"
    charset_types: frozenset[str] = CHARSET_TYPES
    # how the header filter completes a Location starting with "/"
    # (ngx_http_header_filter: absolute_redirect, port_in_redirect,
    # server_name_in_redirect)
    absolute_redirect: bool = True
    port_in_redirect: bool = True
    server_name_in_redirect: bool = False

    @property
    def active(self) -> bool:
        return self.expires is not None or bool(self.add) or self.charset is not None


def parse_expires(value: str, modified: bool) -> Expires | str:
    """ngx_http_parse_expires(): the setting, or nginx's error text."""
    if not modified and value in ("epoch", "max", "off"):
        return Expires(value)
    kind = "modified" if modified else "access"
    minus = False
    if value.startswith("@"):
        if modified:
            return 'daily time cannot be used with "modified" parameter'
        kind, value = "daily", value[1:]
    elif value.startswith(("+", "-")):
        minus, value = value[0] == "-", value[1:]
    try:
        seconds = int(parse_time(value, TimeSlot.SEC))
    except ValueError:
        return "invalid value"
    if kind == "daily" and seconds > 24 * 60 * 60:
        return "daily time value must be less than 24 hours"
    return Expires(kind, -seconds if minus else seconds)


def _expires(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_http_headers_expires(): "off" is a value of the slot, so "expires off"
    # in a location overrides the server's
    if "hdr_expires" in level.core:
        raise node.error('"expires" directive is duplicate')
    args = list(node.args)
    modified = len(args) == 2
    if modified and args[0] != "modified":
        raise node.error('"expires" directive invalid value')
    value = args[-1]
    if "$" in value:
        level.core["hdr_expires"] = Expires("modified" if modified else "access", 0, value)
        return
    parsed = parse_expires(value, modified)
    if isinstance(parsed, str):
        raise node.error(f'"expires" directive {parsed}')
    level.core["hdr_expires"] = None if parsed.kind == "off" else parsed


def _add_header(ctx: SetterContext, node: Node, level: Level) -> None:
    args = list(node.args)
    always = False
    if len(args) == 3:
        if args[2] != "always":
            raise node.error(f'invalid parameter "{args[2]}"')
        always = True
    own = level.core.get("hdr_add")
    entries = list(own) if own is not None else []
    entries.append((args[0], args[1], always))
    level.core["hdr_add"] = tuple(entries)


def _charset(ctx: SetterContext, node: Node, level: Level) -> None:
    value = node.args[0]
    if "$" in value:
        raise node.error('"charset" with variables is not supported by ngxws')
    level.core["hdr_charset"] = None if value == "off" else value


def _charset_types(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["hdr_charset_types"] = frozenset({"text/html", *(a.lower() for a in node.args)})


def _source_charset(ctx: SetterContext, node: Node, level: Level) -> None:
    # checked against the charset in force when the location is built
    level.core["hdr_source_charset"] = (node.args[0], node.file, node.line)


def _override_charset(ctx: SetterContext, node: Node, level: Level) -> None:
    value = node.args[0].lower()
    if value not in ("on", "off"):
        raise node.error(
            f'invalid value "{node.args[0]}" in "override_charset" directive, it must be "on" or "off"'
        )
    if value == "on":
        raise node.error('"override_charset on" would recode responses, which ngxws does not do')


HEADER_SETTERS: dict[str, Setter] = {
    "expires": _expires,
    "add_header": _add_header,
    "charset": _charset,
    "charset_types": _charset_types,
    "source_charset": _source_charset,
    "override_charset": _override_charset,
}
