"""``geo [$address] $variable { ... }`` (ngx_http_geo_module) read into the
``Map`` model (``Map.geo``: "cidr" or "ranges"); ngxws.http.maps evaluates
it.  Entries are addresses or CIDRs (or ``a.b.c.d-e.f.g.h`` ranges after
``ranges``), ``default``, and ``delete``; ``proxy``/``proxy_recursive`` and
``include`` inside a geo block are refused (not implemented)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from ngxws.config.model import Map
from ngxws.config.wiretext import wire


def read_geo(node: Any, error: Callable[[Any, str], Exception]) -> Map:
    """One geo block (``node``: the loader's directive node) -> its ``Map``."""
    args = node.args
    expression, variable = ("$remote_addr", args[0]) if len(args) == 1 else (args[0], args[1])
    if not variable.startswith("$") or len(variable) < 2:
        raise error(node, f'invalid variable name "{variable}"')
    entries: list[tuple[str, str]] = []
    default = ""
    ranges = False
    for entry in node.block or ():
        key, rest = entry.name, entry.args
        if key == "ranges" and not rest:
            ranges = True
            continue
        if len(rest) != 1:
            raise error(entry, 'invalid number of the geo parameters')
        value = wire(rest[0])
        if key == "default":
            default = value
        elif key == "delete":
            entries = [(k, v) for k, v in entries if k != _network(entry, rest[0], error)]
        elif key in ("proxy", "include"):
            raise error(entry, f'"{key}" in a geo block is not supported by ngxws')
        elif ranges:
            start, sep, end = key.partition("-")
            try:
                low, high = ipaddress.IPv4Address(start), ipaddress.IPv4Address(end)
            except ValueError:
                raise error(entry, f'invalid range "{key}"') from None
            if not sep or low > high:
                raise error(entry, f'invalid range "{key}"')
            entries.append((key, value))
        else:
            entries.append((_network(entry, key, error), value))
    return Map(
        expression=expression,
        variable=variable[1:],
        entries=tuple(entries),
        default=default,
        source=node.source,
        geo="ranges" if ranges else "cidr",
    )


def _network(entry: Any, key: str, error: Callable[[Any, str], Exception]) -> str:
    try:
        return str(ipaddress.ip_network(key, strict=False))
    except ValueError:
        raise error(entry, f'invalid network "{key}"') from None
