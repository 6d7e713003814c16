"""The master's listening sockets: one ``SO_REUSEPORT`` socket per worker and address.

Why not one socket shared by every worker, as nginx does by default?
Measured with two uvloop workers on one inherited socket (Linux 6.x): 200
sequential connections went 1/199, bursts of 40 often 40/0.  Every worker
wakes on every connection and the first back in ``epoll_wait`` wins; libuv
then accepts until ``EAGAIN`` and offers nothing like nginx's
``EPOLLEXCLUSIVE`` + ``accept_mutex``.  With one ``SO_REUSEPORT`` socket per
worker the kernel hashes connections over the sockets: 110/90 and ~20/20 in
the same runs (nginx's ``listen ... reuseport``).

The master binds these sockets and keeps them open.  That is what keeps
reuseport's known weak spots away: when a worker dies, its socket -- and the
connections queued in it -- stay alive in the master until the replacement
worker (same index, same socket) accepts them; on reload, new worker *i*
takes over old worker *i*'s socket, so nothing queued is lost either.  Only
addresses dropped from the config, or worker indices removed by a smaller
``worker_processes``, lose what is queued on them when closed (as nginx).

Unix-domain listens cannot use ``SO_REUSEPORT``: all workers share one
inherited socket for them.  So do TCP listens where the option is missing.

Before binding a reuseport group the address is probed with a plain bind:
a reuseport bind would silently *join* a stale ngxws still listening there
instead of failing with nginx's ``bind() ... failed (98: Address already in
use)``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from ngxws.config.model import Config, Listen
from ngxws.listeners import BindError, ListenKey, bind_listen
from ngxws.routing.servers import virtual_hosts

HAVE_REUSEPORT = hasattr(socket, "SO_REUSEPORT")


def _bind_reuseport(listen: Listen) -> socket.socket:
    return bind_listen(listen, reuseport=True)


class ListenSockets:
    """For each listen address of one config: the socket of each worker index.

    A shared socket appears at every index of its list.
    """

    def __init__(self, by_key: dict[ListenKey, list[socket.socket]], workers: int) -> None:
        self.by_key = by_key
        self.workers = workers

    @classmethod
    def bind(cls, config: Config, workers: int, keep: ListenSockets | None = None) -> ListenSockets:
        """Bind what ``config`` needs for ``workers`` workers, reusing ``keep``'s
        sockets where the address is unchanged.  ``BindError`` leaves nothing
        new open."""
        kept = keep.by_key if keep is not None else {}
        fresh: list[socket.socket] = []
        out: dict[ListenKey, list[socket.socket]] = {}
        try:
            for key, (listen, _vh) in virtual_hosts(config).items():
                old = kept.get(key, [])
                shared = listen.unix is not None or not HAVE_REUSEPORT
                if shared:
                    if old:
                        sock = old[0]
                    else:
                        sock = bind_listen(listen)
                        fresh.append(sock)
                    out[key] = [sock] * workers
                    continue
                if not old:
                    bind_listen(listen).close()  # the probe: fail like nginx on a taken port
                group = list(dict.fromkeys(old))[:workers]
                while len(group) < workers:
                    sock = _bind_reuseport(listen)
                    fresh.append(sock)
                    group.append(sock)
                out[key] = group
        except BindError:
            for sock in fresh:
                sock.close()
            raise
        return cls(out, workers)

    def for_worker(self, index: int) -> dict[ListenKey, socket.socket]:
        """The sockets worker ``index`` accepts on."""
        return {key: group[index] for key, group in self.by_key.items()}

    def __iter__(self) -> Iterator[socket.socket]:
        seen: set[int] = set()
        for group in self.by_key.values():
            for sock in group:
                if id(sock) not in seen:
                    seen.add(id(sock))
                    yield sock

    def close_unused(self, still_used: ListenSockets | None) -> None:
        """Close the sockets of this set that ``still_used`` does not hold."""
        keep = {id(s) for s in still_used} if still_used is not None else set()
        for sock in self:
            if id(sock) not in keep:
                sock.close()
