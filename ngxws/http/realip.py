"""ngx_http_realip_module: the client's address from a header a trusted
proxy set, or from the PROXY protocol preface.  Pure: no sockets.

nginx runs the module twice per request -- in the POST_READ phase with
the server's settings, and again in PREACCESS with the location's if the
first run changed nothing -- and the address it finds replaces the
connection's for the rest of the request (``$remote_addr``,
``$binary_remote_addr``, ``$remote_port``, allow/deny, limits, ip_hash,
``X-Forwarded-For``, the ws log); the next request on the connection starts
from the peer again (its pool cleanup).  ``ClientAddress`` is that state.

``forwarded_addr`` mirrors ngx_http_get_forwarded_addr() (1.22): the
address must be trusted (``set_real_ip_from``) to be replaced by the last
address of the header; with ``real_ip_recursive on`` the walk goes on
leftwards while the address found is trusted too.  Addresses are read as
ngx_parse_addr_port() reads them (``addr``, ``addr:port``,
``[v6]:port``), so a port in the header becomes ``$remote_port``; without
one ``$remote_port`` is empty, as in nginx.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from ngxws.config.model import RealIP
from ngxws.proxy_protocol import ProxyHeader, ntop6

if TYPE_CHECKING:
    from asyncio import BaseTransport

__all__ = [
    "ClientAddress", "forwarded_addr", "parse_addr", "parse_addr_port", "trusted_match", "trusted_source",
]

UNIX = "unix:"
_new = object.__new__
_Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | str, ...]


def _inet_addr(text: str) -> str | None:
    """ngx_inet_addr(): four dot-separated decimal octets (an empty octet is
    0, leading zeros are allowed); 255.255.255.255 is INADDR_NONE."""
    octets = text.split(".")
    if len(octets) != 4:
        return None
    values: list[int] = []
    for octet in octets:
        if octet and not (octet.isascii() and octet.isdigit()):
            return None
        value = int(octet) if octet else 0
        if value > 255:
            return None
        values.append(value)
    if values == [255, 255, 255, 255]:
        return None
    return ".".join(map(str, values))


def parse_addr(text: str) -> str | None:
    """ngx_parse_addr(): an IPv4 or IPv6 address, as nginx then prints it."""
    v4 = _inet_addr(text)
    if v4 is not None:
        return v4
    if not text or "%" in text or not text.isascii():
        return None
    try:
        return ntop6(ipaddress.IPv6Address(text).packed)
    except ValueError:
        return None


def parse_addr_port(text: str) -> tuple[str, int] | None:
    """ngx_parse_addr_port(): ``addr``, ``addr:port`` or ``[v6addr]:port``
    (port 1-65535); the port is 0 when there is none."""
    addr = parse_addr(text)
    if addr is not None:
        return addr, 0
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or close == len(text) - 1 or text[close + 1] != ":":
            return None
        host, port_text = text[1:close], text[close + 2 :]
    else:
        host, sep, port_text = text.partition(":")
        if not sep:
            return None
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        return None
    addr = parse_addr(host)
    return None if addr is None else (addr, int(port_text))


def trusted_source(value: str) -> tuple[str, bool]:
    """A ``set_real_ip_from`` address read as ngx_ptocidr() reads it (or
    ``unix:``): the CIDR, and whether the address had bits set below the
    mask (nginx masks them and warns).  ``ValueError`` if it is none (nginx
    then resolves it as a host name)."""
    if value == UNIX:
        return value, False
    addr, slash, bits = value.partition("/")
    if slash and not (bits.isascii() and bits.isdigit()):
        raise ValueError(value)
    if "%" in addr or (":" not in addr and _inet_addr(addr) is None):
        raise ValueError(value)
    net = ipaddress.ip_network(value, strict=False)
    return str(net), net.network_address != ipaddress.ip_address(addr)


@lru_cache(maxsize=64)
def _networks(trusted: tuple[str, ...]) -> _Networks:
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network | str] = []
    for item in trusted:
        out.append(item if item == UNIX else ipaddress.ip_network(item, strict=False))
    return tuple(out)


def trusted_match(addr: str, trusted: tuple[str, ...]) -> bool:
    """ngx_cidr_match(): is ``addr`` (``"unix:"`` for a unix-socket peer) in
    one of the ``set_real_ip_from`` entries?  Families never mix."""
    if addr == UNIX:
        return UNIX in trusted
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(not isinstance(net, str) and ip.version == net.version and ip in net for net in _networks(trusted))


def _forwarded_one(
    addr: tuple[str, int], value: str, trusted: tuple[str, ...], recursive: bool
) -> tuple[str, tuple[str, int]]:
    """ngx_http_get_forwarded_addr_internal(): ("ok"|"done"|"declined", address)."""
    found = False
    n = len(value)
    while True:
        if not trusted_match(addr[0], trusted):
            return ("done" if found else "declined"), addr
        p = n - 1
        while p > 0 and value[p] in " ,":  # trailing separators
            p -= 1
            n -= 1
        while p > 0:  # back to the start of the last element
            if value[p] in " ,":
                p += 1
                break
            p -= 1
        parsed = parse_addr_port(value[max(p, 0) : n])
        if parsed is None:
            return ("done" if found else "declined"), addr
        addr, found = parsed, True
        n = p - 1
        if not (recursive and p > 0):
            return "ok", addr


def forwarded_addr(
    addr: tuple[str, int], values: Sequence[str], trusted: tuple[str, ...], recursive: bool
) -> tuple[str, int] | None:
    """ngx_http_get_forwarded_addr(): the client's address (and port) behind
    the peer ``addr``, given the header ``values`` in arrival order (several
    only for X-Forwarded-For, read from the last); None when nginx declines."""
    status = "declined"
    found = False
    for value in reversed(values):
        status, addr = _forwarded_one(addr, value, trusted, recursive)
        if not recursive:
            break
        if status == "declined" and found:
            status = "done"
            break
        if status != "ok":
            break
        found = True
    return None if status == "declined" else addr


class ClientAddress:
    """A connection's client address: the peer (or a PROXY preface's
    addresses), and per request what realip made of it."""

    __slots__ = ("peer", "local", "proxy", "addr", "port", "changed")

    def __init__(
        self, peer_addr: str, peer_port: int, proxy: ProxyHeader | None = None, local: tuple[str, int] = ("", 0)
    ) -> None:
        self.peer = (peer_addr, peer_port)
        self.local = local
        self.proxy = proxy
        self.addr, self.port = self.peer
        self.changed = False  # realip's ctx: set once it replaced the address

    @classmethod
    def of(cls, transport: BaseTransport, proxy: ProxyHeader | None) -> ClientAddress:
        """The peer and local addresses of a connection (``"unix:"``, port 0
        on a unix socket, as nginx prints them)."""
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        # what __init__ makes, without its call (one per connection)
        self = _new(cls)
        self.peer = self.addr, self.port = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else (UNIX, 0)
        self.local = (str(local[0]), int(local[1])) if isinstance(local, tuple) else (UNIX, 0)
        self.proxy = proxy
        self.changed = False
        return self

    @property
    def ends(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """(peer address, port), (local address, port)."""
        return self.peer, self.local

    def begin_request(self, conf: RealIP, headers: Sequence[tuple[str, str]]) -> tuple[str, int]:
        """A new request starts from the peer (nginx's pool cleanup restored
        it); then the POST_READ run with the server's ``conf``."""
        self.addr, self.port = self.peer
        self.changed = False
        if not conf.trusted:  # run()'s answer without it: no set_real_ip_from
            return self.peer
        return self.run(conf, headers)

    def run(self, conf: RealIP, headers: Sequence[tuple[str, str]]) -> tuple[str, int]:
        """ngx_http_realip_handler() with the settings of a server or a
        location; returns the request's client address and port."""
        if not conf.trusted or self.changed:
            return self.addr, self.port
        kind = conf.header.lower()
        if conf.header == "proxy_protocol":
            values = [self.proxy.src_addr] if self.proxy is not None else []
        elif conf.header == "X-Forwarded-For":
            values = [v for k, v in headers if k.lower() == kind]
        else:  # X-Real-IP and any other name: the first such header
            values = next(([v] for k, v in headers if k.lower() == kind), [])
        found = forwarded_addr(self.peer, values, conf.trusted, conf.recursive) if values else None
        if found is not None:
            if conf.header == "proxy_protocol" and self.proxy is not None:
                found = (found[0], self.proxy.src_port)
            self.addr, self.port = found
            self.changed = True
        return self.addr, self.port

    def variable(self, name: str) -> str | None:
        """``$realip_remote_addr``/``_port`` and ``$proxy_protocol_*``; None
        for other names."""
        if name == "realip_remote_addr":
            return self.peer[0]
        if name == "realip_remote_port":
            return str(self.peer[1]) if self.peer[1] else ""
        if not name.startswith("proxy_protocol_"):
            return None
        pp = self.proxy
        field = name[len("proxy_protocol_") :]
        if field == "addr":
            return pp.src_addr if pp else ""
        if field == "port":
            return str(pp.src_port) if pp and pp.src_port else ""
        if field == "server_addr":
            return pp.dst_addr if pp else ""
        if field == "server_port":
            return str(pp.dst_port) if pp and pp.dst_port else ""
        return None
