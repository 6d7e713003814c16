"""The parameters after a ``listen`` address, read as ngx_http_core_listen()
reads them on Linux (Debian's nginx 1.22).

Pure: a list of words in, a ``ListenParams`` out, or a ``ValueError``
whose text is nginx's message (the loader adds file:line).  The socket
options are applied when the socket is bound (``ngxws.socket_options``).

Platform notes, as nginx built for Linux behaves: ``setfib=`` is FreeBSD's
and is an "invalid parameter"; ``accept_filter=`` is FreeBSD's too, but
nginx only logs that it is not supported and goes on (so it is accepted
and reported harmless here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ngxws.config.model import Ignored, Server, SocketOptions, Source
from ngxws.config.units import TimeSlot, parse_size, parse_time

__all__ = ["ListenParams", "not_served_listen", "parse_listen_params", "socket_settings"]

ListenKey = tuple[str, int, str | None]


@dataclass
class ListenParams:
    """What the words after the address said."""

    default_server: bool = False
    ssl: bool = False
    http2: bool = False
    proxy_protocol: bool = False
    quic: bool = False
    ipv6only: bool = True
    # nginx's lsopt.set: a socket option was given (one listen per address may)
    has_options: bool = False
    options: SocketOptions = field(default_factory=SocketOptions)
    # (parameter, why it does nothing here) for the check report
    harmless: list[tuple[str, str]] = field(default_factory=list)


def _atoi(text: str) -> int | None:
    """ngx_atoi(): plain decimal digits, else None (NGX_ERROR)."""
    if text and text.isascii() and text.isdigit():
        return int(text)
    return None


def parse_listen_params(words: Sequence[str]) -> ListenParams:
    """Read ``words`` (the ``listen`` arguments after the address)."""
    out = ListenParams()
    opts: dict[str, object] = {}
    for word in words:
        name, eq, value = word.partition("=")
        if word in ("default_server", "default"):
            out.default_server = True
        elif word == "ssl":
            out.ssl = True
        elif word == "http2":
            out.http2 = True
        elif word == "quic":
            out.quic = True
        elif word == "proxy_protocol":
            out.proxy_protocol = True
        elif word in ("bind", "reuseport"):
            opts[word] = True
        elif word == "deferred":
            opts[word] = 1  # the seconds come from client_header_timeout (socket_settings)
        elif eq and name in ("fastopen", "backlog"):
            number = _atoi(value)
            if number is None or (name == "backlog" and number == 0):
                raise ValueError(f'invalid {name} "{word}"')
            opts[name] = number
        elif eq and name in ("rcvbuf", "sndbuf"):
            try:
                opts[name] = parse_size(value)
            except ValueError:
                raise ValueError(f'invalid {name} "{word}"') from None
        elif eq and name == "accept_filter":
            out.harmless.append((word, "accept filters are FreeBSD's; nginx on Linux ignores them too"))
        elif word.startswith("ipv6only=o"):
            # ngx_http_core_listen() matches the prefix "ipv6only=o"
            if value not in ("on", "off"):
                raise ValueError(f'invalid ipv6only flags "{word[9:]}"')
            out.ipv6only = value == "on"
            out.has_options = True
        elif eq and name == "so_keepalive":
            opts.update(_so_keepalive(value))
        else:
            raise ValueError(f'invalid parameter "{word}"')
    if opts:
        out.has_options = True
        out.options = replace(SocketOptions(), **opts)  # type: ignore[arg-type]
    return out


def _so_keepalive(value: str) -> dict[str, object]:
    """``on``, ``off`` or ``[keepidle]:[keepintvl]:[keepcnt]`` (times in
    seconds, nginx's ngx_parse_time(s, 1)); at least one of the three."""
    if value == "on":
        return {"keepalive": True}
    if value == "off":
        return {"keepalive": False}
    parts = value.split(":", 2)
    parts += [""] * (3 - len(parts))
    found: dict[str, object] = {"keepalive": True}
    try:
        for key, text in (("keepidle", parts[0]), ("keepintvl", parts[1])):
            if text:
                found[key] = int(parse_time(text, TimeSlot.SEC))
        if parts[2]:
            count = _atoi(parts[2])
            if count is None:
                raise ValueError(parts[2])
            found["keepcnt"] = count
    except ValueError:
        raise ValueError(f'invalid so_keepalive value: "{value}"') from None
    if not any(found.get(k) for k in ("keepidle", "keepintvl", "keepcnt")):
        raise ValueError(f'invalid so_keepalive value: "{value}"')
    return found


def socket_settings(
    servers: Sequence[Server], defaults: Mapping[ListenKey, Server]
) -> dict[ListenKey, tuple[bool, SocketOptions]]:
    """Per address, what every listen on it shares: ``proxy_protocol`` (ORed
    over the listens, as ngx_http_add_addresses() does) and the socket
    options of the one listen that has any.  ``deferred`` becomes the
    default server's ``client_header_timeout`` in seconds, the
    ``TCP_DEFER_ACCEPT`` value ngx_configure_listening_sockets() sets."""
    out: dict[ListenKey, tuple[bool, SocketOptions]] = {}
    for server in servers:
        for listen in server.listens:
            proxy_protocol, opts = out.get(listen.key, (False, SocketOptions()))
            if listen.options != SocketOptions():
                opts = listen.options
            out[listen.key] = (proxy_protocol or listen.proxy_protocol, opts)
    for key, (proxy_protocol, opts) in out.items():
        if opts.deferred:
            seconds = max(1, math.ceil(defaults[key].client_header_timeout))
            out[key] = (proxy_protocol, replace(opts, deferred=seconds))
    return out


STREAM_NOT_SERVED = "NOT served: nothing accepts on this address (stream {} is not implemented)"


def not_served_listen(args: Sequence[str], source: Source) -> Ignored:
    """A ``listen`` inside ``stream {}``: an address nothing will accept on."""
    return Ignored(f"stream listen {' '.join(args)}", source, False, STREAM_NOT_SERVED)
