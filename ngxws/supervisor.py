"""Starting the server: the ``ngxws run`` entry point.

ngxws runs nginx's process model -- one master, ``worker_processes``
workers -- even for one worker, so that signals, reloads and worker deaths
go through one code path.  The master is ``master.Master``; a worker is
``worker.Worker`` in a forked process.
"""

from __future__ import annotations

from ngxws.config.model import Config
from ngxws.master import Master


def run(config: Config) -> int:
    """Serve ``config`` until stopped; return the process exit code.

    0 after a stop by signal, 1 when the server could not start (the
    reason is in the error log, like nginx's ``[emerg]`` lines) or lost
    every worker.
    """
    return Master(config).run()

