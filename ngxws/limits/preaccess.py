"""The preaccess phase: ``limit_req`` then ``limit_conn``, as nginx runs them.

nginx registers both handlers in NGX_HTTP_PREACCESS_PHASE, after the
rewrite phases (``return``, ``if``) and before access (``allow``/``deny``,
``auth_basic``); a phase runs its handlers in reverse registration order,
so ``limit_req`` decides first and ``limit_conn`` counts only requests it
let through (after their delay).

``Limiter.limit_req`` is ngx_http_limit_req_handler() with
ngx_http_limit_req_account() and _unlock(); ``Limiter.limit_conn`` is
ngx_http_limit_conn_handler().  Both run once per request: their
``r->main->limit_*_status`` lives in ``RequestLimits``, shared by the
request's internal redirects (``error_page``), and so does the pool
cleanup that gives limit_conn's counts back -- ``RequestLimits.release()``,
called when the request ends, or for a websocket, when its tunnel closes.

Error log lines are nginx's, at ``limit_*_log_level`` (delays one level
lower), with its request context (``, client: ..., server: ...,
request: "...", host: "..."``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from ngxws.config.limits import LimitReq, Limits
from ngxws.errorlog import ALERT, LEVELS
from ngxws.http.upstream_request import RequestVariables
from ngxws.limits.state import (
    DELAYED,
    DELAYED_DRY_RUN,
    PASSED,
    REJECTED,
    REJECTED_DRY_RUN,
    RequestLimits,
)
from ngxws.limits.table import NGX_AGAIN, NGX_BUSY, NGX_ERROR, NGX_OK
from ngxws.limits.zones import SharedZone

__all__ = ["KeyOf", "Limiter", "monotonic_ms", "log_context"]

log = logging.getLogger("ngxws")

# ngx_http_limit_req_merge_conf(): delays are logged one level below limits
_DELAY_LEVEL = {"error": "warn", "warn": "notice", "notice": "info", "info": "info"}


def monotonic_ms() -> int:
    """``ngx_current_msec``: milliseconds of CLOCK_MONOTONIC, one clock for
    every process, so ``last`` written by one worker means the same to all."""
    return time.monotonic_ns() // 1_000_000


KeyOf = Callable[[str], bytes]


def log_context(v: RequestVariables) -> str:
    """What ngx_http_log_error_handler() appends to a request's error line."""
    head = v.head
    host = head.header("host")
    text = f', client: {v.remote_addr}, server: {v.server_name}, request: "{head.request_line}"'
    return text + (f', host: "{host}"' if host is not None else "")


