"""The master <-> worker channel: one socketpair per worker, as nginx's ``ngx_channel``.

The master tells a worker what to do with one byte per command instead of a
signal.  A signal cannot say "drain" (stop accepting, let open tunnels end
on their own: what old workers do after a reload) without borrowing one an
operator might send by hand, and a worker learns of its master's death by
reading end-of-file, which no signal gives.  The other way, a worker sends
``READY`` once it accepts on its sockets: the master only retires the old
workers of a reload when the new ones are ready, and tells systemd
(``READY=1``) when the first ones are.

Operators' signals still work on a worker directly (``kill -QUIT`` a worker
and it quits gracefully); the channel is only how the master talks.
"""

from __future__ import annotations

import socket
from enum import Enum


class Command(bytes, Enum):
    """Master -> worker."""

    QUIT = b"q"  # graceful stop: close 1001 to websocket clients, then exit
    STOP = b"t"  # fast stop: close everything now
    DRAIN = b"d"  # reload: stop accepting, keep open tunnels until they end, no 1001
    REOPEN = b"o"  # reopen log files (logrotate)


READY = b"R"  # worker -> master: accepting on every socket


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(master end, worker end), both non-blocking."""
    master_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    master_end.setblocking(False)
    worker_end.setblocking(False)
    return master_end, worker_end


def send(sock: socket.socket, message: bytes) -> bool:
    """Send one message; False when the peer is gone (it will be reaped)."""
    try:
        return sock.send(message) == len(message)
    except OSError:
        return False
