"""Applying a ``listen``'s socket options to the bound socket, as
ngx_configure_listening_sockets() and ngx_open_listening_sockets() do on
Linux: ``rcvbuf``/``sndbuf`` (``SO_RCVBUF``/``SO_SNDBUF``), ``so_keepalive``
(``SO_KEEPALIVE`` and ``TCP_KEEPIDLE``/``TCP_KEEPINTVL``/``TCP_KEEPCNT``,
which accepted sockets inherit), ``fastopen`` (``TCP_FASTOPEN``),
``deferred`` (``TCP_DEFER_ACCEPT``).  ``backlog`` is the ``listen()``
argument; ``reuseport`` is what ngxws does for every TCP address anyway
(``listen_sockets``), ``bind`` what it does for every address.

nginx logs a failing setsockopt() as an alert and goes on; so does this
(the caller gets the messages).
"""

from __future__ import annotations

import socket

from ngxws.config.model import SocketOptions

__all__ = ["apply_socket_options"]


def apply_socket_options(sock: socket.socket, opts: SocketOptions, tcp: bool) -> list[str]:
    """Set ``opts`` on ``sock`` (bound, not yet listening); return the
    setsockopt() failures, worded like nginx's alerts."""
    failures: list[str] = []

    def setopt(level: int, option: int, value: int, name: str) -> None:
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:
            failures.append(f"setsockopt({name}, {value}) failed ({exc.errno}: {exc.strerror})")

    if opts.rcvbuf is not None:
        setopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf, "SO_RCVBUF")
    if opts.sndbuf is not None:
        setopt(socket.SOL_SOCKET, socket.SO_SNDBUF, opts.sndbuf, "SO_SNDBUF")
    if not tcp:
        return failures  # the rest are TCP's (nginx skips them for unix: too)
    if opts.keepalive is not None:
        setopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if opts.keepalive else 0, "SO_KEEPALIVE")
    for value, option, name in (
        (opts.keepidle, getattr(socket, "TCP_KEEPIDLE", None), "TCP_KEEPIDLE"),
        (opts.keepintvl, getattr(socket, "TCP_KEEPINTVL", None), "TCP_KEEPINTVL"),
        (opts.keepcnt, getattr(socket, "TCP_KEEPCNT", None), "TCP_KEEPCNT"),
    ):
        if value and option is not None:
            setopt(socket.IPPROTO_TCP, option, value, name)
    if opts.fastopen is not None and hasattr(socket, "TCP_FASTOPEN"):
        setopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, opts.fastopen, "TCP_FASTOPEN")
    if opts.deferred and hasattr(socket, "TCP_DEFER_ACCEPT"):
        setopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, opts.deferred, "TCP_DEFER_ACCEPT")
    return failures
