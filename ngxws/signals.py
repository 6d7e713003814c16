"""``ngxws -s reload|reopen|quit|stop``: signal the master via its pid file, as ``nginx -s`` does.

Deliberate difference: ``quit`` and ``stop`` wait (at most ``STOP_WAIT``
seconds) until the master has exited, where nginx returns at once.  That
makes ``ExecStop=ngxws -s quit`` a correct systemd stop command (systemd
kills whatever is left as soon as ExecStop returns) and
``ngxws -s quit && ngxws run`` safe in scripts.  Exit code 1 if the master
is still running when the wait ends.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ngxws.config.model import Config

SIGNALS = {
    "stop": signal.SIGTERM,
    "quit": signal.SIGQUIT,
    "reopen": signal.SIGUSR1,
    "reload": signal.SIGHUP,
}

STOP_WAIT = 30.0  # > the master's own bound (grace + kill margin), so it normally decides


def _error(message: str) -> int:
    print(f"ngxws: [error] {message}", file=sys.stderr)
    return 1


def send_signal(config: Config, name: str, wait: float = STOP_WAIT) -> int:
    """Send signal ``name`` to the pid in the config's pid file; return an exit code."""
    if not config.pid_path:
        return _error('no "pid" file configured')
    try:
        with open(config.pid_path) as f:
            text = f.read().strip()
    except OSError as exc:
        return _error(f'open() "{config.pid_path}" failed ({exc.errno}: {exc.strerror})')
    try:
        pid = int(text)
    except ValueError:
        return _error(f'invalid PID number "{text}" in "{config.pid_path}"')
    sig = SIGNALS[name]
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return _error(f"kill({pid}, {int(sig)}) failed (3: No such process)")
    except PermissionError:
        return _error(f"kill({pid}, {int(sig)}) failed (1: Operation not permitted)")
    if name in ("quit", "stop") and not wait_for_exit(pid, wait):
        return _error(f"process {pid} still running after {wait:g}s")
    return 0


def wait_for_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` is gone (a zombie counts as gone: only its parent can reap it)."""
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
