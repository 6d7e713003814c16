"""``ngxws -s reload|reopen|quit|stop``: signal the running server via its pid file, as ``nginx -s`` does."""

from __future__ import annotations

import os
import signal
import sys

from ngxws.config.model import Config

SIGNALS = {
    "stop": signal.SIGTERM,
    "quit": signal.SIGQUIT,
    "reopen": signal.SIGUSR1,
    "reload": signal.SIGHUP,
}


def send_signal(config: Config, name: str) -> int:
    """Send signal ``name`` to the pid in the config's pid file; return an exit code."""
    if not config.pid_path:
        print('ngxws: [error] no "pid" file configured', file=sys.stderr)
        return 1
    try:
        with open(config.pid_path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError) as exc:
        print(f'ngxws: [error] invalid PID number in "{config.pid_path}" ({exc})', file=sys.stderr)
        return 1
    try:
        os.kill(pid, SIGNALS[name])
    except ProcessLookupError:
        print(f"ngxws: [error] kill({pid}, {SIGNALS[name]}) failed (3: No such process)", file=sys.stderr)
        return 1
    return 0
