"""``ngxws check``: what a loaded config will do, and what of it ngxws ignores.

``nginx -t`` only says "ok"; someone moving from nginx + the module needs
more before switching: which sockets open, which locations tunnel websockets
to which peers, where the ws_* lines go and with which templates, and -- the
migration report -- every directive ngxws will not act on, with file:line,
split into those nobody can observe (tuning) and those that change what
clients or backends see.  Plain text, deterministic, paths shown relative to
the conf file's folder so the output is the same on every machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ngxws.config.addresses import is_address
from ngxws.config.directives import UNSERVED_HANDLERS
from ngxws.config.enforcement import unenforced_state
from ngxws.config.model import (
    Config,
    Fork,
    Ignored,
    Listen,
    Location,
    ProxyPass,
    Server,
    Source,
    Upstream,
    WsSettings,
)
from ngxws.config.wiretext import shown

__all__ = ["render_check_report", "unenforced_warnings"]

_INDENT = "  "


def render_check_report(config: Config) -> str:
    """The full report; ends with a newline."""
    base = os.path.dirname(config.path)
    lines: list[str] = [f"configuration: {config.path}", f"prefix: {config.prefix}"]
    lines.append(
        f"workers: {config.worker_processes} process(es), "
        f"{config.worker_connections} connections each"
    )
    lines.append(f"pid file: {config.pid_path or '(none)'}")
    error_log = config.error_log or "(not set: stderr)"
    lines.append(f"error log: {error_log} ({config.error_log_level})")
    lines.append("")
    lines.extend(_listeners(config))
    for server in config.servers:
        lines.append("")
        lines.extend(_server(server, config, base))
    if config.maps:
        lines.append("")
        lines.append("maps:")
        for m in config.maps:
            lines.append(
                f"{_INDENT}${m.variable} from {m.expression}: {_count(len(m.entries), 'entry')}, "
                f"default {_quote(shown(m.default))}{_at(m.source, base)}"
            )
    lines.append("")
    lines.extend(_honoured(config.honoured, base))
    lines.append("")
    lines.extend(_migration(config.ignored, base))
    for title, items in _allowed(config):
        lines.append("")
        lines.append(f"{title} (allowed with --allow-unenforced):")
        lines.extend(f"{_INDENT}{_where(i.source, base)}  {i.name} -- {i.reason}" for i in items)
    if config.warnings:
        lines.append("")
        lines.append("warnings (nginx -t would print these too):")
        lines.extend(f"{_INDENT}{w}" for w in config.warnings)
    if config.notices:
        lines.append("")
        lines.append("warnings (ngxws only):")
        lines.extend(f"{_INDENT}{_where(src, base)}  {text}" for text, src in config.notices)
    return "\n".join(lines) + "\n"


def _allowed(config: Config) -> list[tuple[str, list[Ignored]]]:
    """What ``--allow-unenforced`` let through, by kind: access control,
    and content handlers whose locations answer 502 (UNSERVED_HANDLERS)."""
    handlers = [i for i in config.unenforced if i.name in UNSERVED_HANDLERS]
    access = [i for i in config.unenforced if i.name not in UNSERVED_HANDLERS]
    kinds = [("access control NOT enforced", access), ("content handlers NOT served", handlers)]
    return [(title, items) for title, items in kinds if items]


def _listeners(config: Config) -> list[str]:
    """One line per socket, with the servers sharing it (default first)."""
    sockets: dict[tuple[str, int, str | None], list[tuple[Listen, Server]]] = {}
    for server in config.servers:
        for listen in server.listens:
            sockets.setdefault(listen.key, []).append((listen, server))
    lines = [f"listeners ({len(sockets)}):"]
    if not sockets:
        lines.append(f"{_INDENT}(none: the config has no http server)")
    for entries in sockets.values():
        first = entries[0][0]
        flags = [
            f for f, on in (("ssl", first.ssl), ("http2", first.http2), ("proxy_protocol", first.proxy_protocol)) if on
        ]
        default = next((s for lst, s in entries if lst.default_server), entries[0][1])
        names = []
        for _, server in entries:
            label = _server_label(server)
            names.append(f"{label} (default)" if server is default else label)
        head = " ".join([_address(first), *flags])
        lines.append(f"{_INDENT}{head} -> {', '.join(names)}")
    return lines


def _server(server: Server, config: Config, base: str) -> list[str]:
    lines = [f"server {_server_label(server)}{_at(server.source, base)}"]
    listens = ", ".join(_listen_text(lst) for lst in server.listens)
    lines.append(f"{_INDENT}listen: {listens}")
    if len(server.server_names) > 1:
        lines.append(f"{_INDENT}server names: {' '.join(_quote(n) for n in server.server_names)}")
    if server.ssl_certificate:
        lines.append(
            f"{_INDENT}tls: {server.ssl_certificate} / {server.ssl_certificate_key}, "
            f"{' '.join(server.ssl_protocols)}"
        )
    if server.return_ is not None:
        text = f" {shown(server.return_.text)}" if server.return_.text is not None else ""
        lines.append(f"{_INDENT}return {server.return_.code}{text} (before any location)")
    proxied = list(_walk(server.locations, lambda loc: loc.proxy_pass is not None))
    stats = list(_walk(server.locations, lambda loc: loc.ws_stat))
    lines.append(f"{_INDENT}websocket (proxy_pass) locations:")
    if not proxied:
        lines.append(f"{_INDENT * 2}(none)")
    for loc in proxied:
        assert loc.proxy_pass is not None
        lines.extend(_proxied(loc, loc.proxy_pass, config, base))
    lines.append(f"{_INDENT}ws_stat locations:")
    if not stats:
        lines.append(f"{_INDENT * 2}(none)")
    for loc in stats:
        lines.append(f"{_INDENT * 2}location {_location_name(loc)}{_at(loc.source, base)}")
    lines.extend(_ws(server.ws, config))
    return lines


def _proxied(loc: Location, pp: ProxyPass, config: Config, base: str) -> list[str]:
    lines = [f"{_INDENT * 2}location {_location_name(loc)} -> {pp.url}{_at(loc.source, base)}"]
    deep = _INDENT * 3
    if pp.has_variables:
        lines.append(f"{deep}target has variables: resolved per request")
    elif pp.unix is not None:
        lines.append(f"{deep}unix socket {pp.unix}")
    else:
        upstream = config.upstream(pp.upstream) if pp.upstream else None
        if upstream is not None:
            lines.extend(f"{deep}{line}" for line in _upstream(upstream, base))
        else:
            note = "" if is_address(pp.host) else " (name resolved when connecting)"
            lines.append(f"{deep}peer {_hostport(pp.host, pp.port)}{note}")
    # What a websocket upgrade through here sends, as nginx 1.22 does: the
    # hop-by-hop Upgrade only through proxy_set_header, "Connection: close"
    # unless set; whatever the request, a 101 answer to a client's upgrade
    # opens the tunnel (ngx_http_proxy_process_header), HTTP/1.0 included.
    # Each line is checked against a running ngxws (tests/test_report_claims.py).
    sent = {name.lower(): value for name, value in loc.proxy.set_headers}
    if not sent.get("upgrade"):
        lines.append(
            f"{deep}upgrade: the client's Upgrade header is not passed on "
            "(proxy_set_header Upgrade $http_upgrade passes it)"
        )
    if sent.get("connection") == "close":
        lines.append(f'{deep}upgrade: the upstream request says "Connection: close"')
    if loc.proxy.http_version != "1.1":
        lines.append(
            f"{deep}upgrade: the upstream request is HTTP/1.0 (proxy_http_version 1.1 "
            "makes it 1.1); a 101 answer still opens the tunnel"
        )
    lines.append(
        f"{deep}timeouts: connect {_seconds(loc.proxy.connect_timeout)}, "
        f"read {_seconds(loc.proxy.read_timeout)}, send {_seconds(loc.proxy.send_timeout)}"
    )
    return lines


def _upstream(upstream: Upstream, base: str) -> list[str]:
    balance = upstream.balance
    if upstream.hash_key is not None:
        balance += f" {upstream.hash_key}" + (" consistent" if upstream.hash_consistent else "")
    lines = [f"upstream {upstream.name} ({balance}){_at(upstream.source, base)}"]
    for peer in upstream.peers:
        where = f"unix:{peer.unix}" if peer.unix is not None else _hostport(peer.host, peer.port)
        extras = [f"weight={peer.weight}"] if peer.weight != 1 else []
        if peer.max_fails != 1 or peer.fail_timeout != 10.0:
            extras.append(f"max_fails={peer.max_fails} fail_timeout={_seconds(peer.fail_timeout)}")
        extras += [flag for flag, on in (("backup", peer.backup), ("down", peer.down)) if on]
        lines.append(f"{_INDENT}peer {where}{''.join(' ' + e for e in extras)}")
    return lines


def _ws(ws: WsSettings, config: Config) -> list[str]:
    fork = "chainstack fork (ws_log_enabled)" if ws.fork is Fork.CHAINSTACK else "v1"
    lines = [f"{_INDENT}ws settings ({fork}):"]
    deep = _INDENT * 2
    templates = ws.effective_templates()
    logs = any(
        t is not None
        for t in (
            templates.frame,
            templates.open,
            templates.close,
            templates.client,
            templates.server,
        )
    )
    if ws.fork is Fork.CHAINSTACK and not ws.log_enabled:
        lines.append(f"{deep}log: off (ws_log_enabled off)")
    elif ws.log_path is not None:
        lines.append(f"{deep}log: {ws.log_path}")
    elif ws.fork is Fork.CHAINSTACK:
        lines.append(f"{deep}log: the error log ({config.error_log or 'stderr'}), no ws_log given")
    else:
        lines.append(f"{deep}log: off (no ws_log)")
    if logs:
        for label, value in (
            ("frame", templates.frame),
            ("open", templates.open),
            ("close", templates.close),
            ("client message", templates.client),
            ("server message", templates.server),
        ):
            lines.append(f"{deep}{label}: {_quote(value) if value is not None else '(not logged)'}")
    if ws.max_connections:
        lines.append(f"{deep}max connections: {ws.max_connections} (then close 1013)")
    else:
        lines.append(f"{deep}max connections: no limit")
    if ws.conn_age is not None:
        lines.append(f"{deep}connection age: {_duration(ws.conn_age)} (then close 4001)")
    else:
        lines.append(f"{deep}connection age: no limit")
    return lines


def _honoured(honoured: tuple[tuple[str, Source], ...], base: str) -> list[str]:
    """Every directive ngxws acts on, by name, with where it stands."""
    by_name: dict[str, list[Source]] = {}
    for name, source in honoured:
        by_name.setdefault(name, []).append(source)
    lines = [f"honoured ({len(honoured)} directives, {len(by_name)} kinds):"]
    for name in sorted(by_name):
        where = ", ".join(_where(s, base) for s in by_name[name])
        lines.append(f"{_INDENT}{name} ({len(by_name[name])}): {where}")
    return lines


def _migration(ignored: tuple[Ignored, ...], base: str) -> list[str]:
    harmless = [i for i in ignored if i.harmless]
    changing = [i for i in ignored if not i.harmless]
    lines = ["migration report:"]
    if not ignored:
        lines.append(f"{_INDENT}every directive in the config is implemented by ngxws")
        return lines
    for title, items in (
        ("ignored, changes behaviour", changing),
        ("ignored, harmless", harmless),
    ):
        lines.append(f"{_INDENT}{title} ({len(items)}):")
        if not items:
            lines.append(f"{_INDENT * 2}(none)")
        width = max((len(_where(i.source, base)) for i in items), default=0)
        for item in items:
            reason = f" -- {item.reason}" if item.reason else ""
            lines.append(f"{_INDENT * 2}{_where(item.source, base):<{width}}  {item.name}{reason}")
    return lines


def unenforced_warnings(config: Config) -> list[str]:
    """One line per access directive the operator let through unenforced
    (``--allow-unenforced``), for the terminal and the error log."""
    return [
        f'"{i.name}" in {i.source.file}:{i.source.line} is {unenforced_state(i)}, '
        f"allowed by --allow-unenforced {i.name}"
        for i in config.unenforced
    ]


def start_warnings(config: Config) -> list[str]:
    """What is said at every start and reload, on the terminal and in the
    error log: access control let through unenforced, ``stream {}``
    blocks (and their listens) that are not served, and every other
    directive ngxws ignores where nginx would act (``ngxws check``'s
    "changes behaviour"): a config that runs must not be different from
    nginx in silence."""
    not_served, changing = [], []
    for i in config.ignored:
        if i.name == "stream" or i.name.startswith("stream listen "):
            not_served.append(
                f'"{i.name}" in {i.source.file}:{i.source.line} is NOT served ({i.reason.split(": ", 1)[-1]})'
            )
        elif not i.harmless:
            changing.append(f'"{i.name}" in {i.source.file}:{i.source.line} is ignored, nginx would act on it ({i.reason})')
    return unenforced_warnings(config) + not_served + changing


# -- small formatting helpers -------------------------------------------------


def _walk(locations: tuple[Location, ...], keep: Callable[[Location], bool]) -> list[Location]:
    """Locations (nested ones too) that ``keep`` selects, in config order."""
    out: list[Location] = []
    for loc in locations:
        if keep(loc):
            out.append(loc)
        out.extend(_walk(loc.locations, keep))
    return out


def _where(source: Source, base: str) -> str:
    path = source.file
    if base and path.startswith(base + os.sep):
        path = path[len(base) + 1 :]
    return f"{path}:{source.line}"


def _at(source: Source | None, base: str) -> str:
    return f"  ({_where(source, base)})" if source is not None else ""


def _address(listen: Listen) -> str:
    if listen.unix is not None:
        return f"unix:{listen.unix}"
    return _hostport(listen.host, listen.port)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen_text(listen: Listen) -> str:
    flags = [
        flag
        for flag, on in (
            ("default_server", listen.default_server),
            ("ssl", listen.ssl),
            ("http2", listen.http2),
            ("ipv6only=off", ":" in listen.host and not listen.ipv6only),
        )
        if on
    ]
    return " ".join([_address(listen), *flags])


def _server_label(server: Server) -> str:
    first = server.server_names[0] if server.server_names else ""
    return first if first else '""'


def _location_name(loc: Location) -> str:
    if loc.modifier in ("", "@"):
        return loc.pattern
    return f"{loc.modifier} {loc.pattern}"


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duration(seconds: float) -> str:
    """43200.0 -> "12h", 5400.0 -> "1h 30m", 0.5 -> "500ms": nginx's time syntax."""
    ms = round(seconds * 1000)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def _seconds(value: float) -> str:
    """3600.0 -> "3600s", 0.5 -> "0.5s" (stable, no float noise)."""
    if value == int(value):
        return f"{int(value)}s"
    return f"{value:g}s"
