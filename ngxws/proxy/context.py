"""The narrow view of a worker that the connection protocols get.

A client connection, a tunnel and the per-request helpers (upgrade, auth
subrequest, ...) need a handful of the worker's things: its counters and
counter rows, config lookups, upstream pools, the limiter, the ws_log
loggers, the error log, and the registries of live connections and tunnels
(nginx's cycle->connections, which shutdown and drain walk).  They get them
through this Protocol, not the ``Worker`` class: ``worker.py`` imports the
protocols to serve, so the protocols importing it back made an import circle.

This module imports nothing from ``ngxws.proxy`` or ``ngxws.worker`` at run
time; the types below are for the checker only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ngxws.accounting.breakdown import KeyMap
    from ngxws.accounting.counters import SharedCounters
    from ngxws.config.model import Config, Server
    from ngxws.http.maps import CompiledMap
    from ngxws.limits.preaccess import Limiter
    from ngxws.proxy.upstream import UpstreamPools, UpstreamUnavailable
    from ngxws.sinks.logfile import LogFile
    from ngxws.sinks.wslog import ConnInfo, FrameLogger


class HeldConnection(Protocol):
    """What the worker does to a client connection it holds: on stop or
    drain, idle keep-alive connections are closed (nginx's
    ngx_close_idle_connections)."""

    def shutdown(self) -> None: ...


class HeldTunnel(Protocol):
    """What the worker does to a websocket tunnel it holds on stop."""

    def close_with(self, code: int, reason: str) -> None: ...

    def stop_reading(self) -> None: ...

    def close(self, reason: str = "", abort: bool = False) -> None: ...


class WorkerContext(Protocol):
    """Implemented by ``ngxws.worker.Worker``."""

    config: Config
    counters: SharedCounters
    keys: KeyMap
    limiter: Limiter
    maps: dict[str, CompiledMap]
    pools: UpstreamPools
    connections: set[HeldConnection]
    tunnels: set[HeldTunnel]

    def ws_logger(
        self, server: Server, conn: Callable[[], ConnInfo]
    ) -> tuple[FrameLogger | None, LogFile | None]: ...

    def log_error(self, message: str) -> None: ...

    def log_info(self, message: str) -> None: ...

    def log_upstream_failure(self, exc: UpstreamUnavailable, request_line: str) -> None: ...
