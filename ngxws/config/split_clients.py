"""``split_clients STRING $variable { ... }`` (ngx_http_split_clients_module)
read into the ``Map`` model (``Map.split``): each line's share of the 32-bit
hash space, as nginx computes it at start-up; ngxws.http.maps evaluates it
(MurmurHash2 of the rendered string, the first share it falls in).

The shares are percents with up to two decimals (``ngx_atofp(..., 2)``:
``0.5%`` is 50 hundredths of a percent); ``*`` takes the rest.  Each share
becomes the running total ``sum(percent * 0xffffffff / 10000)`` -- the
bound a hash must stay under -- exactly as ngx_conf_split_clients_block
does, so a key lands in the same bucket as in nginx."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ngxws.config.model import Map
from ngxws.config.wiretext import wire

__all__ = ["read_split_clients"]

_PERCENT = re.compile(r"(\d*)(?:\.(\d*))?")


def _hundredths(text: str) -> int | None:
    """ngx_atofp(text, len, 2): a fixed-point number with at most two
    decimals, in hundredths; None where nginx says NGX_ERROR."""
    m = _PERCENT.fullmatch(text)
    if m is None or len(m.group(2) or "") > 2:
        return None  # "", "." and the like come out 0: refused as nginx refuses 0
    whole, frac = m.group(1) or "0", (m.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(frac)


def read_split_clients(node: Any, error: Callable[[Any, str], Exception]) -> Map:
    """One split_clients block (``node``: the loader's directive node) -> its ``Map``."""
    expression, variable = node.args
    if not variable.startswith("$") or len(variable) < 2:
        raise error(node, f'invalid variable name "{variable}"')
    parts: list[tuple[int, str]] = []
    for entry in node.block or ():
        if len(entry.args) != 1:
            raise error(entry, f'invalid number of arguments in "{entry.name}" of split_clients')
        word = entry.name
        percent = 0 if word == "*" else _hundredths(word[:-1]) if word.endswith("%") else None
        if percent is None or (not percent and word != "*"):  # NGX_ERROR, or 0
            raise error(entry, f'invalid percent value "{word}"')
        parts.append((percent, wire(entry.args[0])))
    total, last, split = 0, 0, []
    for percent, value in parts:
        total = total + percent if percent else 10000
        if total > 10000:
            raise error(node, "percent total is greater than 100%")
        if percent:
            last += percent * 0xFFFFFFFF // 10000
        split.append((last if percent else 0, value))
    return Map(
        expression=wire(expression),
        variable=variable[1:],
        source=node.source,
        split=tuple(split),
    )
