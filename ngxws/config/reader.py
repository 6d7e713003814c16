"""Step 3 of loading (see ``loader.py``): one pass over the ``Node``s in
nginx's reading order, doing what nginx does *while* parsing -- the module's
directive table (``directives.WS_DIRECTIVES``), each stock directive's rule
(``directives.STOCK_DIRECTIVES``), value checks (ports, times, sizes,
``proxy_pass`` URLs, duplicates...) -- and recording every directive ngxws
ignores.  Blocks and directives with reading-time state of their own
(``server``, ``listen``, ``upstream``...) have a handler here
(``Reader.handlers``); the ones that only set a level's value are in
``setters.SETTERS``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from crossplane.analyzer import DIRECTIVES as _CROSSPLANE_DIRECTIVES

from ngxws.config.addresses import (
    PROXY_PASS_URI_ERROR,
    address_text,
    explicit_port,
    parse_proxy_pass,
    parse_upstream_server,
    split_listen_address,
)
from ngxws.config.directives import (
    CACHE_DIRECTIVES,
    CACHE_HEADERS_REASON,
    CHECKED_NOT_ACTED_ON,
    DATA_BLOCKS,
    NEWER_STOCK_DIRECTIVES,
    UNSERVED_HANDLERS,
    WS_DIRECTIVES,
    WS_LOG_FORMAT_KEYWORDS,
    Handling,
    StockRule,
    WsRule,
    context_name,
    stock_rule,
)
from ngxws.config.geo import read_geo
from ngxws.config.levels import (
    LIMIT_DIRECTIVES,
    HttpBlock,
    Level,
    LocationBlock,
    MainBlock,
    OtherBlock,
    Owner,
    ServerBlock,
    UpstreamBlock,
)
from ngxws.config.limit_reading import LimitReading
from ngxws.config.listen_params import not_served_listen, parse_listen_params
from ngxws.config.model import (
    ErrorPage,
    Ignored,
    Listen,
    Map,
    Return,
    Source,
)
from ngxws.config.reading import Node
from ngxws.config.rewrite import (
    REWRITE_STEP_DIRECTIVES,
    RawIf,
    ReturnStep,
    if_condition_error,
    read_step,
)
from ngxws.config.setters import SETTERS, invalid_value
from ngxws.config.split_clients import read_split_clients
from ngxws.config.static import STATIC_DIRECTIVES, StaticConfigError, read_static
from ngxws.config.units import TimeSlot, atoi, parse_flag, parse_time
from ngxws.config.wiretext import wire
from ngxws.config.wslog_params import (
    check_syslog_target,
    ngxws_only_in_format,
    ngxws_only_notice,
    split_escape,
)
from ngxws.sinks.wslog import compile_template, module_reading

# ngx_methods_names: what limit_except may name
LIMIT_EXCEPT_METHODS = frozenset({
    "GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS", "PROPFIND",
    "PROPPATCH", "LOCK", "UNLOCK", "PATCH",
})  # fmt: skip

__all__ = ["Reader"]

_Handler = Callable[[Node, Owner], None]

_LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
_DEBUG_LEVELS = (
    "debug_core", "debug_alloc", "debug_mutex", "debug_event",
    "debug_http", "debug_mail", "debug_stream",
)  # fmt: skip


def _unknown_variable_notice(written: str) -> str:
    """``ngxws check``'s line for an unknown variable in a ws_log_format."""
    text = f'unknown variable "{written}" in ws_log_format: written as literal text'
    known = module_reading(written)
    if known is None:
        return text + ", as the module does"
    rest = written[1 + len(known) :]
    return f'{text} (the module printed ${known} then "{rest}"; for that write ${{{known}}}{rest})'


