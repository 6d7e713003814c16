"""``limit_req`` / ``limit_conn`` while reading: the per-level arrays and
the shared-memory zones they name, checked as nginx's
``ngx_http_limit_req_zone()`` / ``ngx_shared_memory_add()`` do.  The value
grammar is in ``limits.py``; this is the reading-order state around it.
"""

from __future__ import annotations

from ngxws.config.levels import Level, Owner
from ngxws.config.limits import LOG_LEVELS as _LIMIT_LOG_LEVELS
from ngxws.config.limits import (
    LimitConfigError,
    LimitConn,
    LimitReq,
    LimitZone,
    parse_limit_conn,
    parse_limit_req,
    parse_status,
    parse_zone,
)
from ngxws.config.reading import Node
from ngxws.config.units import parse_flag

__all__ = ["LimitReading"]


class LimitReading:
    """The ``limit_*`` directives' handler (``Reader.handlers``)."""

    def __init__(self) -> None:
        # limit_*_zone names: the zone, or None while only limit_req/limit_conn named it
        self.zones: dict[str, tuple[str, LimitZone | None]] = {}

    def directive(self, node: Node, owner: Owner) -> None:
        name, args = node.name, node.args
        try:
            if name in ("limit_req_zone", "limit_conn_zone"):
                if (
                    name == "limit_req_zone" and len(args) != 3
                ):  # NGX_CONF_TAKE3 (crossplane: TAKE34)
                    raise node.error(f'invalid number of arguments in "{name}" directive')
                zone = parse_zone(name, args)
                self._shared_zone(node, zone.name, zone.kind, zone.size)
                known = self.zones[zone.name][1]
                if known is not None:  # ngx_http_limit_req_zone(): shm_zone->data set
                    raise node.error(f'{name} "{zone.name}" is already bound to key "{known.key}"')
                self.zones[zone.name] = (zone.kind, zone)
                return
            assert isinstance(owner, Level)
            value: object
            if name == "limit_req":
                req = parse_limit_req(args)
                self._shared_zone(node, req.zone, "req", 0)
                reqs: tuple[LimitReq, ...] = owner.core.get(name, ())
                if any(r.zone == req.zone for r in reqs):
                    raise node.error('"limit_req" directive is duplicate')
                value = (*reqs, req)
            elif name == "limit_conn":
                self._shared_zone(node, args[0], "conn", 0)
                conns: tuple[LimitConn, ...] = owner.core.get(name, ())
                if any(c.zone == args[0] for c in conns):
                    raise node.error('"limit_conn" directive is duplicate')
                value = (*conns, parse_limit_conn(args))
            elif name.endswith("_status"):
                value = parse_status(name, args[0])
            elif name.endswith("_log_level"):
                if args[0] not in _LIMIT_LOG_LEVELS:
                    raise node.error(f'invalid value "{args[0]}"')
                value = args[0]
            else:  # limit_*_dry_run: ngx_conf_set_flag_slot (crossplane takes any word)
                if args[0].lower() not in ("on", "off"):
                    raise node.error(
                        f'invalid value "{args[0]}" in "{name}" directive, it must be "on" or "off"'
                    )
                value = parse_flag(args[0])
        except LimitConfigError as exc:
            raise node.error(str(exc)) from None
        owner.core[name] = value

    def _shared_zone(self, node: Node, zone: str, kind: str, size: int) -> None:
        """ngx_shared_memory_add(): one name, one use, one size."""
        known = self.zones.get(zone)
        if known is None:
            self.zones[zone] = (kind, None)
            return
        if known[0] != kind:
            raise node.error(
                f'the shared memory zone "{zone}" is already declared for a different use'
            )
        declared = known[1]
        if size and declared is not None and size != declared.size:
            raise node.error(
                f'the size {size} of shared memory zone "{zone}" '
                f"conflicts with already declared size {declared.size}"
            )
