"""Address grammar: what nginx's ``ngx_parse_url()`` accepts in ``listen``,
an upstream ``server`` and ``proxy_pass``, with nginx's error wording.

Pure string work: names are not resolved here (nginx resolves them while
reading; ngxws does it when binding or connecting), only names no resolver
would take are refused.  ``listen`` parameters are in ``listen_params.py``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import NoReturn

from ngxws.config.model import Listen, ProxyPass, UpstreamPeer
from ngxws.config.reading import Node
from ngxws.config.units import TimeSlot, atoi, parse_time

__all__ = [
    "PROXY_PASS_URI_ERROR",
    "address_text",
    "explicit_port",
    "is_address",
    "is_ipv4",
    "parse_proxy_pass",
    "parse_upstream_server",
    "resolvable_name",
    "split_listen_address",
    "split_upstream_address",
]

PROXY_PASS_URI_ERROR = (
    '"proxy_pass" cannot have URI part in location given by regular expression, '
    'or inside named location, or inside "if" statement, or inside "limit_except" block'
)


def address_text(listen: Listen) -> str:
    """nginx's addr_text: ``0.0.0.0:80``, ``[::]:80``, ``unix:/path``."""
    if listen.unix is not None:
        return f"unix:{listen.unix}"
    if ":" in listen.host:
        return f"[{listen.host}]:{listen.port}"
    return f"{listen.host}:{listen.port}"


def _port(text: str) -> int | None:
    port = atoi(text)
    if port is None or not 1 <= port <= 65535:
        return None
    return port


def _split_bracketed(
    text: str, default_port: int, fail: Callable[[str], NoReturn]
) -> tuple[str, int, bool]:
    """``[v6]`` or ``[v6]:port`` -> (host, port, explicit port?), as
    ngx_parse_inet6_url() reads it; ``fail`` raises with nginx's wording."""
    close = text.find("]")
    if close < 0:
        fail("invalid host")
    try:
        host = str(ipaddress.IPv6Address(text[1:close]))
    except ValueError:
        fail("invalid host")
    rest = text[close + 1 :]
    if not rest:
        return host, default_port, False
    if not rest.startswith(":"):
        fail("invalid host")
    port = _port(rest[1:])
    if port is None:
        fail("invalid port")
    return host, port, True


def split_listen_address(node: Node, address: str) -> tuple[str, int, str | None]:
    """``listen`` address forms, as ngx_parse_url() reads them with listen=1."""

    def fail(what: str) -> NoReturn:
        raise node.error(f'{what} in "{address}" of the "listen" directive')

    if address.startswith("unix:"):
        if len(address) == 5:
            fail("no path")
        return "", 0, address[5:]
    if "/" in address:
        fail("invalid host")  # ngx_parse_inet_url(): no URI part in a listen address
    if address.startswith("["):
        v6_host, v6_port, _ = _split_bracketed(address, 80, fail)
        return v6_host, v6_port, None
    if ":" in address:
        host, _, port_text = address.partition(":")  # nginx splits at the first ":"
        port = _port(port_text)
        if port is None:
            fail("invalid port")
    elif atoi(address) is not None:
        port = _port(address)
        if port is None:
            fail("invalid port")
        return "0.0.0.0", port, None
    else:
        host, port = address, 80
    if host == "":
        fail("no host")
    if host == "*":
        return "0.0.0.0", port, None
    if host == "localhost":
        return "127.0.0.1", port, None
    try:
        return str(ipaddress.IPv4Address(host)), port, None
    except ValueError:
        pass
    if not resolvable_name(host):
        fail("host not found")
    # Other names: nginx resolves them here; ngxws keeps the name and the
    # listener resolves it when binding (the config layer does no I/O).
    return host, port, None


_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")


_DOTTED_QUAD = re.compile(r"\d+(\.\d+){3}")


def resolvable_name(host: str) -> bool:
    """Could a resolver find ``host``?  nginx resolves listen/upstream names
    while reading and reports failures as "host not found"; ngxws resolves
    later, so here it only refuses characters no host name has (``80]80``,
    ``8@080``), with nginx's message.  Anything else is let through: the
    resolver's quirks (``10.0.0.`` resolves) are not second-guessed here."""
    if _DOTTED_QUAD.fullmatch(host):
        return is_ipv4(host)  # 1.2.3.256: no resolver takes it
    return _HOSTNAME.fullmatch(host) is not None


def split_upstream_address(node: Node, address: str) -> tuple[str, int, str | None]:
    """An upstream ``server`` address: ``host[:port]``, ``[v6]:port``, ``unix:``."""
    if address.startswith("unix:"):
        if len(address) == 5:
            raise node.error(f'no path in the unix domain socket in upstream "{address}"')
        return "", 0, address[5:]
    if "/" in address:
        raise node.error(f'invalid host in upstream "{address}"')
    host, port, _ = _split_host_port(node, address, address, default_port=80)
    return host, port, None


