"""A worker: one event loop serving every listener of one config.

The master (``master.py``) forks ``worker_processes`` of these; each runs
this same code on its own listening sockets and its own counter slot.
Everything a request handler needs from "the server" (config, counters,
upstream pools, log files, the set of open tunnels for shutdown) hangs off
the ``Worker``.

A worker ends in one of three ways, each mirroring nginx:

- fast stop (SIGTERM/SIGINT, ``Command.STOP``): close everything now;
- graceful stop (SIGQUIT, ``Command.QUIT``): stop accepting, websocket
  clients get close 1001 "Going Away" between frames, bounded by
  ``SHUTDOWN_GRACE``;
- drain (``Command.DRAIN``, after a reload or when the master is gone):
  stop accepting and let open tunnels run until they end on their own, as
  nginx's old workers do after ``nginx -s reload``.

Every way flushes every ws_log line before the process exits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ngxws.access import read_file
from ngxws.accounting.breakdown import KeyMap
from ngxws.accounting.breakdown import labels as breakdown_labels
from ngxws.accounting.connstats import ConnStats
from ngxws.accounting.counters import SharedCounters
from ngxws.channel import READY, Command
from ngxws.channel import send as channel_send
from ngxws.config.model import Config, Server
from ngxws.errorlog import ALERT, NOTICE, reopen_error_log, setup_error_log
from ngxws.fdlimits import apply_rlimit_nofile
from ngxws.first_bytes import Arrivals, FirstBytesReader
from ngxws.http.engine import World
from ngxws.http.maps import compile_maps
from ngxws.limits.preaccess import Limiter
from ngxws.limits.zones import LimitZones
from ngxws.listeners import ListenKey, accepting_factory, listener_table, tls_context
from ngxws.proxy.files import stat_file
from ngxws.proxy.preface import preface_factory
from ngxws.proxy.upstream import UpstreamPools, UpstreamUnavailable
from ngxws.proxy_protocol import ProxyHeader
from ngxws.sinks.logfile import LogFile, LogFiles
from ngxws.sinks.wslog import ConnInfo, FrameLogger

if TYPE_CHECKING:
    from ngxws.proxy.context import HeldConnection, HeldTunnel

log = logging.getLogger("ngxws")

FLUSH_INTERVAL = 0.1  # ws_log lines reach the disk at least this often
SHUTDOWN_GRACE = 5.0  # graceful stop: how long tunnels get to finish after 1001
# stop or drain: a connection still waiting for a request this long after it
# began is closed (nginx waits for its timers; one between keep-alive
# requests goes at once)
DRAIN_IDLE_GRACE = 1.0
# nginx's worker_shutdown_timeout (not in the config model yet): how long a
# draining worker waits for its tunnels before closing them with 1001.
# None = until they end, nginx's default.
WORKER_SHUTDOWN_TIMEOUT: float | None = None
_POLL = 0.02

EXIT_OK = 0
EXIT_FATAL = 2  # nginx's "exited with fatal code 2 and cannot be respawned"

# Signals a worker handles itself; blocked from fork until its loop has
# handlers for them (see run_worker_process).
WORKER_SIGNALS = frozenset(
    {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGHUP, signal.SIGCHLD}
)


def ws_log_path(config: Config, server: Server) -> str | None:
    """Where ``server``'s ws_log lines go, or None when it logs nothing."""
    templates = server.ws.effective_templates()
    if not any(
        (templates.frame, templates.open, templates.close, templates.client, templates.server)
    ):
        return None
    path = server.ws.log_path
    if path is None:
        # chainstack fork: `ws_log_enabled on` without ws_log -> error log
        path = config.error_log or "/dev/stderr"
    return path


