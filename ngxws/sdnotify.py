"""systemd's readiness protocol (``Type=notify``), without libsystemd.

systemd passes ``NOTIFY_SOCKET``; the service sends ``READY=1`` once it
serves, ``RELOADING=1``/``READY=1`` around a reload and ``STOPPING=1`` when
it starts to stop.  Outside systemd the variable is unset and this does
nothing.  Only the master calls it: with ``NotifyAccess=main`` systemd only
listens to the main pid.
"""

from __future__ import annotations

import os
import socket
import time


def notify(*states: str) -> None:
    """Send ``states`` (``"READY=1"``...) to systemd if it is listening."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    message = "\n".join(states).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, address)
    except OSError:
        pass  # systemd gone or not ours: nothing to tell


def reloading() -> None:
    # Type=notify-reload wants the monotonic time with RELOADING=1.
    notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
