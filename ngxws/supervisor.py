"""Starting and stopping the server process(es).

Today a single process binds the sockets and runs one ``Worker``.  The
split is already the one a master/worker design needs: sockets and shared
counters are created here, *before* the worker runs, so a master can fork
workers that inherit both.
"""

from __future__ import annotations

import asyncio
import logging
import os

import uvloop

from ngxws.accounting.counters import SharedCounters
from ngxws.config.model import Config
from ngxws.errorlog import setup_error_log
from ngxws.listeners import BindError, bind_all
from ngxws.worker import Worker

log = logging.getLogger("ngxws")


def run(config: Config, ready: bool = True) -> int:
    """Serve ``config`` until SIGTERM/SIGINT/SIGQUIT; return the exit code."""
    setup_error_log(config.error_log, config.error_log_level)
    try:
        sockets = bind_all(config)
    except BindError as exc:
        log.critical(str(exc))
        return 1
    counters = SharedCounters()
    slot = counters.allocate_slot()
    if config.pid_path:
        with open(config.pid_path, "w") as f:
            f.write(f"{os.getpid()}\n")
    worker = Worker(config, counters, slot)

    async def main() -> None:
        worker.install_signal_handlers()
        await worker.serve(sockets)

    try:
        uvloop.run(main())
    finally:
        for sock in sockets.values():
            sock.close()
        if config.pid_path:
            try:
                os.unlink(config.pid_path)
            except OSError:
                pass
    return 0


def run_in_loop(config: Config) -> tuple[Worker, asyncio.Task[None]]:  # pragma: no cover - helper for embedding
    """Start a worker inside an already running loop (tests, embedding)."""
    sockets = bind_all(config)
    counters = SharedCounters()
    worker = Worker(config, counters, counters.allocate_slot())
    return worker, asyncio.ensure_future(worker.serve(sockets))