class _Refused(asyncio.Protocol):
    """A connection over ``worker_connections``: closed at once, as nginx does."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class Worker:
    """Serves one config on already-bound sockets until told to stop."""

    def __init__(
        self,
        config: Config,
        counters: SharedCounters,
        slot: int,
        channel: socket.socket | None = None,
        zones: LimitZones | None = None,
    ) -> None:
        self.config = config
        # limit_req / limit_conn zones: the master's (shared by every worker),
        # or this process's own when a worker runs alone (tests)
        self.limiter = Limiter(zones if zones is not None else LimitZones.for_config(config))
        # the request engine's view of the world: files, limit zones, the error log
        self.world = World(stat=stat_file, limiter=self.limiter, read_file=read_file, log_error=self.log_error)
        self.counters = counters
        self.slot = slot
        self.conn_stats = ConnStats(counters.array, slot)  # stub_status's counters (connstats.py)
        counters.register(breakdown_labels(config))  # a no-op under a master, which did it before forking
        self.keys = KeyMap(config, counters, slot)  # (server, location) -> this worker's counter row
        self.channel = channel
        self.pools = UpstreamPools(config)
        self.logs = LogFiles()
        self.tunnels: set[HeldTunnel] = set()
        self.connections: set[HeldConnection] = set()
        # connections in a PROXY preface or TLS handshake: not yet in ``connections``
        self.arrivals = Arrivals()
        self.draining = False
        self._servers: list[asyncio.AbstractServer] = []
        self._stopped: asyncio.Event | None = None
        self._stopping = False
        self._fast = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._refused_logged_at = -1.0
        self._log_dest: dict[int, LogFile | None] = {}
        # `map` blocks, compiled once per worker (config is immutable)
        self.maps = compile_maps(config.maps)
        for server in config.servers:
            path = ws_log_path(config, server)
            self._log_dest[id(server)] = self.logs.get(path) if path is not None else None

    # -- ws_log ------------------------------------------------------------

    def ws_logger(
        self, server: Server, conn: Callable[[], ConnInfo]
    ) -> tuple[FrameLogger | None, LogFile | None]:
        """The per-tunnel logger for ``server``, or (None, None) when it logs
        nothing (then ``conn`` is never called: no per-tunnel log state)."""
        dest = self._log_dest.get(id(server))
        if dest is None:
            return None, None
        return FrameLogger(server.ws.effective_templates(), conn()), dest

    def logs_tunnels(self, server: Server) -> bool:
        """Whether ``server``'s tunnels log lines (``ws_logger`` gives them a logger)."""
        return self._log_dest.get(id(server)) is not None

    def log_error(self, message: str) -> None:
        log.error(message)

    def log_upstream_failure(self, exc: UpstreamUnavailable, request_line: str) -> None:
        if exc.alert or exc.whole:  # a whole nginx line (socket() failed ...): its level, its context
            log.log(ALERT if exc.alert else logging.ERROR, f'{exc}, request: "{request_line}"')
        else:
            log.error(f"{exc} while proxying {request_line}")

    def log_info(self, message: str) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(message)

    # -- serving -----------------------------------------------------------

    def open_connections(self) -> int:
        """Connections held now, counted as nginx counts against
        ``worker_connections``: every client connection, plus the upstream
        connection of each websocket tunnel.  (An HTTP request's upstream
        connection is not counted: it is short and always paired with one.)"""
        return len(self.connections) + 2 * len(self.tunnels)

    async def serve(self, sockets: dict[ListenKey, socket.socket]) -> None:
        """Accept on ``sockets`` until stopped; then shut down cleanly."""
        from ngxws.proxy.client import ClientConnection

        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        cap = self.config.worker_connections
        for key, (listen, vhosts, servers) in listener_table(self.config).items():
            ctx = tls_context(servers, vhosts) if listen.ssl else None

            def factory(
                listen: object = listen, vhosts: object = vhosts, proxy: ProxyHeader | None = None
            ) -> asyncio.Protocol:
                # open_connections(), inline: one call less per connection
                if cap > 0 and len(self.connections) + 2 * len(self.tunnels) >= cap:
                    self._log_refused(cap)
                    self.conn_stats.refused()
                    return _Refused()
                return ClientConnection(self, listen, vhosts, proxy, loop)  # type: ignore[arg-type]

            # TLS sockets get a TLSAcceptor in front: a ClientHello goes to the
            # loop's SSL protocol, plain HTTP gets nginx's 400 (not a reset);
            # proxy_protocol ones a PrefaceReader before that.
            timeout = vhosts.default.client_header_timeout
            accept = accepting_factory(factory, ctx, timeout)
            if listen.proxy_protocol:
                accept = preface_factory(factory, ctx, timeout)
            server = await loop.create_server(
                accept if accept is factory else self._arrival_factory(accept),
                sock=sockets[key],
                backlog=listen.options.backlog,  # (the loop calls listen() again)
                start_serving=True,
            )
            self._servers.append(server)
        if self.logs:  # no ws_log file, nothing to flush: no 10 Hz wake-up (bench W7)
            self._schedule_flush()
        if self.channel is not None:
            loop.add_reader(self.channel.fileno(), self._read_channel)
            channel_send(self.channel, READY)
        await self._stopped.wait()

    def _arrival_factory(self, accept: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """``accept``, its protocols (first-bytes readers) telling ``arrivals``."""

        def arrival() -> asyncio.Protocol:
            reader = accept()
            if isinstance(reader, FirstBytesReader):
                reader.arrivals = self.arrivals
            return reader

        return arrival

    def _log_refused(self, cap: int) -> None:
        # nginx logs this per refused connection; once a second is enough to see it.
        now = asyncio.get_running_loop().time()
        if now - self._refused_logged_at >= 1.0:
            self._refused_logged_at = now
            log.log(ALERT, f"{cap} worker_connections are not enough")

    def _schedule_flush(self) -> None:
        self.logs.flush_all()
        self._flush_timer = asyncio.get_running_loop().call_later(
            FLUSH_INTERVAL, self._schedule_flush
        )

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, False)
        loop.add_signal_handler(signal.SIGINT, self.request_stop, False)
        loop.add_signal_handler(signal.SIGQUIT, self.request_stop, True)
        loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)

    def _read_channel(self) -> None:
        assert self.channel is not None
        try:
            data = self.channel.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # The master is gone.  Keep no listening socket a new ngxws would
            # need, but do not cut the tunnels that are still open.
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
            log.log(ALERT, "master process is gone, worker stops accepting")
            self.request_drain()
            return
        for byte in data:
            command = bytes((byte,))
            if command == Command.QUIT:
                self.request_stop(True)
            elif command == Command.STOP:
                self.request_stop(False)
            elif command == Command.DRAIN:
                self.request_drain()
            elif command == Command.REOPEN:
                self.reopen_logs()

    def reopen_logs(self) -> None:
        """SIGUSR1 / ``nginx -s reopen``: ws_log files and the error log,
        by name; lines buffered before go to the old (renamed) files."""
        reopen_error_log()
        self.logs.reopen_all()  # logs its own failures; a file that fails keeps its old fd

    # -- ending --------------------------------------------------------------

    def request_stop(self, graceful: bool) -> None:
        asyncio.ensure_future(self.stop(graceful))

    def request_drain(self) -> None:
        asyncio.ensure_future(self.drain())

    def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()

    async def stop(self, graceful: bool) -> None:
        """Stop accepting, end every connection, flush every log line.

        Graceful (SIGQUIT, nginx's "quit"): websocket clients get close 1001
        "Going Away" between frames.  Fast (SIGTERM/SIGINT): tunnels are
        closed at once.  A fast stop during a graceful one cuts it short.
        """
        if self._stopping:
            if not graceful and not self._fast:
                self._fast = True
                self._close_tunnels_now()
            return
        self._stopping = True
        self._fast = not graceful
        log.log(NOTICE, "gracefully shutting down" if graceful else "exiting")
        self._close_listeners()
        if graceful:
            for tunnel in list(self.tunnels):
                tunnel.close_with(1001, "Going Away")
        else:
            self._close_tunnels_now()
        await asyncio.sleep(0)  # connections accepted in this turn: see drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE
        close_waiting_at = loop.time() + DRAIN_IDLE_GRACE
        while (
            (self.tunnels or self.connections or self.arrivals.pending())
            and loop.time() < deadline
            and not (self._fast and not self.tunnels)
        ):
            self._close_idle(loop.time() >= close_waiting_at)
            await asyncio.sleep(_POLL)
        for tunnel in list(self.tunnels):
            tunnel.close("shutdown grace expired")
        await asyncio.sleep(0)  # let transports flush their close
        self._finish()

    def _close_idle(self, waiting_too: bool) -> None:
        """Close the connections a stopping worker closes now: those between
        keep-alive requests (also once a request is answered), and with
        ``waiting_too`` those still waiting for a request or in their PROXY
        preface or TLS handshake (``ClientConnection.shutdown``)."""
        for conn in list(self.connections):
            conn.shutdown(waiting_too)
        if waiting_too:
            for transport in self.arrivals.pending():
                cast(asyncio.Transport, transport).abort()

    def _close_tunnels_now(self) -> None:
        """Fast stop: every tunnel stops reading first (no new line is made),
        then each closes (writing its close line), then every line is written."""
        tunnels = list(self.tunnels)
        for tunnel in tunnels:
            tunnel.stop_reading()
        for tunnel in tunnels:
            tunnel.close("worker stopping")
        self.logs.flush_all()

    async def drain(self) -> None:
        """Reload: stop accepting; let tunnels and requests in progress end on their own.

        No 1001 is sent (nginx's old workers keep upgraded connections
        until they close).  Connections between keep-alive requests are
        closed at once; those still waiting for a request (or in a PROXY
        preface or TLS handshake) after ``DRAIN_IDLE_GRACE`` -- not at once,
        so a connection accepted just before the drain still gets its first
        request answered.  The worker exits when nothing is left; a stop
        command during a drain wins.
        """
        if self._stopping or self.draining:
            return
        self.draining = True
        log.log(NOTICE, "gracefully shutting down")
        self._close_listeners()
        # A connection the loop accepted in this same turn has its
        # connection_made() queued, not run: one turn more and it is in
        # ``connections`` (exiting now would close it unanswered).
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        close_idle_at = loop.time() + DRAIN_IDLE_GRACE
        deadline = (
            loop.time() + WORKER_SHUTDOWN_TIMEOUT if WORKER_SHUTDOWN_TIMEOUT is not None else None
        )
        while self.tunnels or self.connections or self.arrivals.pending():
            if self._stopping:
                return  # stop() finishes
            now = loop.time()
            if deadline is not None and now >= deadline:
                await self.stop(True)
                return
            self._close_idle(now >= close_idle_at)
            await asyncio.sleep(0.05)
        if not self._stopping:
            self._finish()

    def _finish(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.logs.close_all()
        if self.channel is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.channel.fileno())
            except (OSError, ValueError):
                pass
        if self._stopped is not None:
            self._stopped.set()


