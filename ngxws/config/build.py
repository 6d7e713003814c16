"""Step 4 of loading (see ``loader.py``): what nginx does *after* the parse,
on the levels the reader filled in -- inheritance (http -> server ->
location, nginx's merge_*_conf), upstream links, duplicate locations,
certificates, SSL listeners and default servers, ``no "events" section`` --
producing the frozen ``model.Config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ngxws.config.addresses import address_text, is_ipv4, resolvable_name
from ngxws.config.levels import (
    Core,
    HttpBlock,
    Level,
    LocationBlock,
    ServerBlock,
    UpstreamBlock,
    limits,
)
from ngxws.config.listen_params import socket_settings
from ngxws.config.model import (
    Access,
    Config,
    ErrorPage,
    Fork,
    Listen,
    Location,
    ProxySettings,
    RealIP,
    Server,
    Source,
    Upstream,
    WsLogTemplates,
    WsSettings,
)
from ngxws.config.reader import Reader
from ngxws.config.reading import ConfigError
from ngxws.config.redirects import RedirectRule, default_rule
from ngxws.config.rewrite import build_steps
from ngxws.config.static import static_conf

__all__ = ["Builder"]

_DEFAULT_PROXY_HEADERS = (("Host", "$proxy_host"), ("Connection", "close"))


@dataclass(frozen=True)
class _Effective:
    """Settings in force at one level, inherited down the tree."""

    proxy: ProxySettings
    core: Core
    headers: tuple[tuple[str, str], ...]
    rules: tuple[tuple[str, str], ...]
    error_pages: tuple[ErrorPage, ...] = ()
    auth_request_set: tuple[tuple[str, str], ...] = ()
    redirects: tuple[RedirectRule, ...] | None = None  # proxy_redirect lines (None: none set)

    def below(self, level: Level) -> _Effective:
        # arrays (headers, allow/deny, error_page) are inherited only by a
        # level that sets none of its own
        return _Effective(
            proxy=replace(self.proxy, **level.proxy),
            core=replace(self.core, **level.core),
            headers=tuple(level.headers) if level.headers else self.headers,
            rules=tuple(level.rules) if level.rules else self.rules,
            error_pages=tuple(level.error_pages) if level.error_pages else self.error_pages,
            auth_request_set=tuple(level.auth_request_set)
            if level.auth_request_set
            else self.auth_request_set,
            redirects=tuple(level.redirects) if level.redirects else self.redirects,
        )

    def proxy_settings(self) -> ProxySettings:
        # nginx adds its default headers (ngx_http_proxy_headers) for every
        # name the config does not set itself.
        names = {name.lower() for name, _ in self.headers}
        defaults = tuple(h for h in _DEFAULT_PROXY_HEADERS if h[0].lower() not in names)
        redirects = self.redirects if self.proxy.redirect and self.redirects is not None else ()
        return replace(self.proxy, set_headers=self.headers + defaults, redirects=redirects)

    def realip(self) -> RealIP:
        core = self.core
        return RealIP(core.real_ip_from, core.real_ip_header, core.real_ip_recursive)

    def access(self) -> Access:
        return Access(
            rules=self.rules,
            auth_basic=self.core.auth_basic,
            auth_basic_user_file=self.core.auth_basic_user_file,
            auth_request=self.core.auth_request,
            auth_request_set=self.auth_request_set,
            satisfy_any=self.core.satisfy_any,
        )


_NO_HTTP = HttpBlock(source=Source("", 0))
_ROOT = _Effective(proxy=ProxySettings(), core=Core(), headers=(), rules=())


class Builder:
    """Step 4, in the order nginx does it after reading the http block:
    upstreams, server merges (certificates), location trees (duplicates),
    SSL listeners, server names; then the events check."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.main = reader.main
        self.warnings = list(reader.warnings)

    def build(self) -> Config:
        http = self.main.http or HttpBlock(source=Source(self.reader.conf_path, 1))
        upstreams = tuple(self._upstream(u) for u in http.upstreams)
        self._check_proxy_pass_hosts(http.servers)
        by_name = {u.name.lower(): u.name for u in upstreams}
        http_eff = _ROOT.below(http)
        servers: list[Server] = []
        for raw in http.servers:
            eff = http_eff.below(raw)
            self._check_certificates(eff.core)
            servers.append(self._server(raw, eff, by_name))
        # the proxy module merges after the ssl module (nginx's module order)
        self._check_proxy_ssl_verify(servers)
        for raw in http.servers:
            self._check_duplicate_locations(raw.locations)
        servers = self._normalise_listens(servers)
        if not self.main.events:
            raise ConfigError('no "events" section in configuration')
        zones = self.reader.limit_zones
        for name, (_kind, zone) in zones.items():
            if zone is None:  # ngx_init_cycle(): named by limit_req/limit_conn, never declared
                raise ConfigError(f'zero size shared memory zone "{name}"')
        return Config(
            path=self.reader.conf_path,
            prefix=self.reader.prefix,
            servers=tuple(servers),
            upstreams=upstreams,
            worker_processes=self.main.worker_processes,
            worker_connections=self.main.worker_connections,
            worker_rlimit_nofile=self.main.worker_rlimit_nofile,
            pid_path=self.main.pid,
            error_log=self.main.error_log,
            error_log_level=self.main.error_log_level,
            ignored=self.reader.settled_ignored(),
            maps=tuple(self.reader.maps),
            warnings=tuple(self.warnings),
            notices=tuple(self.reader.notices),
            honoured=tuple(self.reader.honoured),
            unenforced=tuple(self.reader.unenforced),
            limit_zones=tuple(z for _kind, z in zones.values() if z is not None),
        )

    def _check_proxy_pass_hosts(self, servers: Sequence[ServerBlock]) -> None:
        """ngx_http_upstream_init_round_robin() resolves proxy_pass hosts that
        name no upstream block; ngxws resolves at connect time, and only
        refuses names no resolver would take, with nginx's message."""
        upstream_names = {u.name.lower() for u in (self.main.http or _NO_HTTP).upstreams}

        def walk(locations: Sequence[LocationBlock]) -> None:
            for loc in locations:
                pp = loc.proxy_pass
                if pp is not None and not pp.has_variables and pp.unix is None:
                    host = pp.host
                    known = host.lower() in upstream_names or is_ipv4(host) or ":" in host
                    if not known and not resolvable_name(host) and pp.source is not None:
                        message = f'host not found in upstream "{host}"'
                        raise ConfigError(message, pp.source.file, pp.source.line)
                walk(loc.locations)

        for server in servers:
            walk(server.locations)

    def _upstream(self, raw: UpstreamBlock) -> Upstream:
        if not raw.peers:
            raise ConfigError("no servers are inside upstream", raw.source.file, raw.close_line)
        return Upstream(
            name=raw.name,
            peers=tuple(raw.peers),
            balance=raw.balance,
            hash_key=raw.hash_key,
            hash_consistent=raw.hash_consistent,
            keepalive=raw.keepalive,
            source=raw.source,
        )

    def _check_certificates(self, core: Core) -> None:
        """ngx_http_ssl_merge_srv_conf(): ``ssl on`` needs a certificate, every
        certificate needs its key and must load (here: exist and be readable).
        nginx names the last certificate, as written."""
        certs, keys = core.ssl_certificates, core.ssl_certificate_keys
        last = core.ssl_certificates_written[-1] if certs else ""
        # ngx_http_ssl_merge_srv_conf(): a server refusing handshakes needs no certificate
        if core.ssl_on and (certs or not core.ssl_reject_handshake):
            where = core.ssl_on_source or Source("", 0)
            if not certs:
                message = 'no "ssl_certificate" is defined for the "ssl" directive'
                raise ConfigError(message, where.file, where.line)
            if not keys:
                message = 'no "ssl_certificate_key" is defined for the "ssl" directive'
                raise ConfigError(message, where.file, where.line)
            if len(keys) < len(certs):
                message = (
                    f'no "ssl_certificate_key" is defined for certificate "{last}" '
                    'and the "ssl" directive'
                )
                raise ConfigError(message, where.file, where.line)
        if len(keys) < len(certs):
            raise ConfigError(f'no "ssl_certificate_key" is defined for certificate "{last}"')
        for cert, key in zip(certs, keys[: len(certs)], strict=True):
            for path, what in ((cert, "certificate"), (key, "certificate key")):
                if "$" in path or path.startswith("data:"):
                    continue  # loaded per connection (variables) or inline
                if not os.path.isfile(path) or not os.access(path, os.R_OK):
                    reason = (
                        "No such file or directory"
                        if not os.path.exists(path)
                        else "Permission denied"
                    )
                    raise ConfigError(
                        f'cannot load {what} "{path}": BIO_new_file() failed ({reason})'
                    )
        if core.ssl_verify_client in ("on", "optional") and not core.ssl_client_certificate:
            if core.ssl_on or certs or core.ssl_reject_handshake:
                raise ConfigError("no ssl_client_certificate for ssl_verify_client")

    def _check_proxy_ssl_verify(self, servers: Sequence[Server]) -> None:
        """ngx_http_proxy_set_ssl(), for each location with a proxy_pass of its
        own that may speak TLS (``https://``, or variables: nginx cannot tell).
        nginx prints this one without a file:line."""
        stack = [loc for server in servers for loc in reversed(server.locations)]
        while stack:
            loc = stack.pop()
            stack.extend(reversed(loc.locations))
            pp, proxy = loc.proxy_pass, loc.proxy
            if pp is None or not (pp.has_variables or pp.scheme == "https"):
                continue
            if proxy.ssl_verify and not proxy.ssl_trusted_certificate:
                raise ConfigError("no proxy_ssl_trusted_certificate for proxy_ssl_verify")

    def _server(self, raw: ServerBlock, eff: _Effective, upstreams: Mapping[str, str]) -> Server:
        core = eff.core
        listens = raw.listens or [Listen(host="0.0.0.0", port=80, source=raw.source)]
        if core.http2:
            listens = [replace(listen, http2=True) for listen in listens]
        # the server's own configuration as a location: what a request no
        # location matches runs under (its try_files is the server's)
        own = self._location(
            LocationBlock(source=raw.source, modifier="", pattern="", stub_status=raw.stub_status), eff, upstreams
        )
        own = replace(own, static=static_conf(eff.core, self.reader.prefix, raw, ""))
        return Server(
            listens=tuple(listens),
            server_names=tuple(raw.names) if raw.names else ("",),
            locations=tuple(self._location(loc, eff, upstreams) for loc in raw.locations),
            fallback=own,
            ws=self._ws_settings(raw),
            proxy=eff.proxy_settings(),
            access=eff.access(),
            realip=eff.realip(),
            ssl_certificate=core.ssl_certificates[0] if core.ssl_certificates else None,
            ssl_certificate_key=core.ssl_certificate_keys[0] if core.ssl_certificate_keys else None,
            ssl_protocols=core.ssl_protocols,
            client_header_timeout=core.client_header_timeout,
            keepalive_timeout=core.keepalive_timeout,
            client_max_body_size=core.client_max_body_size,
            large_client_header_buffers=core.large_client_header_buffers,
            source=raw.source,
            return_=raw.return_,
            rewrites=build_steps(raw.steps, lambda block: self._location(block, eff, upstreams)),
            ssl_ciphers=core.ssl_ciphers,
            default_type=core.default_type,
            error_pages=eff.error_pages,
            types=core.types,
            send_timeout=core.send_timeout,
            client_body_timeout=core.client_body_timeout,
            client_body_buffer_size=core.client_body_buffer_size,
            client_body_temp_path=core.client_body_temp_path,
            ssl_on=core.ssl_on,
            ssl_verify_client=core.ssl_verify_client,
            ssl_verify_depth=core.ssl_verify_depth,
            ssl_client_certificate=core.ssl_client_certificate,
            ssl_trusted_certificate=core.ssl_trusted_certificate,
            ssl_crl=core.ssl_crl,
            ssl_reject_handshake=core.ssl_reject_handshake,
            limits=limits(core),
        )

    def _ws_settings(self, raw: ServerBlock) -> WsSettings:
        t = raw.ws_templates
        return WsSettings(
            log_path=raw.ws_log,
            log_enabled=raw.ws_log_enabled,
            templates=WsLogTemplates(
                frame=t.get("frame"),
                open=t.get("open"),
                close=t.get("close"),
                client=t.get("client"),
                server=t.get("server"),
                escapes=tuple((k[7:], v) for k, v in t.items() if k.startswith("escape:")),
            ),
            max_connections=raw.ws_max_connections,
            conn_age=raw.ws_conn_age,
            # spec: a server that uses ws_log_enabled follows the chainstack fork
            fork=Fork.CHAINSTACK if raw.ws_log_enabled is not None else Fork.V1,
        )

    def _location(
        self, raw: LocationBlock, parent: _Effective, upstreams: Mapping[str, str]
    ) -> Location:
        eff = parent.below(raw)
        if eff.proxy.redirect and eff.redirects is None and raw.proxy_pass is not None:
            # ngx_http_proxy_merge_loc_conf(): no proxy_redirect anywhere
            # above: "default" for this location's proxy_pass (and its
            # nested locations inherit it)
            pp = raw.proxy_pass
            if not pp.has_variables:
                eff = replace(eff, redirects=(default_rule(pp.url, pp.uri is not None, raw.pattern),))
        proxy_pass = raw.proxy_pass
        if proxy_pass is not None and not proxy_pass.has_variables and proxy_pass.unix is None:
            name = upstreams.get(proxy_pass.host.lower())
            if name is not None:
                proxy_pass = replace(proxy_pass, upstream=name)
        location = Location(
            modifier=raw.modifier,
            pattern=raw.pattern,
            proxy_pass=proxy_pass,
            ws_stat=raw.ws_stat,
            stub_status=raw.stub_status,
            return_=raw.return_,
            proxy=eff.proxy_settings(),
            access=eff.access(),
            realip=eff.realip(),
            client_max_body_size=eff.core.client_max_body_size,
            locations=tuple(self._location(child, eff, upstreams) for child in raw.locations),
            source=raw.source,
            default_type=eff.core.default_type,
            error_pages=eff.error_pages,
            recursive_error_pages=eff.core.recursive_error_pages,
            types=eff.core.types,
            send_timeout=eff.core.send_timeout,
            internal=raw.internal,
            unserved_handler=raw.unserved_handler,
            headers=eff.core.headers_conf(),
            gzip=eff.core.gzip_conf(),
            limits=limits(eff.core),
            client_body_timeout=eff.core.client_body_timeout,
            client_body_buffer_size=eff.core.client_body_buffer_size,
            client_body_temp_path=eff.core.client_body_temp_path,
            static=static_conf(eff.core, self.reader.prefix, raw, raw.modifier),
        )
        if raw.limit_except is not None:
            methods, block = raw.limit_except
            limited = self._if_location(block, eff, upstreams, location)
            location = replace(location, limit_except=(methods, limited))
        if not raw.steps:
            return location
        return replace(
            location, rewrites=build_steps(raw.steps, lambda block: self._if_location(block, eff, upstreams, location))
        )

    def _if_location(
        self, raw: LocationBlock, parent: _Effective, upstreams: Mapping[str, str], enclosing: Location
    ) -> Location:
        # ngx_http_proxy_merge_loc_conf(): a nameless (if, limit_except)
        # location without proxy_pass of its own takes the enclosing one's
        inner = self._location(raw, parent, upstreams)
        if inner.proxy_pass is None and enclosing.proxy_pass is not None:
            inner = replace(inner, proxy_pass=enclosing.proxy_pass)
        return inner

    def _check_duplicate_locations(self, locations: Sequence[LocationBlock]) -> None:
        """ngx_http_join_exact_locations(): two prefix (plain or ``^~``) or two
        exact locations with one name; regex and named ones may repeat."""
        prefixes: set[str] = set()
        exacts: set[str] = set()
        for loc in locations:
            seen = (
                exacts if loc.modifier == "=" else prefixes if loc.modifier in ("", "^~") else None
            )
            if seen is None:
                continue
            if loc.pattern in seen:
                raise ConfigError(
                    f'duplicate location "{loc.pattern}"', loc.source.file, loc.source.line
                )
            seen.add(loc.pattern)
        for loc in locations:
            self._check_duplicate_locations(loc.locations)

    def _normalise_listens(self, servers: list[Server]) -> list[Server]:
        """One socket per address: it is SSL (http2) when any listen on it
        says so, as nginx ORs those flags, or when its default server says
        ``ssl on`` (ngx_http_init_connection() asks the default server's
        ssl conf only); check its default server has a certificate; warn
        about names two servers claim on one address."""
        ssl: dict[tuple[str, int, str | None], bool] = {}
        http2: dict[tuple[str, int, str | None], bool] = {}
        defaults: dict[tuple[str, int, str | None], Server] = {}
        for server in servers:
            for listen in server.listens:
                ssl[listen.key] = ssl.get(listen.key, False) or listen.ssl
                http2[listen.key] = http2.get(listen.key, False) or listen.http2
                if listen.default_server or listen.key not in defaults:
                    defaults[listen.key] = server
        for key, default in defaults.items():
            ssl[key] = ssl[key] or default.ssl_on
        sockets = socket_settings(servers, defaults)
        out = [
            replace(
                server,
                listens=tuple(
                    replace(
                        listen,
                        ssl=ssl[listen.key],
                        http2=http2[listen.key],
                        proxy_protocol=sockets[listen.key][0],
                        options=sockets[listen.key][1],
                    )
                    for listen in server.listens
                ),
            )
            for server in servers
        ]
        by_key: dict[tuple[str, int, str | None], list[tuple[Server, Listen]]] = {}
        for server in out:
            for listen in server.listens:
                by_key.setdefault(listen.key, []).append((server, listen))
        for key, entries in by_key.items():
            if not ssl[key]:
                continue
            default = next((s for s, lst in entries if lst.default_server), entries[0][0])
            if default.ssl_certificate is not None:
                continue
            # ngx_http_ssl_init(): a default server without a certificate must
            # refuse handshakes, and then so must every server without one
            lacking = (
                [default]
                if not default.ssl_reject_handshake
                else [
                    s
                    for s, _ in entries
                    if s.ssl_certificate is None and not s.ssl_reject_handshake
                ]
            )
            for server in lacking:
                if server.source is not None:
                    raise ConfigError(
                        'no "ssl_certificate" is defined for the "listen ... ssl" directive',
                        server.source.file,
                        server.source.line,
                    )
        for entries in by_key.values():
            owner: dict[str, Server] = {}
            for server, listen in entries:
                for name in server.server_names:
                    if name.startswith("~"):
                        continue
                    first = owner.setdefault(name, server)
                    if first is not server:
                        self.warnings.append(
                            f'conflicting server name "{name}" on {address_text(listen)}, ignored'
                        )
        return out
