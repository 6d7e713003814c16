"""The narrow view of a worker that the connection protocols get.

A client connection, a tunnel and the per-request helpers (upgrade, auth
subrequest, ...) need a handful of the worker's things: its counters and
counter rows, config lookups, upstream pools, the limiter, the ws_log
loggers, the error log, and the registries of live connections and tunnels
(nginx's cycle->connections, which shutdown and drain walk).  They get them
through this Protocol, not the ``Worker`` class: ``worker.py`` imports the
protocols to serve, so the protocols importing it back made an import circle.

This module imports nothing from ``ngxws.proxy`` or ``ngxws.worker`` at run
time (only the engine's pure ``Connection``, which ``RequestIO`` extends);
the types below are for the checker only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ngxws.http.engine import Connection

if TYPE_CHECKING:
    import asyncio

    from ngxws.accounting.breakdown import KeyMap
    from ngxws.accounting.connstats import ConnStats
    from ngxws.accounting.counters import SharedCounters
    from ngxws.config.model import Config, Location, ProxyPass, Server
    from ngxws.http.engine import Action, World
    from ngxws.http.maps import CompiledMap
    from ngxws.http.upstream_request import RequestVariables
    from ngxws.limits.preaccess import Limiter
    from ngxws.proxy.pending import Pending
    from ngxws.proxy.static_send import WriteGate
    from ngxws.proxy.upstream import UpstreamPools, UpstreamUnavailable
    from ngxws.proxy.upstream_response import UpstreamResponse
    from ngxws.sinks.logfile import LogFile
    from ngxws.sinks.wslog import ConnInfo, FrameLogger


class HeldConnection(Protocol):
    """What the worker does to a client connection it holds: on stop or
    drain, idle keep-alive connections are closed at once (nginx's
    ngx_close_idle_connections); with ``waiting_too``, also those still
    waiting for (the rest of) a request head."""

    def shutdown(self, waiting_too: bool) -> None: ...


class HeldTunnel(Protocol):
    """What the worker does to a websocket tunnel it holds on stop."""

    def close_with(self, code: int, reason: str) -> None: ...

    def stop_reading(self) -> None: ...

    def close(self, reason: str = "", abort: bool = False) -> None: ...


class WorkerContext(Protocol):
    """Implemented by ``ngxws.worker.Worker``."""

    config: Config
    counters: SharedCounters
    conn_stats: ConnStats
    keys: KeyMap
    limiter: Limiter
    maps: dict[str, CompiledMap]
    pools: UpstreamPools
    connections: set[HeldConnection]
    tunnels: set[HeldTunnel]
    world: World  # what the request engine may ask of the world (ngxws.http.engine)

    def ws_logger(
        self, server: Server, conn: Callable[[], ConnInfo]
    ) -> tuple[FrameLogger | None, LogFile | None]: ...

    def logs_tunnels(self, server: Server) -> bool: ...

    def log_error(self, message: str) -> None: ...

    def log_info(self, message: str) -> None: ...

    def log_upstream_failure(self, exc: UpstreamUnavailable, request_line: str) -> None: ...


class Settable(Protocol):
    """A per-connection timeout a location may change (``send_timeout``)."""

    seconds: float


class RequestIO(Connection, Protocol):
    """What the per-request helpers (actions, auth_request, handshake,
    response_pass, upgrade, static_phase) use of the client connection that
    runs them; implemented by ``ngxws.proxy.client.ClientConnection``.  They
    take this, not the class, so they need not import the module that
    imports them.  What the engine reads and sets of it is ``Connection``."""

    worker: WorkerContext
    transport: asyncio.Transport | None
    upstream_transport: asyncio.Transport | None
    server_addr: str
    server_port: int
    scheme: str  # "http" or "https": the listen socket's
    handed_over: bool
    stat_state: int  # stub_status's count of it (ngxws.accounting.connstats)
    write_gate: WriteGate
    held: Pending | None  # an upgrade request not answered yet

    @property
    def send_timer(self) -> Settable: ...

    def current_request_id(self) -> str: ...

    def write(self, data: bytes) -> None: ...

    def cancel_timer(self) -> None: ...

    def proxy_target(self, pp: ProxyPass, v: RequestVariables) -> ProxyPass: ...

    async def open_upstream(
        self, pending: Pending, server: Server, loc: Location, captures: tuple[str, ...]
    ) -> tuple[UpstreamResponse, str]: ...

    async def run_location(
        self, pending: Pending, server: Server, loc: Location, captures: tuple[str, ...], keep: bool
    ) -> bool: ...

    async def answer_error(
        self,
        status: int,
        pending: Pending,
        server: Server,
        loc: Location | None,
        keep: bool,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> bool: ...

    async def carry(self, action: Action) -> bool: ...
