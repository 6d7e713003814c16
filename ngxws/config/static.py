"""Static content directives: ``root``, ``alias``, ``index``, ``try_files``,
``autoindex*``, ``etag``, ``if_modified_since``, ``max_ranges`` -- their settings, nginx's
argument checks and inheritance.

``StaticCore`` is mixed into the loader's ``_Core`` so each directive is
inherited on its own (http -> server -> location), as
ngx_http_core_merge_loc_conf() merges them: ``root`` and ``alias`` share
one slot (a location's ``alias`` is inherited by its nested locations),
``try_files`` is not merged (nginx uses a server's ``try_files`` only for
requests no location matches).  ``read_static`` ports the directive
handlers (ngx_http_core_root, ngx_http_core_try_files,
ngx_http_index_set_index) with their messages; the loader adds file:line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["StaticConf", "StaticCore", "StaticConfigError", "STATIC_DIRECTIVES", "read_static", "static_conf"]

STATIC_DIRECTIVES = (
    "root", "alias", "index", "try_files", "autoindex", "autoindex_exact_size",
    "autoindex_localtime", "autoindex_format", "etag", "if_modified_since", "max_ranges",
)  # fmt: skip

_VAR = re.compile(r"\$(\w+|\{\w+\})")


class StaticConfigError(ValueError):
    """nginx's message for a refused static directive."""


@dataclass(frozen=True)
class StaticConf:
    """What a location serves from the file system.  ``root`` is the root or
    alias, prefix-resolved; ``root_vars`` when it is rendered per request."""

    root: str = "html"
    alias: bool = False
    root_vars: bool = False
    index: tuple[str, ...] = ("index.html",)
    try_files: tuple[str, ...] = ()
    autoindex: bool = False
    autoindex_exact_size: bool = True
    autoindex_localtime: bool = False
    etag: bool = True
    if_modified_since: str = "exact"
    max_ranges: int | None = None  # None: not set (nginx's NGX_MAX_INT32_VALUE)


@dataclass(frozen=True)
class StaticCore:
    """The loader's per-level slots (mixed into its ``_Core``)."""

    static_root: tuple[str, bool] | None = None  # (path as written, alias)
    static_index: tuple[str, ...] = ("index.html",)
    static_try_files: tuple[object, tuple[str, ...]] | None = None  # (owner, entries)
    static_autoindex: bool = False
    static_autoindex_exact_size: bool = True
    static_autoindex_localtime: bool = False
    static_etag: bool = True
    static_if_modified_since: str = "exact"
    static_max_ranges: int | None = None


def _flag(name: str, value: str) -> bool:
    low = value.lower()
    if low not in ("on", "off"):
        raise StaticConfigError(
            f'invalid value "{value}" in "{name}" directive, it must be "on" or "off"'
        )
    return low == "on"


def read_static(
    name: str,
    args: Sequence[str],
    own: Mapping[str, Any],
    *,
    owner: object,
    location: tuple[str, str] | None,
) -> dict[str, Any]:
    """One directive at a level: the ``_Core`` overrides it sets.  ``own``
    is the level's overrides so far; ``location`` (modifier, pattern) when
    the level is a location."""
    if name in ("root", "alias"):
        alias = name == "alias"
        if "static_root" in own:
            earlier_alias = own["static_root"][1]
            if earlier_alias == alias:
                raise StaticConfigError(f'"{name}" directive is duplicate')
            raise StaticConfigError(
                f'"{name}" directive is duplicate, "{"alias" if earlier_alias else "root"}" directive was specified earlier'
            )
        if alias and location is not None and location[0] == "@":
            raise StaticConfigError('the "alias" directive cannot be used inside the named location')
        value = args[0]
        for bad in ("document_root", "realpath_root"):
            if f"${bad}" in value or f"${{{bad}}}" in value:
                raise StaticConfigError(f'the ${bad} variable cannot be used in the "{name}" directive')
        if not alias and value.endswith("/"):
            value = value[:-1]
        return {"static_root": (value, alias)}
    if name == "index":
        for arg in args:
            if not arg:
                raise StaticConfigError('index "" in "index" directive is invalid')
        own_index: tuple[str, ...] = own.get("static_index", ())
        return {"static_index": own_index + tuple(args)}
    if name == "try_files":
        if len(args) < 2:
            raise StaticConfigError('invalid number of arguments in "try_files" directive')
        last = args[-1]
        if last.startswith("=") and not (last[1:].isdigit() and 0 < int(last[1:]) < 1000):
            raise StaticConfigError(f'invalid code "{last}"')
        return {"static_try_files": (owner, tuple(args))}
    if name == "if_modified_since":
        if args[0] not in ("off", "exact", "before"):
            raise StaticConfigError(
                f'invalid value "{args[0]}" in "if_modified_since" directive'
            )
        return {"static_if_modified_since": args[0]}
    if name == "max_ranges":  # ngx_conf_set_num_slot
        if not args[0].isdigit() or int(args[0]) > 2**63 - 1:
            raise StaticConfigError('"max_ranges" directive invalid number')
        return {"static_max_ranges": int(args[0])}
    if name == "autoindex_format":
        if args[0] != "html":
            raise StaticConfigError(f'autoindex_format "{args[0]}" is not supported by ngxws')
        return {}
    return {f"static_{name}": _flag(name, args[0])}


def static_conf(core: StaticCore, prefix: str, owner: object, modifier: str) -> StaticConf:
    """The settings in force at a location (``owner``: its reading block)."""
    written, alias = core.static_root if core.static_root is not None else ("html", False)
    root = written
    if not root.startswith("$") and not root.startswith("/"):
        root = prefix.rstrip("/") + "/" + root  # ngx_conf_full_name() with the prefix
    tf = core.static_try_files
    return StaticConf(
        root=root,
        alias=alias,
        root_vars=_VAR.search(root) is not None,
        index=core.static_index,
        try_files=tf[1] if tf is not None and tf[0] is owner else (),
        autoindex=core.static_autoindex,
        autoindex_exact_size=core.static_autoindex_exact_size,
        autoindex_localtime=core.static_autoindex_localtime,
        etag=core.static_etag,
        if_modified_since=core.static_if_modified_since,
        max_ranges=core.static_max_ranges,
    )
