"""Free loopback ports for the servers the tests start.

Ports come from below the kernel's ephemeral range (32768-60999 by default),
walking from a per-process starting point: a port the kernel hands out for
``bind(0)`` is also what it hands to the next outgoing connection, so a
server told to listen there could find it taken (EADDRINUSE) between the
check and its own bind -- a test failure with nothing wrong in ngxws.
"""

from __future__ import annotations

import os
import socket
import threading

_LOW, _SPAN = 20000, 12000  # 20000-31999
_next = _LOW + (os.getpid() * 7919) % _SPAN
_lock = threading.Lock()  # the corpus starts its cases from several threads


def free_port(family: int = socket.AF_INET) -> int:
    """A port nothing listens on now, on 127.0.0.1 (or ::1 for AF_INET6)."""
    global _next
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    for _ in range(_SPAN):
        with _lock:
            port = _next
            _next = _LOW + (_next - _LOW + 1) % _SPAN
        with socket.socket(family) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 20000-31999")
