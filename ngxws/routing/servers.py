"""Which ``server`` answers a request: nginx's virtual server selection.

A listening socket (address:port) carries the servers that listen on it.  The
Host header (port and trailing dot removed, lower-cased) is matched against
their ``server_name``s in nginx's order:

1. exact name;
2. longest leading wildcard (``*.example.com``; ``.example.com`` also
   matches ``example.com`` itself);
3. longest trailing wildcard (``www.example.*``);
4. first regular expression (``~^...``) in config order;
5. otherwise the socket's default server: the one marked
   ``default_server``, else the first server listening there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ngxws.config.model import Config, Listen, Server
from ngxws.config.pcre import compile_pcre


@dataclass
class VirtualHosts:
    """Name lookup tables for one listening socket, built once at start-up."""

    default: Server
    exact: dict[str, Server] = field(default_factory=dict)
    leading: list[tuple[str, Server]] = field(default_factory=list)  # suffix incl. dot
    trailing: list[tuple[str, Server]] = field(default_factory=list)  # prefix incl. dot
    regexes: list[tuple[re.Pattern[str], Server]] = field(default_factory=list)
    # select()'s recent answers by Host as it came (a websocket endpoint
    # sees the same few again and again); bounded, emptied by add()
    _chosen: dict[str, Server] = field(default_factory=dict, init=False, repr=False, compare=False)

    def add(self, server: Server) -> None:
        self._chosen.clear()
        for name in server.server_names:
            n = name.lower()
            if n.startswith("~"):
                self.regexes.append((compile_pcre(name[1:]), server))
            elif n.startswith("*."):
                self.leading.append((n[1:], server))
            elif n.startswith("."):
                self.exact.setdefault(n[1:], server)
                self.leading.append((n, server))
            elif n.endswith(".*"):
                self.trailing.append((n[:-1], server))
            else:
                # first server that names it wins, as nginx warns and does
                self.exact.setdefault(n, server)
        self.leading.sort(key=lambda p: -len(p[0]))
        self.trailing.sort(key=lambda p: -len(p[0]))

    def select(self, host: str | None) -> Server:
        if not host:
            return self.default
        chosen = self._chosen.get(host)
        if chosen is not None:
            return chosen
        chosen = self._select(host)
        if len(host) <= 256:  # bounded: clients choose Host
            if len(self._chosen) >= 256:
                self._chosen.clear()
            self._chosen[host] = chosen
        return chosen

    def _select(self, host: str) -> Server:
        name = normalise_host(host)
        server = self.exact.get(name)
        if server is not None:
            return server
        for suffix, s in self.leading:
            if name.endswith(suffix):
                return s
        for prefix, s in self.trailing:
            if name.startswith(prefix):
                return s
        for rx, s in self.regexes:
            if rx.search(name):
                return s
        return self.default

    def name_captures(self, server: Server, host: str | None) -> tuple[tuple[str, ...], dict[str, str]]:
        """The captures (``$1``.., named) of the regex ``server_name`` that
        chose ``server`` for ``host`` (ngx_http_validate_host's regex match
        sets the request's captures); empty when a plain name chose it."""
        if not self.regexes or not host:
            return (), {}
        name = normalise_host(host)
        if (
            name in self.exact
            or any(name.endswith(suffix) for suffix, _ in self.leading)
            or any(name.startswith(prefix) for prefix, _ in self.trailing)
        ):
            return (), {}
        for rx, s in self.regexes:
            m = rx.search(name)
            if m is not None:
                if s is not server:
                    return (), {}
                return tuple(g or "" for g in m.groups()), {k: g or "" for k, g in m.groupdict().items()}
        return (), {}


def normalise_host(host: str) -> str:
    """Host header -> the name nginx matches: no port, no trailing dot, lower case."""
    h = host.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[: end + 1] if end >= 0 else h
    colon = h.rfind(":")
    if colon >= 0:
        h = h[:colon]
    return h.rstrip(".")


def virtual_hosts(config: Config) -> dict[tuple[str, int, str | None], tuple[Listen, VirtualHosts]]:
    """Group the servers by listening socket: one listener per distinct address."""
    groups: dict[tuple[str, int, str | None], list[tuple[Listen, Server]]] = {}
    for server in config.servers:
        for listen in server.listens:
            groups.setdefault(listen.key, []).append((listen, server))
    table: dict[tuple[str, int, str | None], tuple[Listen, VirtualHosts]] = {}
    for key, members in groups.items():
        default = next((s for lst, s in members if lst.default_server), members[0][1])
        first_listen = next((lst for lst, s in members if lst.default_server), members[0][0])
        vh = VirtualHosts(default=default)
        for _, s in members:
            vh.add(s)
        table[key] = (first_listen, vh)
    return table