def parse_upstream_server(node: Node, balance: str) -> tuple[UpstreamPeer, int]:
    """An upstream ``server`` line: the peer, and how many ``max_conns=``
    it gives (accepted, not enforced: the caller reports them)."""
    host, port, unix = split_upstream_address(node, node.args[0])
    weight, max_fails, fail_timeout = 1, 1, 10.0
    backup = down = False
    max_conns = 0
    for param in node.args[1:]:
        key, eq, value = param.partition("=")
        number = atoi(value) if eq else None
        if key == "weight" and eq and number is not None and number > 0:
            weight = number
        elif key == "max_fails" and eq and number is not None:
            max_fails = number
        elif key == "fail_timeout" and eq:
            try:
                fail_timeout = parse_time(value, TimeSlot.SEC)
            except ValueError:
                raise node.error(f'invalid parameter "{param}"') from None
        elif key == "max_conns" and eq and number is not None:
            max_conns += 1
        elif param == "backup" and not eq:
            if balance in ("ip_hash", "hash"):
                # ip_hash/hash set flags that refuse backup on later servers
                raise node.error('balancing method does not support parameter "backup"')
            backup = True
        elif param == "down" and not eq:
            down = True
        else:
            raise node.error(f'invalid parameter "{param}"')
    peer = UpstreamPeer(
        host=host,
        port=port,
        weight=weight,
        max_fails=max_fails,
        fail_timeout=fail_timeout,
        backup=backup,
        down=down,
        unix=unix,
        server=node.args[0],
    )
    return peer, max_conns


def _split_host_port(
    node: Node, hostport: str, shown: str, default_port: int, proxy_pass: bool = False
) -> tuple[str, int, bool]:
    """host[:port] / [v6][:port] -> (host, port, explicit port?); errors name
    ``shown`` as nginx does: ``invalid port in upstream "a:xx"``.  A
    ``proxy_pass`` host is checked later (``Builder``), as nginx resolves it
    after the parse."""

    def fail(what: str) -> NoReturn:
        raise node.error(f'{what} in upstream "{shown}"')

    if hostport.startswith("["):
        return _split_bracketed(hostport, default_port, fail)
    host, port, explicit = hostport, default_port, False
    if ":" in hostport:
        host, _, port_text = hostport.partition(":")  # nginx splits at the first ":"
        parsed = _port(port_text)
        if parsed is None:
            fail("invalid port")
        port, explicit = parsed, True
    if not host:
        fail("no host")
    if not proxy_pass and not is_ipv4(host) and not resolvable_name(host):
        fail("host not found")
    return host, port, explicit


def is_ipv4(host: str) -> bool:
    return ":" not in host and is_address(host)


def is_address(host: str) -> bool:
    """An IPv4 or IPv6 address: what ngx_parse_url() takes without resolving."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def explicit_port(url: str) -> bool:
    rest = url.split("://", 1)[-1]
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("["):
        return "]:" in hostport
    return ":" in hostport


def parse_proxy_pass(node: Node, url: str) -> ProxyPass:
    """Split a ``proxy_pass`` URL as ngx_http_proxy_pass() does."""
    lower = url.lower()
    uri: str | None = None
    if "$" in url:
        # With variables nginx checks nothing now and evaluates per request;
        # the split here is a best effort for display only.
        scheme = "https" if lower.startswith("https://") else "http"
        rest = url.split("://", 1)[1] if "://" in url else url
        hostport, has_uri, path_part = rest.partition("/")
        host, has_port, port_text = hostport.rpartition(":")
        if not has_port or not host or host.startswith("[") != host.endswith("]"):
            host, port_text = hostport, ""
        return ProxyPass(
            url=url,
            scheme=scheme,
            host=host,
            port=_port(port_text) or (443 if scheme == "https" else 80),
            uri="/" + path_part if has_uri else None,
            has_variables=True,
            source=node.source,
        )
    if lower.startswith("http://"):
        scheme, rest, default_port = "http", url[7:], 80
    elif lower.startswith("https://"):
        scheme, rest, default_port = "https", url[8:], 443
    else:
        raise node.error("invalid URL prefix")
    if rest.lower().startswith("unix:"):
        path = rest[5:]
        colon = path.find(":")
        if colon >= 0:
            path, uri = path[:colon], path[colon + 1 :]
        if not path:
            raise node.error(f'no path in the unix domain socket in upstream "{rest}"')
        return ProxyPass(
            url=url, scheme=scheme, host="", port=0, uri=uri, unix=path, source=node.source
        )
    slash = rest.find("/")
    hostport, uri = (rest[:slash], rest[slash:]) if slash >= 0 else (rest, None)
    host, port, _ = _split_host_port(node, hostport, rest, default_port, proxy_pass=True)
    return ProxyPass(url=url, scheme=scheme, host=host, port=port, uri=uri, source=node.source)
