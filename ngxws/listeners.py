"""Binding the listening sockets a config asks for.

Sockets are bound once, before any worker starts (and, with several
workers, before they fork), so a bind error is reported like nginx's
``bind() to 0.0.0.0:80 failed (98: Address already in use)`` and nothing
starts.  Workers inherit the bound sockets; a reload keeps the sockets whose
address is still configured.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat

from ngxws.config.model import Config, Listen, Server
from ngxws.routing.servers import VirtualHosts, virtual_hosts

ListenKey = tuple[str, int, str | None]


class BindError(Exception):
    """A listen address could not be bound; the message reads like nginx's."""


def bind_listen(listen: Listen, backlog: int = 511) -> socket.socket:
    if listen.unix is not None:
        path = listen.unix
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # a stale socket from an earlier run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise BindError(f"bind() to unix:{path} failed ({exc.errno}: {exc.strerror})") from exc
    else:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((listen.host, listen.port))
        except OSError as exc:
            sock.close()
            shown = f"[{listen.host}]" if family == socket.AF_INET6 else listen.host
            raise BindError(
                f"bind() to {shown}:{listen.port} failed ({exc.errno}: {exc.strerror})"
            ) from exc
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def bind_all(config: Config, keep: dict[ListenKey, socket.socket] | None = None) -> dict[ListenKey, socket.socket]:
    """One socket per distinct listen address; reuse ``keep``'s where they match."""
    keep = keep or {}
    out: dict[ListenKey, socket.socket] = {}
    try:
        for key, (listen, _vh) in virtual_hosts(config).items():
            out[key] = keep[key] if key in keep else bind_listen(listen)
    except BindError:
        for key, sock in out.items():
            if key not in keep:
                sock.close()
        raise
    return out


def tls_context(servers: list[Server]) -> ssl.SSLContext | None:
    """A server-side TLS context for a listener whose ``listen`` says ``ssl``.

    The default server's certificate is the context's; other servers on the
    socket are picked by SNI.
    """
    with_cert = [s for s in servers if s.ssl_certificate and s.ssl_certificate_key]
    if not with_cert:
        return None

    def make(server: Server) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        assert server.ssl_certificate and server.ssl_certificate_key
        ctx.load_cert_chain(server.ssl_certificate, server.ssl_certificate_key)
        versions = {
            "TLSv1": ssl.TLSVersion.TLSv1,
            "TLSv1.1": ssl.TLSVersion.TLSv1_1,
            "TLSv1.2": ssl.TLSVersion.TLSv1_2,
            "TLSv1.3": ssl.TLSVersion.TLSv1_3,
        }
        allowed = [versions[p] for p in server.ssl_protocols if p in versions]
        if allowed:
            ctx.minimum_version = min(allowed)
            ctx.maximum_version = max(allowed)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    default = make(with_cert[0])
    by_name: dict[str, ssl.SSLContext] = {}
    for s in with_cert[1:]:
        c = make(s)
        for name in s.server_names:
            by_name.setdefault(name.lower(), c)

    def pick(sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        if name and name.lower() in by_name:
            sslobj.context = by_name[name.lower()]

    if by_name:
        default.sni_callback = pick
    return default


def listener_table(config: Config) -> dict[ListenKey, tuple[Listen, VirtualHosts, list[Server]]]:
    """For each listen address: the listen that defines it, its name table and its servers."""
    table: dict[ListenKey, tuple[Listen, VirtualHosts, list[Server]]] = {}
    for key, (listen, vh) in virtual_hosts(config).items():
        servers = [s for s in config.servers if any(lst.key == key for lst in s.listens)]
        table[key] = (listen, vh, servers)
    return table
