"""``resolver`` and ``resolver_timeout``: the name servers ``proxy_pass``
with variables asks when its host is not an ``upstream {}`` name.

Read as nginx 1.22's ngx_resolver_create() reads the arguments:
``address[:port]`` (port 53 by default; a name is resolved now, as nginx
resolves it while reading), ``valid=TIME`` (how long answers are kept,
instead of the records' TTL) and ``ipv6=on|off`` (look up AAAA records too;
on by default).  The lookups themselves: ``ngxws.proxy.resolver``.
"""

from __future__ import annotations

import socket

from ngxws.config.model import Resolver
from ngxws.config.reading import Node, ReadingError
from ngxws.config.units import TimeSlot, parse_time

__all__ = ["read_resolver"]


def _server(node: Node, text: str) -> list[tuple[str, int]]:
    """ngx_parse_url() with default port 53: ``[v6]:port``, ``host:port``."""

    def fail(what: str) -> ReadingError:
        return node.error(f'{what} in resolver "{text}"')

    host, port = text, 53
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise fail("invalid host")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise fail("invalid port")
            port = int(rest[1:])
    elif ":" in text:
        host, _, digits = text.rpartition(":")
        if not digits.isdigit():
            raise fail("invalid port")
        port = int(digits)
    if not host:
        raise fail("no host")
    if not 1 <= port <= 65535:
        raise fail("invalid port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICSERV)
    except (socket.gaierror, UnicodeError):
        raise fail("host not found") from None
    return list(dict.fromkeys((str(info[4][0]), int(info[4][1])) for info in infos))  # each once, in order


def read_resolver(node: Node) -> Resolver:
    """The arguments of one ``resolver`` line, with nginx's errors."""
    servers: list[tuple[str, int]] = []
    valid: float | None = None
    ipv6 = True
    for arg in node.args:
        if arg.startswith("valid="):
            try:
                valid = parse_time(arg[6:], TimeSlot.SEC)
            except ValueError:
                raise node.error(f"invalid parameter: {arg}") from None
            continue
        if arg.startswith("ipv6="):
            if arg[5:] not in ("on", "off"):
                raise node.error(f"invalid parameter: {arg}")
            ipv6 = arg[5:] == "on"
            continue
        servers.extend(_server(node, arg))
    if not servers:
        raise node.error("no name servers defined")
    return Resolver(tuple(servers), valid, ipv6)