def run_worker_process(
    config: Config,
    counters: SharedCounters,
    slot: int,
    sockets: dict[ListenKey, socket.socket],
    channel: socket.socket,
    zones: LimitZones | None = None,
) -> int:
    """The life of a forked worker process; returns its exit code.

    Called in the child right after ``fork()`` with ``WORKER_SIGNALS``
    blocked (the master blocks them around the fork).  They stay blocked
    until the worker's own loop has handlers for them, so a signal sent to a
    worker that is still starting is acted on rather than lost or deadly.
    The loop is a fresh uvloop one: the master never runs a loop, so nothing
    of one crosses the fork.
    """
    for sig in WORKER_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reload is the master's business
    signal.set_wakeup_fd(-1)
    try:
        setup_error_log(config.error_log, config.error_log_level)
    except OSError:
        pass  # keep the master's handler (inherited fd): the master checked the file
    apply_rlimit_nofile(config.worker_rlimit_nofile)
    try:
        worker = Worker(config, counters, slot, channel, zones)
    except OSError as exc:
        log.log(ALERT, f'open() "{exc.filename}" failed ({exc.errno}: {exc.strerror})')
        return EXIT_FATAL

    import uvloop

    # What was built so far (modules, config, tables) lives as long as the
    # worker: out of the collector's sight, its full collections stop
    # walking it every few thousand connections.
    gc.freeze()

    async def main() -> None:
        worker.install_signal_handlers()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)
        await worker.serve(sockets)

    try:
        uvloop.run(main())
    except Exception as exc:
        log.critical(f"worker process failed: {exc!r}")
        return 1
    finally:
        # The loop's handlers are gone: a late signal must not kill us midway out.
        signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        worker.logs.close_all()  # a no-op after a clean stop; after a crash, keeps the buffered lines
    log.log(NOTICE, "exit")
    return EXIT_OK
