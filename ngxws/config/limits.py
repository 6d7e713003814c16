"""``limit_req``/``limit_conn`` and their zones: the model and nginx's argument parsing.

Ports of the directive handlers of ngx_http_limit_req_module.c
(``ngx_http_limit_req_zone``, ``ngx_http_limit_req``) and
ngx_http_limit_conn_module.c (``ngx_http_limit_conn_zone``,
``ngx_http_limit_conn``), with their error texts.  Parsers return the model
or raise ``LimitConfigError`` with nginx's message (no file:line: the
loader adds the directive's).

Units are nginx's own, so the runtime arithmetic (``ngxws.limits``) is the
C code's: rates in milli-requests per second (``rate=1r/m`` is 16, integer
division as in nginx), ``burst`` and ``delay`` in milli-requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ngxws.config.units import parse_size

__all__ = [
    "LimitConfigError",
    "LimitZone",
    "LimitReq",
    "LimitConn",
    "Limits",
    "LOG_LEVELS",
    "parse_zone",
    "parse_limit_req",
    "parse_limit_conn",
    "parse_status",
    "MIN_ZONE_SIZE",
]

# ngx_http_limit_req_log_levels / ngx_http_limit_conn_log_levels
LOG_LEVELS = ("info", "notice", "warn", "error")
# "zone ... is too small" below 8 pages (ngx_pagesize is 4096 on the systems nginx runs on)
MIN_ZONE_SIZE = 8 * 4096
# NGX_MAX_INT_T_VALUE / 1000: what "nodelay" sets delay to (before the * 1000)
_NODELAY = (2**63 - 1) // 1000
_MAX_INT = 2**63 - 1


class LimitConfigError(ValueError):
    """nginx's message for a refused limit_* directive."""


@dataclass(frozen=True)
class LimitZone:
    """A ``limit_req_zone`` or ``limit_conn_zone``: the shared-memory table.

    ``kind`` is ``"req"`` or ``"conn"``; ``key`` the complex value as
    written (``$binary_remote_addr``); ``size`` bytes; ``rate`` (req only)
    in milli-requests per second, as ``ctx->rate``."""

    kind: str
    name: str
    key: str
    size: int
    rate: int = 0


@dataclass(frozen=True)
class LimitReq:
    """One ``limit_req zone=NAME [burst=N] [nodelay|delay=N]`` (values x 1000, as nginx stores them)."""

    zone: str
    burst: int = 0
    delay: int = 0


@dataclass(frozen=True)
class LimitConn:
    """One ``limit_conn NAME N``."""

    zone: str
    conn: int


@dataclass(frozen=True)
class Limits:
    """What the preaccess phase runs for one location (inherited as nginx
    merges: the arrays only by a level that sets none of its own, the
    other values one by one)."""

    req: tuple[LimitReq, ...] = ()
    conn: tuple[LimitConn, ...] = ()
    req_status: int = 503
    conn_status: int = 503
    req_log_level: str = "error"
    conn_log_level: str = "error"
    req_dry_run: bool = False
    conn_dry_run: bool = False

    @property
    def any(self) -> bool:
        return bool(self.req or self.conn)


def _atoi(text: str) -> int | None:
    """``ngx_atoi()``: decimal digits only, no overflow; None is NGX_ERROR."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= _MAX_INT else None


def parse_zone(directive: str, args: Sequence[str]) -> LimitZone:
    """``limit_req_zone KEY zone=NAME:SIZE rate=R`` / ``limit_conn_zone KEY zone=NAME:SIZE``."""
    kind = "req" if directive == "limit_req_zone" else "conn"
    size = 0
    rate, scale = 1, 1
    name = ""
    for value in args[1:]:
        if value.startswith("zone="):
            colon = value.find(":", 5)
            if colon < 0:
                raise LimitConfigError(f'invalid zone size "{value}"')
            name = value[5:colon]
            try:
                size = parse_size(value[colon + 1 :])
            except ValueError:
                raise LimitConfigError(f'invalid zone size "{value}"') from None
            if size < MIN_ZONE_SIZE:
                raise LimitConfigError(f'zone "{value}" is too small')
            continue
        if kind == "req" and value.startswith("rate="):
            digits = value[5:]
            if value.endswith("r/s"):
                scale, digits = 1, value[5:-3]
            elif value.endswith("r/m"):
                scale, digits = 60, value[5:-3]
            parsed = _atoi(digits)
            if parsed is None or parsed <= 0:
                raise LimitConfigError(f'invalid rate "{value}"')
            rate = parsed
            continue
        raise LimitConfigError(f'invalid parameter "{value}"')
    if not name:
        raise LimitConfigError(f'"{directive}" must have "zone" parameter')
    return LimitZone(kind, name, args[0], size, rate * 1000 // scale if kind == "req" else 0)


def parse_limit_req(args: Sequence[str]) -> LimitReq:
    """``limit_req zone=NAME [burst=N] [nodelay | delay=N]`` (ngx_http_limit_req)."""
    zone: str | None = None
    burst = delay = 0
    for value in args:
        if value.startswith("zone="):
            zone = value[5:]
            continue
        if value.startswith("burst="):
            parsed = _atoi(value[6:])
            if parsed is None or parsed <= 0:
                raise LimitConfigError(f'invalid burst value "{value}"')
            burst = parsed
            continue
        if value.startswith("delay="):
            parsed = _atoi(value[6:])
            if parsed is None or parsed <= 0:
                raise LimitConfigError(f'invalid delay value "{value}"')
            delay = parsed
            continue
        if value == "nodelay":
            delay = _NODELAY
            continue
        raise LimitConfigError(f'invalid parameter "{value}"')
    if zone is None:
        raise LimitConfigError('"limit_req" must have "zone" parameter')
    return LimitReq(zone, burst * 1000, delay * 1000)


def parse_limit_conn(args: Sequence[str]) -> LimitConn:
    """``limit_conn NAME N`` (ngx_http_limit_conn); the duplicate check is the loader's."""
    n = _atoi(args[1])
    if n is None or n <= 0:
        raise LimitConfigError(f'invalid number of connections "{args[1]}"')
    if n > 65535:
        raise LimitConfigError("connection limit must be less 65536")
    return LimitConn(args[0], n)


def parse_status(directive: str, text: str) -> int:
    """``limit_*_status CODE``: ngx_conf_set_num_slot with bounds 400..599."""
    code = _atoi(text)
    if code is None:
        raise LimitConfigError(f'"{directive}" directive invalid number')
    if not 400 <= code <= 599:
        raise LimitConfigError("value must be between 400 and 599")
    return code
