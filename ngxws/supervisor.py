"""Starting the server: the ``ngxws run`` entry point.

ngxws runs nginx's process model -- one master, ``worker_processes``
workers -- even for one worker, so that signals, reloads and worker deaths
go through one code path.  The master is ``master.Master``; a worker is
``worker.Worker`` in a forked process.  ``run_in_loop`` is the exception:
one in-process worker for embedding, without master, signals or reloads.
"""

from __future__ import annotations

import asyncio

from ngxws.accounting.counters import SharedCounters
from ngxws.config.model import Config
from ngxws.listeners import bind_all
from ngxws.master import Master
from ngxws.worker import Worker


def run(config: Config) -> int:
    """Serve ``config`` until stopped; return the process exit code.

    0 after a stop by signal, 1 when the server could not start (the
    reason is in the error log, like nginx's ``[emerg]`` lines) or lost
    every worker.
    """
    return Master(config).run()


def run_in_loop(
    config: Config,
) -> tuple[Worker, asyncio.Task[None]]:  # pragma: no cover - helper for embedding
    """Start a worker inside an already running loop (tests, embedding)."""
    sockets = bind_all(config)
    counters = SharedCounters()
    worker = Worker(config, counters, counters.allocate_slot())
    return worker, asyncio.ensure_future(worker.serve(sockets))