class Reader:
    """Step 3: one pass over the nodes in reading order (see module docstring)."""

    def __init__(self, conf_path: str, prefix: str) -> None:
        self.conf_path = conf_path
        self.conf_dir = os.path.dirname(conf_path)
        self.prefix = prefix
        self.main = MainBlock()
        self.ignored: list[Ignored] = []
        self.unenforced: list[Ignored] = []
        # a "proxy_cache" other than "off" anywhere, skipped blocks too (settled_ignored)
        self.cache_on = False
        # every "set $name" (also in skipped blocks), for enforcement.py, and
        # the reading position of each directive's place
        self.warnings: list[str] = []
        self.notices: list[tuple[str, Source]] = []
        self.maps: list[Map] = []
        self.honoured: list[tuple[str, Source]] = []
        # (address key, server, listen) in reading order, for the listen checks
        self.listen_registry: list[
            tuple[tuple[str, int, str | None], ServerBlock, Listen, bool]
        ] = []
        # proxy_pass hosts with an explicit port, for "upstream ... may not have port"
        self.ported_hosts: list[tuple[str, int]] = []
        self.limit_reading = LimitReading()
        self.limit_zones = self.limit_reading.zones  # for the builder
        self.handlers: dict[str, _Handler] = {
            "events": self._events,
            "http": self._http,
            "worker_processes": self._worker_processes,
            "worker_connections": self._worker_connections,
            "worker_rlimit_nofile": self._worker_rlimit_nofile,
            "pid": self._pid,
            "error_log": self._error_log,
            "server": self._server,
            "upstream": self._upstream,
            "least_conn": self._balance,
            "ip_hash": self._balance,
            "hash": self._balance,
            "keepalive": self._keepalive,
            "map": self._map,
            **{name: self._rewrite_step for name in REWRITE_STEP_DIRECTIVES},
            "if": lambda node, owner: None,  # a block _directive() did not take: nginx refuses it
            "geo": lambda node, owner: self.maps.append(read_geo(node, lambda n, m: n.error(m))),
            "split_clients": lambda node, owner: self.maps.append(read_split_clients(node, lambda n, m: n.error(m))),
            "listen": self._listen,
            "server_name": self._server_name,
            "location": self._location,
            "limit_except": self._limit_except,
            "return": self._return,
            "proxy_pass": self._proxy_pass,
            "error_page": self._error_page,
            "types": self._types,
            "internal": self._internal,
            "stub_status": self._stub_status,
            "include": lambda node, owner: None,  # already inlined by Tree
            **dict.fromkeys(LIMIT_DIRECTIVES, self.limit_reading.directive),
            **dict.fromkeys(STATIC_DIRECTIVES, self._static),
        }

    # -- walking ------------------------------------------------------------

    def read(self, roots: Sequence[Node]) -> None:
        self._walk(roots, self.main)

    def _walk(self, nodes: Iterable[Node], owner: Owner) -> None:
        for node in nodes:
            self._directive(node, owner)

    def _directive(self, node: Node, owner: Owner) -> None:
        name = node.name
        if name in (";", "{"):
            raise node.error(f'unexpected "{name}"')
        if name.startswith("ws_"):
            self._ws(node, owner)
            self.honoured.append((name, node.source))
            return
        if name == "if" and self._if(node, owner):
            self.honoured.append((name, node.source))
            return
        if name in NEWER_STOCK_DIRECTIVES:
            self._command_rule(node, NEWER_STOCK_DIRECTIVES[name])
        rule = stock_rule(name, name in _CROSSPLANE_DIRECTIVES)
        if rule.unique and name in owner.seen:
            raise node.error(f'"{name}" directive is duplicate')
        owner.seen.add(name)
        if isinstance(owner, UpstreamBlock) and name == "keepalive_timeout":
            rule = StockRule(Handling.IGNORED_HARMLESS, "upstream keepalive tuning")
        if rule.handling is Handling.HONOURED:
            if name in CHECKED_NOT_ACTED_ON:
                self.ignore(node, CHECKED_NOT_ACTED_ON[name])
            else:
                self.honoured.append((name, node.source))
            handler = self.handlers.get(name)
            if handler is not None:
                handler(node, owner)
            elif isinstance(owner, Level):
                self._level_directive(node, owner)
            else:
                self.ignore(
                    node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "not supported here")
                )
            return
        if name == "if" and _refuses(node):
            # a skipped if whose return would refuse (403, 401, 444...) must not fail open
            rule = StockRule(
                Handling.UNENFORCED_ACCESS,
                "this if block is skipped: its refusing return does not run",
            )
        self.ignore(node, rule)
        if name in UNSERVED_HANDLERS and isinstance(owner, LocationBlock):
            owner.unserved_handler = name
        if node.block is not None and name in _CROSSPLANE_DIRECTIVES and name not in DATA_BLOCKS:
            self._check_skipped(node.block)

    def ignore(self, node: Node, rule: StockRule, name: str | None = None) -> None:
        args = tuple(a.lower() for a in node.args)
        self._note_cache(node)
        reason = rule.reason
        harmless = rule.handling is Handling.IGNORED_HARMLESS
        if not harmless and args in rule.harmless_args:
            harmless = True
            reason = f'"{" ".join(node.args)}": what ngxws does anyway'
        item = Ignored(name or node.name, node.source, harmless, reason)
        if rule.handling is Handling.UNENFORCED_ACCESS and not harmless:
            self.unenforced.append(item)
        else:
            self.ignored.append(item)

    def _note_cache(self, node: Node) -> None:
        if node.name == "proxy_cache" and [a.lower() for a in node.args] != ["off"]:
            self.cache_on = True

    def settled_ignored(self) -> tuple[Ignored, ...]:
        """The ignored directives for the report, once everything is read:
        with no ``proxy_cache`` on anywhere, the cache's other directives
        (``proxy_cache_bypass $http_upgrade`` of the usual websocket
        snippet, an unused ``proxy_cache_path``) change nothing nginx does
        either (CACHE_DIRECTIVES), nor does proxy_ignore_headers' Expires,
        Cache-Control... (CACHE_HEADERS_REASON)."""
        if self.cache_on:
            return tuple(self.ignored)
        return tuple(
            replace(i, harmless=True, reason="no proxy_cache is on in this config: nginx caches nothing either")
            if (i.name in CACHE_DIRECTIVES or i.reason == CACHE_HEADERS_REASON) and not i.harmless else i
            for i in self.ignored
        )

    def _check_skipped(self, nodes: Iterable[Node]) -> None:
        """Inside a block ngxws skips (``if``, ``limit_except``, ``stream``...),
        still refuse what nginx would: a ``ws_*`` directive there is "not
        allowed here" (or unknown), a stray ``;`` is unexpected."""
        for node in nodes:
            if node.name in (";", "{"):
                raise node.error(f'unexpected "{node.name}"')
            self._note_cache(node)
            if node.name.startswith("ws_"):
                self._ws_rule(node)
            if node.name in UNSERVED_HANDLERS and node.ctx[:1] == ("http",):
                self.ignore(node, stock_rule(node.name, True))  # refused, as outside the block
            if node.ctx[:1] == ("stream",) and node.name == "listen" and node.args:
                self.ignored.append(not_served_listen(node.args, node.source))
            if node.name == "proxy_pass" and node.args and node.ctx[:1] == ("http",):
                # ngx_http_proxy_pass() still runs inside if/limit_except
                proxy_pass = parse_proxy_pass(node, node.args[0])
                if not proxy_pass.has_variables and proxy_pass.uri is not None:
                    raise node.error(PROXY_PASS_URI_ERROR)
            if node.block is not None and node.name not in DATA_BLOCKS:
                self._check_skipped(node.block)

    def prefix_path(self, path: str) -> str:
        """Runtime files (logs, pid, ws_log): against the prefix, as nginx."""
        if os.path.isabs(path):
            return path
        return os.path.normpath(os.path.join(self.prefix, path))

    def conf_relative(self, path: str) -> str:
        """Files nginx reads with the config (certificates, htpasswd): against
        the conf file's directory (nginx's conf_prefix)."""
        if os.path.isabs(path) or path.startswith("data:"):
            return path
        return os.path.normpath(os.path.join(self.conf_dir, path))

    # -- the module's directives ---------------------------------------------

    def _static(self, node: Node, owner: Owner) -> None:
        """root, alias, index, try_files... (config/static.py)."""
        assert isinstance(owner, Level)
        location = (owner.modifier, owner.pattern) if isinstance(owner, LocationBlock) else None
        try:
            owner.core.update(read_static(node.name, node.args, owner.core, owner=owner, location=location))
        except StaticConfigError as exc:
            raise node.error(str(exc)) from None

    def _ws_rule(self, node: Node) -> WsRule:
        """The module's ngx_command_t entry for ``node``, applied."""
        rule = WS_DIRECTIVES.get(node.name)
        if rule is None:
            raise node.error(f'unknown directive "{node.name}"')
        return self._command_rule(node, rule)

    def _command_rule(self, node: Node, rule: WsRule) -> WsRule:
        """Check ``node`` against an ngx_command_t entry the way
        ngx_conf_handler() does: context, block/terminator, argument count, flag."""
        name = node.name
        if context_name(node.ctx) not in rule.contexts:
            raise node.error(f'"{name}" directive is not allowed here')
        if node.block is not None:
            raise node.error(f'directive "{name}" is not terminated by ";"')
        if len(node.args) not in rule.nargs:
            raise node.error(f'invalid number of arguments in "{name}" directive')
        if rule.flag and node.args[0].lower() not in ("on", "off"):
            raise node.error(
                f'invalid value "{node.args[0]}" in "{name}" directive, it must be "on" or "off"'
            )
        return rule

    def _ws(self, node: Node, owner: Owner) -> None:
        self._ws_rule(node)
        name, args = node.name, node.args
        if name == "ws_stat":
            assert isinstance(owner, LocationBlock)
            owner.ws_stat = True
            return
        assert isinstance(owner, ServerBlock)
        # The module's own setters keep the last value: no "is duplicate".
        if name == "ws_log":
            if args[0].startswith("syslog:"):
                self.notices.append((ngxws_only_notice(f'ws_log "{args[0]}"'), node.source))
                owner.ws_log = args[0]  # checked when opened (sinks/syslog.py), as nginx does at load
                check_syslog_target(node, args[0])
                return
            owner.ws_log = self.prefix_path(args[0])
        elif name == "ws_log_enabled":
            owner.ws_log_enabled = parse_flag(args[0])
        elif name == "ws_log_format":
            mode, args = split_escape(node, args)
            for unknown in compile_template(args[-1]).unknown_variables:
                self.notices.append((_unknown_variable_notice(unknown), node.source))
            for text in ngxws_only_in_format(mode, args[-1]):
                self.notices.append((text, node.source))
            if mode:
                kind = "frame" if len(args) == 1 else args[0]
                for key in ("client", "server") if kind == "message" else (kind,):
                    owner.ws_templates["escape:" + key] = mode
            if len(args) == 1:
                owner.ws_templates["frame"] = args[0]
            elif args[0] in WS_LOG_FORMAT_KEYWORDS:
                keys = ("client", "server") if args[0] == "message" else (args[0],)
                for key in keys:
                    owner.ws_templates[key] = args[1]
            else:
                allowed = ", ".join(f'"{k}"' for k in WS_LOG_FORMAT_KEYWORDS[:-1])
                raise node.error(
                    f'invalid value "{args[0]}" in "{name}" directive, '
                    f'it must be {allowed} or "{WS_LOG_FORMAT_KEYWORDS[-1]}"'
                )
        elif name == "ws_max_connections":
            value = atoi(args[0])
            if value is None:
                raise node.error(f'invalid value "{args[0]}" in "{name}" directive')
            owner.ws_max_connections = value
        elif name == "ws_conn_age":
            try:
                age = parse_time(args[0], TimeSlot.ANY)
            except ValueError:
                raise node.error(f'invalid value "{args[0]}" in "{name}" directive') from None
            # the module only acts on an age > 0: "ws_conn_age 0" means no limit
            owner.ws_conn_age = age if age > 0 else None

    # -- main and events -------------------------------------------------------

    def _events(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, MainBlock)
        owner.events = True
        self._walk(node.block or (), OtherBlock())

    def _http(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, MainBlock)
        owner.http = HttpBlock(source=node.source)
        self._walk(node.block or (), owner.http)

    def _worker_processes(self, node: Node, owner: Owner) -> None:
        value = node.args[0]
        if value == "auto":
            count = os.cpu_count() or 1
        else:
            parsed = atoi(value)
            if parsed is None:
                raise invalid_value(node)
            count = parsed
        self.main.worker_processes = count

    def _worker_connections(self, node: Node, owner: Owner) -> None:
        value = atoi(node.args[0])
        if value is None:
            raise node.error(f'invalid number "{node.args[0]}"')
        self.main.worker_connections = value

    def _worker_rlimit_nofile(self, node: Node, owner: Owner) -> None:
        value = atoi(node.args[0])  # nginx's ngx_conf_set_num_slot, and its words
        if value is None:
            raise node.error('"worker_rlimit_nofile" directive invalid number')
        self.main.worker_rlimit_nofile = value

    def _pid(self, node: Node, owner: Owner) -> None:
        self.main.pid = self.prefix_path(node.args[0])

    def _error_log(self, node: Node, owner: Owner) -> None:
        target, levels = node.args[0], node.args[1:]
        level = "error"
        for value in levels:
            if value in _LOG_LEVELS:
                level = value
            elif value not in _DEBUG_LEVELS:
                raise node.error(f'invalid log level "{value}"')
        if not isinstance(owner, MainBlock):
            self.ignore(
                node,
                StockRule(Handling.IGNORED_HARMLESS, "only the main-level error_log is written"),
            )
            return
        if owner.error_log is not None:
            self.ignore(
                node,
                StockRule(
                    Handling.IGNORED_HARMLESS, "only the first main-level error_log is written"
                ),
            )
            return
        if target == "stderr" or target.startswith(("syslog:", "memory:")):
            owner.error_log = target
        else:
            owner.error_log = self.prefix_path(target)
        owner.error_log_level = level

    # -- http level ------------------------------------------------------------

    def _server(self, node: Node, owner: Owner) -> None:
        if isinstance(owner, UpstreamBlock):
            self._upstream_server(node, owner)
            return
        assert isinstance(owner, HttpBlock)
        server = ServerBlock(source=node.source)
        owner.servers.append(server)
        self._walk(node.block or (), server)

    def _upstream(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, HttpBlock)
        name = node.args[0]
        low = name.lower()
        for other in owner.upstreams:
            if other.name.lower() == low:
                raise node.error(f'duplicate upstream "{name}"')
        # ngx_http_upstream_add(): an earlier proxy_pass to this name with a port
        for host, port in self.ported_hosts:
            if host == low:
                raise node.error(f'upstream "{name}" may not have port {port}')
        upstream = UpstreamBlock(
            source=node.source, close_line=node.close_line or node.line, name=name
        )
        owner.upstreams.append(upstream)
        self._walk(node.block or (), upstream)

    def _upstream_server(self, node: Node, up: UpstreamBlock) -> None:
        peer, max_conns = parse_upstream_server(node, up.balance)
        for _ in range(max_conns):
            reason = "per-peer connection limits are not implemented"
            rule = StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, reason)
            self.ignore(node, rule, name="server ... max_conns")
        up.peers.append(peer)

    def _balance(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, UpstreamBlock)
        if owner.balance != "round_robin":
            self.warnings.append(f"load balancing method redefined in {node.source}")
        owner.balance = node.name
        if node.name == "hash":
            owner.hash_key = node.args[0]
            if len(node.args) > 1:
                if node.args[1] != "consistent":
                    raise node.error(f'invalid parameter "{node.args[1]}"')
                owner.hash_consistent = True

    def _keepalive(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, UpstreamBlock)
        value = atoi(node.args[0])
        if value is None or value == 0:
            raise node.error(f'invalid value "{node.args[0]}" in "keepalive" directive')
        owner.keepalive = value

    def _map(self, node: Node, owner: Owner) -> None:
        expression, variable = node.args[0], node.args[1]
        if not variable.startswith("$") or len(variable) < 2:
            raise node.error(f'invalid variable name "{variable}"')
        entries: list[tuple[str, str]] = []
        default: str | None = None
        hostnames = volatile = False
        for entry in node.block or ():
            key, rest = entry.name, entry.args
            if entry.block is not None:
                raise entry.error("invalid number of the map parameters")
            if not rest and key in ("hostnames", "volatile"):
                hostnames = hostnames or key == "hostnames"
                volatile = volatile or key == "volatile"
            elif len(rest) != 1:
                raise entry.error("invalid number of the map parameters")
            elif key == "default":
                if default is not None:
                    raise entry.error("duplicate default map parameter")
                default = wire(rest[0])
            else:
                # nginx: "\" escapes a key that would read as a keyword
                entries.append((wire(key[1:] if key.startswith("\\") else key), wire(rest[0])))
        self.maps.append(
            Map(
                expression=expression,
                variable=variable[1:],
                entries=tuple(entries),
                default=default or "",
                hostnames=hostnames,
                volatile=volatile,
                source=node.source,
            )
        )

    # -- server level -----------------------------------------------------------

    def _listen(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, ServerBlock)
        listen, has_options = self._parse_listen(node)
        key = listen.key
        text = address_text(listen)
        earlier = [entry for entry in self.listen_registry if entry[0] == key]
        # the order of ngx_http_add_addresses() / ngx_http_add_server()
        if any(server is owner for _, server, _, _ in earlier):
            raise node.error(f"a duplicate listen {text}")
        if has_options and any(opts for _, _, _, opts in earlier):
            raise node.error(f"duplicate listen options for {text}")
        if listen.default_server and any(other.default_server for _, _, other, _ in earlier):
            raise node.error(f"a duplicate default server for {text}")
        self.listen_registry.append((key, owner, listen, has_options))
        owner.listens.append(listen)

    def _parse_listen(self, node: Node) -> tuple[Listen, bool]:
        address = node.args[0]
        host, port, unix = split_listen_address(node, address)
        try:
            params = parse_listen_params(node.args[1:])
        except ValueError as exc:
            raise node.error(str(exc)) from None
        if params.quic:
            rule = StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "HTTP/3 is not implemented")
            self.ignore(node, rule, name="listen ... quic")
        for param, reason in params.harmless:
            self.ignore(
                node, StockRule(Handling.IGNORED_HARMLESS, reason), name=f"listen ... {param}"
            )
        listen = Listen(
            host=host,
            port=port,
            unix=unix,
            default_server=params.default_server,
            ssl=params.ssl,
            http2=params.http2,
            source=node.source,
            ipv6only=params.ipv6only,
            options=params.options,
            proxy_protocol=params.proxy_protocol,
        )
        return listen, params.has_options

    def _server_name(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, ServerBlock)
        for name in node.args:
            if name == "$hostname":
                name = socket.gethostname()
            # nginx lowercases names, but not regexes (their case matters)
            owner.names.append(name if name.startswith("~") else name.lower())

    def _return(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, (ServerBlock, LocationBlock))
        first = node.args[0]
        if len(node.args) == 1 and first.startswith(("http://", "https://", "$scheme")):
            ret = Return(code=302, text=wire(first))
        else:
            code = atoi(first)
            if code is None or code > 999:
                raise node.error(f'invalid return code "{first}"')
            ret = Return(code=code, text=wire(node.args[1]) if len(node.args) > 1 else None)
        if owner.return_ is None:  # the first return runs; later ones never do
            owner.return_ = ret
        owner.steps.append(ReturnStep(ret))

    def _if(self, node: Node, owner: Owner) -> bool:
        """``if (COND) { ... }`` in a server or location: its body is read
        into a nameless location (nginx's if-location, config/rewrite.py)."""
        if not isinstance(owner, (ServerBlock, LocationBlock)) or node.block is None:
            return False
        error = if_condition_error(node.args)
        if error is not None:
            raise node.error(error)
        pattern = owner.pattern if isinstance(owner, LocationBlock) else ""
        block = LocationBlock(source=node.source, modifier="if", pattern=pattern)
        self._walk(node.block, block)
        owner.steps.append(RawIf(tuple(node.args), block, node.source, isinstance(owner, ServerBlock)))
        return True

    def _rewrite_step(self, node: Node, owner: Owner) -> None:
        if isinstance(owner, (ServerBlock, LocationBlock)):
            read_step(node, owner.steps, node.error)

    def _limit_except(self, node: Node, owner: Owner) -> None:
        """``limit_except METHOD ... { }`` (ngx_http_core_limit_except): its
        block is read into a nameless location of the enclosing one."""
        if not isinstance(owner, LocationBlock) or node.block is None:
            return
        methods: set[str] = set()
        for word in node.args:
            method = word.upper()
            if method not in LIMIT_EXCEPT_METHODS:
                raise node.error(f'invalid method "{word}"')
            methods.add(method)
        if "GET" in methods:  # GET allows HEAD
            methods.add("HEAD")
        block = LocationBlock(source=node.source, modifier="limit_except", pattern=owner.pattern)
        self._walk(node.block, block)
        owner.limit_except = (frozenset(methods), block)

    def _stub_status(self, node: Node, owner: Owner) -> None:
        # ngx_http_set_stub_status(): the location's (or, in a server, the
        # server's own) content handler; an argument is accepted and unused
        if isinstance(owner, (LocationBlock, ServerBlock)):
            owner.stub_status = True

    def _internal(self, node: Node, owner: Owner) -> None:
        if isinstance(owner, LocationBlock):
            owner.internal = True

    def _error_page(self, node: Node, owner: Owner) -> None:
        if not isinstance(owner, Level):
            self.ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "not supported here"))
            return
        args = list(node.args)
        target = args.pop()
        response: int | None = None
        if args and args[-1].startswith("="):
            word = args.pop()[1:]
            if word and atoi(word) is None:
                raise node.error(f'invalid value "={word}"')
            response = atoi(word) if word else 0
        codes: list[int] = []
        for word in args:
            code = atoi(word)
            if code is None or not 300 <= code <= 599 or code == 499:
                raise node.error(f'value "{word}" must be between 300 and 599')
            codes.append(code)
        if not codes:
            raise node.error('invalid number of arguments in "error_page" directive')
        if not target.startswith(("/", "@")):  # a redirect URL: sent as written
            target = wire(target)
        # ngx_http_core_error_page(): without "=", nginx's own 400s (494-497) answer 400
        own_400 = tuple(c for c in codes if c in (494, 495, 496, 497)) if response is None else ()
        if own_400:
            owner.error_pages.append(ErrorPage(own_400, target, 400))
            codes = [c for c in codes if c not in own_400]
        if codes:
            owner.error_pages.append(ErrorPage(tuple(codes), target, response))

    def _types(self, node: Node, owner: Owner) -> None:
        if not isinstance(owner, Level):
            return
        pairs: list[tuple[str, str]] = []
        for entry in node.block or ():
            for ext in entry.args:
                pairs.append((ext.lower(), entry.name))
        owner.core["types"] = tuple(pairs)

    # -- location level -----------------------------------------------------------

    def _location(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, (ServerBlock, LocationBlock))
        args = node.args
        if len(args) == 2:
            modifier, pattern = args
            if modifier not in ("=", "^~", "~", "~*"):
                raise node.error(f'invalid location modifier "{modifier}"')
        else:
            modifier, pattern = _split_location_name(args[0])
        if isinstance(owner, LocationBlock):
            # ngx_http_core_location()'s rules for nested locations
            child = pattern
            if owner.modifier == "=":
                raise node.error(
                    f'location "{child}" cannot be inside the exact location "{owner.name}"'
                )
            if owner.modifier == "@":
                raise node.error(
                    f'location "{child}" cannot be inside the named location "{owner.name}"'
                )
            if modifier == "@":
                raise node.error(f'named location "{child}" can be on the server level only')
            if modifier not in ("~", "~*") and not child.startswith(owner.pattern):
                raise node.error(f'location "{child}" is outside location "{owner.name}"')
        location = LocationBlock(source=node.source, modifier=modifier, pattern=pattern)
        owner.locations.append(location)
        self._walk(node.block or (), location)

    def _proxy_pass(self, node: Node, owner: Owner) -> None:
        assert isinstance(owner, LocationBlock)
        url = node.args[0]
        proxy_pass = parse_proxy_pass(node, url)
        if not proxy_pass.has_variables:
            if proxy_pass.uri is not None and owner.modifier in ("~", "~*", "@", "if"):
                raise node.error(PROXY_PASS_URI_ERROR)
            if proxy_pass.unix is None and explicit_port(url):
                host = proxy_pass.host.lower()
                if self.http_upstream_names and host in self.http_upstream_names:
                    raise node.error(
                        f'upstream "{self.http_upstream_names[host]}" may not have port {proxy_pass.port}'
                    )
                self.ported_hosts.append((host, proxy_pass.port))
        owner.proxy_pass = proxy_pass

    @property
    def http_upstream_names(self) -> dict[str, str]:
        http = self.main.http
        if http is None:
            return {}
        return {u.name.lower(): u.name for u in http.upstreams}

    # -- directives that set a level's (inheritable) settings ----------------------

    def _level_directive(self, node: Node, level: Level) -> None:
        setter = SETTERS.get(node.name)
        if setter is None:  # a HONOURED name without a setter here: say so rather than drop it
            self.ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "not supported here"))
            return
        setter(self, node, level)


def _refuses(node: Node) -> bool:
    """Whether a block holds a ``return`` of an error code (4xx, 5xx, 444)."""
    for n in node.block or ():
        if n.name == "return" and n.args and n.args[0].isdigit() and int(n.args[0]) >= 400:
            return True
        if n.block and _refuses(n):
            return True
    return False


def _split_location_name(text: str) -> tuple[str, str]:
    """``location =/a`` etc.: a modifier written against the name."""
    if text.startswith("="):
        return "=", text[1:]
    if text.startswith("^~"):
        return "^~", text[2:]
    if text.startswith("~*"):
        return "~*", text[2:]
    if text.startswith("~"):
        return "~", text[1:]
    if text.startswith("@"):
        return "@", text
    return "", text
