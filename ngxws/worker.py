"""A worker: one event loop serving every listener of one config.

With ``worker_processes 1`` the worker is the whole server; with more, the
supervisor forks several, each running this same code on the inherited
sockets and its own counter slot.  Everything a request handler needs from
"the server" (config, counters, upstream pools, log files, the set of open
tunnels for shutdown) hangs off the ``Worker``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import TYPE_CHECKING

from ngxws.accounting.counters import SharedCounters
from ngxws.config.model import Config, Server
from ngxws.listeners import ListenKey, listener_table, tls_context
from ngxws.proxy.upstream import UpstreamPools
from ngxws.sinks.logfile import LogFile, LogFiles
from ngxws.sinks.wslog import ConnInfo, FrameLogger

if TYPE_CHECKING:
    from ngxws.proxy.client import ClientConnection
    from ngxws.proxy.tunnel import Tunnel

log = logging.getLogger("ngxws")

FLUSH_INTERVAL = 0.1  # ws_log lines reach the disk at least this often
SHUTDOWN_GRACE = 5.0


class Worker:
    """Serves one config on already-bound sockets until told to stop."""

    def __init__(self, config: Config, counters: SharedCounters, slot: int) -> None:
        self.config = config
        self.counters = counters
        self.slot = slot
        self.pools = UpstreamPools(config)
        self.logs = LogFiles()
        self.tunnels: set[Tunnel] = set()
        self.connections: set[ClientConnection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._stopped: asyncio.Event | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._log_dest: dict[int, LogFile | None] = {}
        for server in config.servers:
            self._log_dest[id(server)] = self._open_ws_log(server)

    # -- ws_log ------------------------------------------------------------

    def _open_ws_log(self, server: Server) -> LogFile | None:
        templates = server.ws.effective_templates()
        if not any((templates.frame, templates.open, templates.close, templates.client, templates.server)):
            return None
        path = server.ws.log_path
        if path is None:
            # chainstack fork: `ws_log_enabled on` without ws_log -> error log
            path = self.config.error_log or "/dev/stderr"
        return self.logs.get(path)

    def ws_logger(self, server: Server, conn: ConnInfo) -> tuple[FrameLogger | None, LogFile | None]:
        """The per-tunnel logger for ``server``, or (None, None) when it logs nothing."""
        dest = self._log_dest.get(id(server))
        if dest is None:
            return None, None
        return FrameLogger(server.ws.effective_templates(), conn), dest

    def log_error(self, message: str) -> None:
        log.error(message)

    def log_info(self, message: str) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(message)

    # -- serving -----------------------------------------------------------

    async def serve(self, sockets: dict[ListenKey, socket.socket]) -> None:
        """Accept on ``sockets`` until ``stop()``; then shut down cleanly."""
        from ngxws.proxy.client import ClientConnection

        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for key, (listen, vhosts, servers) in listener_table(self.config).items():
            ctx = tls_context(servers) if listen.ssl else None

            def factory(listen: object = listen, vhosts: object = vhosts) -> ClientConnection:
                return ClientConnection(self, listen, vhosts)  # type: ignore[arg-type]

            server = await loop.create_server(
                factory, sock=sockets[key], ssl=ctx, backlog=511, start_serving=True
            )
            self._servers.append(server)
        self._schedule_flush()
        await self._stopped.wait()

    def _schedule_flush(self) -> None:
        self.logs.flush_all()
        self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._schedule_flush)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, False)
        loop.add_signal_handler(signal.SIGINT, self.request_stop, False)
        loop.add_signal_handler(signal.SIGQUIT, self.request_stop, True)
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)

    def reopen_logs(self) -> None:
        for path, exc in self.logs.reopen_all():
            log.error(f'reopen "{path}" failed ({exc})')

    def request_stop(self, graceful: bool) -> None:
        asyncio.ensure_future(self.stop(graceful))

    async def stop(self, graceful: bool) -> None:
        """Stop accepting, end every connection, flush every log line.

        Graceful (SIGQUIT, nginx's "quit"): websocket clients get close 1001
        "Going Away" between frames.  Fast (SIGTERM/SIGINT): tunnels are
        closed at once.  Either way every line written reaches the file.
        """
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.shutdown()
        for tunnel in list(self.tunnels):
            if graceful:
                tunnel.close_with(1001, "Going Away")
            else:
                tunnel.close("worker stopping")
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while (self.tunnels or self.connections) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for tunnel in list(self.tunnels):
            tunnel.close("shutdown grace expired")
        await asyncio.sleep(0)  # let transports flush their close
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self.logs.close_all()
        if self._stopped is not None:
            self._stopped.set()