class Limiter:
    """A worker's view of the zones: the two handlers, which the request
    engine (ngxws.http.engine) calls in this order -- limit_req, its delay
    (the shell sleeps it), then limit_conn."""

    def __init__(
        self, zones: Mapping[str, SharedZone], clock: Callable[[], int] = monotonic_ms
    ) -> None:
        self.zones = zones
        self.clock = clock

    # -- ngx_http_limit_req_handler() --------------------------------------------

    def limit_req(
        self, state: RequestLimits, limits: Limits, key_of: KeyOf, context: str
    ) -> tuple[int, int]:
        """Returns (status to answer, 0) or (0, delay in ms)."""
        if state.req_status or not limits.req:
            return 0, 0
        entries = limits.req
        last = len(entries) - 1
        excess = 0
        rc: int | None = None  # NGX_DECLINED
        held: list[tuple[SharedZone, int]] = []  # ctx->node of each zone that passed
        n = 0
        limit = entries[0]
        while n < len(entries):
            limit = entries[n]
            zone = self.zones[limit.zone]
            key = key_of(zone.spec.key)
            if not key:
                n += 1
                continue
            if len(key) > 65535:
                log.error(
                    f'the value of the "{zone.spec.key}" key is more than 65535 bytes: '
                    f'"{key.decode("latin-1")}"{context}'
                )
                n += 1
                continue
            assert zone.req is not None
            with zone.locked():
                rc, excess, node = zone.req.lookup(key, self.clock(), limit.burst, n == last)
            if rc == NGX_ERROR:
                log.log(ALERT, f'could not allocate node in limit_req zone "{zone.name}"')
            if rc != NGX_AGAIN:
                break
            held.append((zone, node))
            n += 1
        if rc is None:
            return 0, 0
        dry = limits.req_dry_run
        if rc in (NGX_BUSY, NGX_ERROR):
            if rc == NGX_BUSY:
                log.log(
                    LEVELS[limits.req_log_level],
                    f"limiting requests{', dry run' if dry else ''}, excess: "
                    f'{excess // 1000}.{excess % 1000:03d} by zone "{limit.zone}"{context}',
                )
            for zone, node in held:  # ngx_http_limit_req_unlock()
                assert zone.req is not None
                with zone.locked():
                    zone.req.unlock(node)
            if dry:
                state.req_status = REJECTED_DRY_RUN
                return 0, 0
            state.req_status = REJECTED
            return limits.req_status, 0
        if rc == NGX_AGAIN:
            excess = 0
        delay, excess, limit = self._account(entries, held, excess, limit)
        if not delay:
            state.req_status = PASSED
            return 0, 0
        log.log(
            LEVELS[_DELAY_LEVEL[limits.req_log_level]],
            f"delaying request{', dry run' if dry else ''}, excess: "
            f'{excess // 1000}.{excess % 1000:03d}, by zone "{limit.zone}"{context}',
        )
        if dry:
            state.req_status = DELAYED_DRY_RUN
            return 0, 0
        state.req_status = DELAYED
        return 0, delay

    def _account(
        self,
        entries: tuple[LimitReq, ...],
        held: list[tuple[SharedZone, int]],
        excess: int,
        limit: LimitReq,
    ) -> tuple[int, int, LimitReq]:
        """ngx_http_limit_req_account(): store the new excess of every node
        the earlier limits held; the longest delay any limit asks for wins
        (returned with its excess and limit, for the log line)."""
        rate = self.zones[limit.zone].spec.rate
        max_delay = 0 if excess <= limit.delay else (excess - limit.delay) * 1000 // rate
        if not held:
            return max_delay, excess, limit
        by_zone = {e.zone: e for e in entries}
        for zone, node in reversed(held):
            assert zone.req is not None
            with zone.locked():
                node_excess = zone.req.account(node, self.clock())
            entry = by_zone[zone.name]
            if node_excess <= entry.delay:
                continue
            delay = (node_excess - entry.delay) * 1000 // zone.spec.rate
            if delay > max_delay:
                max_delay, excess, limit = delay, node_excess, entry
        return max_delay, excess, limit

    # -- ngx_http_limit_conn_handler() -------------------------------------------

    def limit_conn(self, state: RequestLimits, limits: Limits, key_of: KeyOf, context: str) -> int:
        """Count the request in every zone; 0 to go on, else the status."""
        if state.conn_status:
            return 0
        for limit in limits.conn:
            zone = self.zones[limit.zone]
            key = key_of(zone.spec.key)
            if not key:
                continue
            if len(key) > 255:
                log.error(
                    f'the value of the "{zone.spec.key}" key is more than 255 bytes: '
                    f'"{key.decode("latin-1")}"{context}'
                )
                continue
            state.conn_status = PASSED
            assert zone.conn is not None
            with zone.locked():
                rc, node = zone.conn.acquire(key, limit.conn)
            if rc == NGX_OK:
                state.held.append((zone, node))
                continue
            dry = limits.conn_dry_run
            if rc == NGX_ERROR:  # ngx_slab_alloc_locked() logs it (log_nomem)
                log.critical(f'ngx_slab_alloc() failed: no memory in limit_conn_zone "{zone.name}"')
            else:
                log.log(
                    LEVELS[limits.conn_log_level],
                    f'limiting connections{", dry run," if dry else ""} by zone "{zone.name}"{context}',
                )
            state.release()  # ngx_http_limit_conn_cleanup_all()
            if dry:
                state.conn_status = REJECTED_DRY_RUN
                return 0
            state.conn_status = REJECTED
            return limits.conn_status
        return 0
