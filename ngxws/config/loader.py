"""nginx.conf -> ``Config``: crossplane's parse, nginx's checks, the typed model.

The pipeline, top to bottom:

1. **crossplane** lexes and parses the main file and every ``include`` (it
   checks stock directives' contexts and argument counts; it does not know
   the module's ``ws_*`` directives and lets them through).
2. **_Tree** turns its JSON into ``_Node``s with includes inlined, in the
   order nginx reads them, each numbered by that reading position.
3. **_Reader** walks the nodes in that order and does what nginx does *while*
   parsing: the module's directive table (``directives.WS_DIRECTIVES``),
   value checks (ports, times, sizes, ``proxy_pass`` URLs, duplicates...), and
   it records every directive ngxws ignores.
4. **_Builder** does what nginx does *after* parsing: inheritance
   (http -> server -> location), upstream links, duplicate locations,
   certificates, default servers, ``no "events" section``.

nginx stops at the first error it meets, so ngxws reports the first one in
nginx's reading order: crossplane reports its errors per file (the main
file, then includes), so each is placed back in that order by its file:line
before being compared with the first error step 3 finds.

Errors read like nginx's own (same wording, same file:line), because people
grep for them: ``unknown directive "ws_lgo" in /etc/nginx/nginx.conf:12``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeAlias

import crossplane
from crossplane.analyzer import DIRECTIVES as _CROSSPLANE_DIRECTIVES
from crossplane.analyzer import enter_block_ctx
from crossplane.errors import NgxParserBaseException, NgxParserSyntaxError
from crossplane.lexer import lex

from ngxws.client_certs import VERIFY_CLIENT
from ngxws.config.directives import (
    CHECKED_NOT_ACTED_ON,
    DATA_BLOCKS,
    NEWER_STOCK_DIRECTIVES,
    WS_DIRECTIVES,
    WS_LOG_FORMAT_KEYWORDS,
    Handling,
    StockRule,
    WsRule,
    context_name,
    stock_rule,
)
from ngxws.config.enforcement import sets_tested_by_returns
from ngxws.config.geo import read_geo
from ngxws.config.limits import LOG_LEVELS as _LIMIT_LOG_LEVELS
from ngxws.config.limits import (
    LimitConfigError,
    LimitConn,
    LimitReq,
    Limits,
    LimitZone,
    parse_limit_conn,
    parse_limit_req,
    parse_status,
    parse_zone,
)
from ngxws.config.listen_params import not_served_listen, parse_listen_params, socket_settings
from ngxws.config.model import (
    DEFAULT_TYPES,
    Access,
    Config,
    ErrorPage,
    Fork,
    IfReturn,
    Ignored,
    Listen,
    Location,
    Map,
    ProxyPass,
    ProxySettings,
    RealIP,
    Return,
    Server,
    Source,
    Upstream,
    UpstreamPeer,
    WsLogTemplates,
    WsSettings,
)
from ngxws.config.rewrite import (
    REWRITE_STEP_DIRECTIVES,
    RawIf,
    ReturnStep,
    build_steps,
    if_condition_error,
    read_step,
)
from ngxws.config.units import TimeSlot, parse_flag, parse_size, parse_time
from ngxws.config.wiretext import wire
from ngxws.http.realip import trusted_source
from ngxws.sinks.wslog import compile_template, module_reading

__all__ = ["ConfigError", "load_config"]


class ConfigError(Exception):
    """A config nginx would refuse; ``str()`` is nginx's ``[emerg]`` text.

    ``file``/``line`` are None for the few messages nginx prints without a
    position (``no "events" section in configuration``).
    """

    def __init__(
        self, message: str, file: str | None = None, line: int | None = None, hint: str = ""
    ) -> None:
        super().__init__(message, file, line)
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint  # ngxws's own advice after the position ("; --allow-unenforced X ...")

    def __str__(self) -> str:
        if self.file is None:
            text = self.message
        elif self.line is None:
            text = f"{self.message} in {self.file}"
        else:
            text = f"{self.message} in {self.file}:{self.line}"
        return f"{text}; {self.hint}" if self.hint else text


class _ReadingError(ConfigError):
    """An error found while reading, with its place in nginx's reading order."""

    def __init__(self, message: str, file: str, line: int, order: float, rank: int = 0) -> None:
        super().__init__(message, file, line)
        self.order = order
        # a token error found at the same place as a directive error comes
        # second: nginx checks a directive once its ";" or "{" is read
        self.rank = rank


def load_config(
    path: str, prefix: str | None = None, allow_unenforced: Iterable[str] | None = ()
) -> Config:
    """Read ``path`` (and its includes) into a ``Config``; raise ``ConfigError``
    with nginx's message for anything ``nginx -t`` would refuse.

    Then, ngxws's own refusal: the first directive that restricts access in
    nginx but that ngxws does not enforce (``Handling.UNENFORCED_ACCESS``)
    and that ``allow_unenforced`` does not name.  None skips that check
    (``ngxws -s`` only reads the pid path).

    ``prefix`` is ``-p``: relative ``pid``, ``error_log`` and ``ws_log``
    paths resolve against it; when it is None, against the conf file's
    directory.  Relative ``include``, ``ssl_certificate*``,
    ``auth_basic_user_file`` and ``proxy_ssl_*`` file paths resolve against
    the conf file's directory, as nginx does.

    Deliberate difference: a relative ``path`` is taken from the working
    directory even when a prefix is given (nginx would look under the
    prefix), as every other command-line tool does.
    """
    conf_path = os.path.normpath(os.path.abspath(path))
    prefix_dir = os.path.abspath(prefix) if prefix is not None else os.path.dirname(conf_path)
    try:
        with open(conf_path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(_open_failed(conf_path, exc)) from None

    payload = crossplane.parse(
        conf_path,
        onerror=lambda exc: exc,  # keep the exception: it carries errno / line
        catch_errors=True,
        strict=False,  # ws_* and third-party directives are judged here
        combine=False,
        check_ctx=True,
        check_args=True,
    )
    tree = _Tree(payload)
    parse_errors = _crossplane_errors(payload, tree)
    first_parse_error = min(
        parse_errors, key=lambda e: (e.order, e.rank, e.line or 0), default=None
    )

    reader = _Reader(conf_path, prefix_dir)
    try:
        reader.read(tree.roots)
    except _ReadingError as exc:
        if first_parse_error is not None and first_parse_error.order < exc.order:
            raise _plain(first_parse_error) from None
        raise _plain(exc) from None
    except Exception:
        # A tree crossplane already found broken can surprise the reader;
        # nginx would have stopped at crossplane's error anyway.
        if first_parse_error is not None:
            raise _plain(first_parse_error) from None
        raise
    if first_parse_error is not None:
        raise _plain(first_parse_error)
    config = _Builder(reader).build()
    guarded = sets_tested_by_returns(config, reader.set_variables)
    if guarded:
        unenforced = sorted([*config.unenforced, *guarded], key=lambda i: reader.order(i.source))
        config = replace(config, unenforced=tuple(unenforced))
    if allow_unenforced is None:
        return config
    allowed = frozenset(allow_unenforced)
    for item in config.unenforced:
        if item.name not in allowed:
            raise ConfigError(
                f'"{item.name}" is access control ngxws does not enforce ({item.reason})',
                item.source.file,
                item.source.line,
                hint=f"--allow-unenforced {item.name} to run anyway",
            )
    return replace(config, allow_unenforced=allowed)


def _plain(exc: ConfigError) -> ConfigError:
    return ConfigError(exc.message, exc.file, exc.line)


def _open_failed(path: str, exc: OSError) -> str:
    # nginx: open() "/etc/nginx/x.conf" failed (2: No such file or directory)
    return f'open() "{path}" failed ({exc.errno}: {exc.strerror})'


# --------------------------------------------------------------------------
# 2. crossplane's JSON -> nodes in reading order
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """One directive as nginx reads it: includes already inlined.

    ``line`` is the line nginx names in its messages: where the directive's
    ``;`` or ``{`` stands (it differs from the first word's line when a
    directive spans lines, as in the module README's ``server\\n{``).
    ``close_line`` is the line of a block's ``}``.  ``ctx`` is crossplane's
    context tuple (``("http", "server")``); ``order`` the position in nginx's
    reading order; ``block`` None for ``...;``.
    """

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    order: int
    ctx: tuple[str, ...]
    block: tuple[_Node, ...] | None
    close_line: int | None = None

    @property
    def source(self) -> Source:
        return Source(self.file, self.line)

    def error(self, message: str) -> _ReadingError:
        return _ReadingError(message, self.file, self.line, self.order)


@dataclass(frozen=True)
class _Statement:
    """A statement as nginx's tokenizer sees it: first word, its line, the
    line of its ``;``/``{``, and for a block the line of its ``}``."""

    name: str
    first_line: int
    line: int
    close_line: int | None


@dataclass
class _Scan:
    """One file's statements in token order, and nginx's token-level error
    (``unexpected "}"``, ``unexpected end of file...``) if it has one;
    ``error_statement_line`` is the first line of the statement the error
    cut short (crossplane reports its own, misleading, error there)."""

    statements: list[_Statement]
    error: tuple[str, int] | None = None
    error_statement_line: int | None = None

    def nginx_line(self, first_line: int, name: str | None) -> int:
        """crossplane reports a statement's first line; nginx its ``;``/``{``
        line.  ``name`` picks the statement when several start on that line."""
        starting = [s for s in self.statements if s.first_line == first_line]
        for statement in starting:
            if statement.name == name:
                return statement.line
        return starting[0].line if starting else first_line


def _scan(path: str) -> _Scan:
    """Tokenize ``path`` the way ngx_conf_read_token() does (crossplane's
    lexer supplies the tokens) to learn what crossplane does not say."""
    scan = _Scan(statements=[])
    tokens: list[tuple[str, int, bool]] = []
    try:
        for token in lex(path):
            tokens.append(token)
    except NgxParserSyntaxError:
        pass  # every token was yielded before the brace check raised
    except OSError:
        return scan
    name: str | None = None
    first_line = 0
    open_blocks: list[int] = []  # indexes into scan.statements
    for token, line, quoted in tokens:
        if not quoted and token.startswith("#"):
            continue
        if quoted or token not in (";", "{", "}"):
            if name is None:
                name, first_line = token, line
            continue
        if token == "}":
            if name is not None or not open_blocks:
                scan.error, scan.error_statement_line = (
                    ('unexpected "}"', line),
                    (first_line if name is not None else None),
                )
                return scan
            index = open_blocks.pop()
            scan.statements[index] = replace(scan.statements[index], close_line=line)
            continue
        if name is None:
            scan.error = (f'unexpected "{token}"', line)
            return scan
        scan.statements.append(_Statement(name, first_line, line, None))
        if token == "{":
            open_blocks.append(len(scan.statements) - 1)
        name = None
    try:
        with open(path, "rb") as f:
            eof_line = f.read().count(b"\n") + 1  # nginx: the line after the last LF
    except OSError:
        return scan
    if name is not None:
        scan.error = ('unexpected end of file, expecting ";" or "}"', eof_line)
        scan.error_statement_line = first_line
    elif open_blocks:
        scan.error = ('unexpected end of file, expecting "}"', eof_line)
    return scan


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "t": "\t", "r": "\r", "n": "\n"}


def _unescape(word: str) -> str:
    """ngx_conf_read_token()'s escapes, for every word: ``\\"``, ``\\'``,
    ``\\\\`` drop the backslash, ``\\t``/``\\r``/``\\n`` are control characters;
    any other backslash stays (regexes keep ``\\.``)."""
    if "\\" not in word:
        return word
    out: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch == "\\" and i + 1 < len(word) and word[i + 1] in _ESCAPES:
            out.append(_ESCAPES[word[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Tree:
    """Inlines crossplane's per-file results in nginx's reading order, with
    nginx's line numbers, and remembers which reading positions each file's
    lines hold (to place crossplane's errors among the reader's)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self._configs: Sequence[Mapping[str, Any]] = payload["config"]
        self.scans: dict[str, _Scan] = {c["file"]: _scan(c["file"]) for c in self._configs}
        self._next = 0
        self._lines: dict[str, list[tuple[int, int]]] = {}
        self._include_order: dict[str, int] = {}
        self.main_file: str = self._configs[0]["file"]
        self.roots = self._file(self._configs[0], (), (self.main_file,))

    def _file(
        self, config: Mapping[str, Any], ctx: tuple[str, ...], stack: tuple[str, ...]
    ) -> list[_Node]:
        name: str = config["file"]
        record = name not in self._lines
        if record:
            self._lines[name] = []
        cursor = [0]  # position in this file's scanned statements
        return self._block(config["parsed"], name, ctx, stack, record, cursor)

    def _statement(self, file: str, name: str, first_line: int, cursor: list[int]) -> _Statement:
        """The scanned statement crossplane's ``stmt`` is (both walk the file
        in token order; a statement crossplane dropped is skipped over)."""
        statements = self.scans[file].statements
        for index in range(cursor[0], len(statements)):
            statement = statements[index]
            if statement.name == name and statement.first_line == first_line:
                cursor[0] = index + 1
                return statement
        return _Statement(name, first_line, first_line, None)

    def _block(
        self,
        stmts: Iterable[Mapping[str, Any]],
        file: str,
        ctx: tuple[str, ...],
        stack: tuple[str, ...],
        record: bool,
        cursor: list[int],
    ) -> list[_Node]:
        nodes: list[_Node] = []
        for stmt in stmts:
            order = self._next
            self._next += 1
            name: str = stmt["directive"]
            statement = self._statement(file, name, stmt["line"], cursor)
            if record:
                self._lines[file].append((statement.first_line, order))
            if "includes" in stmt:
                for index in stmt["includes"]:
                    included = self._configs[index]
                    ifile: str = included["file"]
                    if ifile in stack:
                        message = f'include loop: "{ifile}" includes itself'
                        raise ConfigError(message, file, statement.line)
                    self._include_order.setdefault(ifile, order)
                    nodes.extend(self._file(included, ctx, stack + (ifile,)))
                continue
            block: tuple[_Node, ...] | None = None
            if "block" in stmt:
                inner: tuple[str, ...] = tuple(enter_block_ctx(stmt, ctx))
                block = tuple(self._block(stmt["block"], file, inner, stack, record, cursor))
            args = tuple(_unescape(a) for a in stmt["args"])
            nodes.append(
                _Node(name, args, file, statement.line, order, ctx, block, statement.close_line)
            )
        return nodes

    def order_of(self, file: str, first_line: int) -> float:
        """Reading position of a statement crossplane dropped (it names its
        first line): just before the first kept statement from that line on."""
        entries = self._lines.get(file)
        if entries:
            for entry_line, order in entries:
                if entry_line >= first_line:
                    return order - 0.5
            return entries[-1][1] + 0.5
        if file in self._include_order:
            return self._include_order[file] + 0.5
        return -1.0 if file == self.main_file else math.inf


def _crossplane_errors(payload: Mapping[str, Any], tree: _Tree) -> list[_ReadingError]:
    """crossplane's errors with nginx's wording and lines, placed in reading order."""
    errors: list[_ReadingError] = []
    for file, scan in tree.scans.items():
        if scan.error is not None:
            message, line = scan.error
            order = tree.order_of(file, scan.error_statement_line or line)
            errors.append(_ReadingError(message, file, line, order, rank=1))
    for err in payload["errors"]:
        exc = err.get("callback")
        file = err["file"]
        first_line: int = err.get("line") or 1
        scan = tree.scans.get(file, _Scan(statements=[]))
        if isinstance(exc, (NgxParserSyntaxError, StopIteration)):
            if scan.error is not None:
                continue  # _scan() said it, the way nginx does
            message = exc.strerror if isinstance(exc, NgxParserSyntaxError) else "syntax error"
        elif scan.error is not None and first_line == scan.error_statement_line:
            continue  # crossplane's reading of the statement the token error cut short
        elif isinstance(exc, NgxParserBaseException):
            message = exc.strerror
        elif isinstance(exc, OSError):
            message = _open_failed(exc.filename or "", exc)
        else:
            message = err.get("error") or type(exc).__name__
        named = re.search(r'"([^"]*)"', message)  # crossplane names the directive first
        line = scan.nginx_line(first_line, named.group(1) if named else None)
        errors.append(_ReadingError(message, file, line, tree.order_of(file, first_line)))
    return errors


# --------------------------------------------------------------------------
# 3. reading: per-directive checks, in reading order
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Core:
    """Non-proxy settings that nginx inherits individually (http -> server ->
    location); a level's own values are stored as ``replace()`` overrides."""

    client_max_body_size: int = 1024 * 1024
    default_type: str = "text/plain"
    keepalive_timeout: float = 75.0
    client_header_timeout: float = 60.0
    large_client_header_buffers: tuple[int, int] = (4, 8192)
    ssl_certificates: tuple[str, ...] = ()
    ssl_certificate_keys: tuple[str, ...] = ()
    # the ssl_certificate arguments as written: nginx names them so in its errors
    ssl_certificates_written: tuple[str, ...] = ()
    ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    ssl_ciphers: str | None = None
    # the obsolete "ssl on;" and where it stands (nginx keeps its file:line
    # with the flag, and inherits both together)
    ssl_on: bool = False
    ssl_on_source: Source | None = None
    send_timeout: float = 60.0
    client_body_timeout: float = 60.0
    client_body_buffer_size: int = 16 * 1024
    client_body_temp_path: str | None = None
    http2: bool = False
    ssl_verify_client: str = "off"
    ssl_verify_depth: int = 1
    ssl_client_certificate: str | None = None
    ssl_trusted_certificate: str | None = None
    ssl_crl: str | None = None
    ssl_reject_handshake: bool = False
    auth_basic: str | None = None
    auth_basic_user_file: str | None = None
    auth_request: str | None = None
    satisfy_any: bool = False
    types: tuple[tuple[str, str], ...] = DEFAULT_TYPES
    # limit_req / limit_conn (config/limits.py): a level stores its whole
    # array, so replace() is nginx's merge (arrays by a level that sets any)
    limit_req: tuple[LimitReq, ...] = ()
    limit_conn: tuple[LimitConn, ...] = ()
    limit_req_status: int = 503
    limit_conn_status: int = 503
    limit_req_log_level: str = "error"
    limit_conn_log_level: str = "error"
    limit_req_dry_run: bool = False
    limit_conn_dry_run: bool = False
    # realip: set_real_ip_from is an array (a level with its own replaces all)
    real_ip_from: tuple[str, ...] = ()
    real_ip_header: str = "X-Real-IP"
    real_ip_recursive: bool = False


@dataclass(kw_only=True)
class _Level:
    """A block's own settings before inheritance.  ``headers`` and ``rules``
    are arrays: a level that sets any replaces the inherited ones."""

    source: Source
    seen: set[str] = field(default_factory=set)
    # overrides for ProxySettings / _Core fields, applied with replace()
    proxy: dict[str, Any] = field(default_factory=dict)
    core: dict[str, Any] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)
    rules: list[tuple[str, str]] = field(default_factory=list)
    # bitmask directives OR their values within one block (ngx_conf_set_bitmask_slot)
    ssl_protocols: list[str] = field(default_factory=list)
    proxy_ssl_protocols: list[str] = field(default_factory=list)
    next_upstream: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    certificates_written: list[str] = field(default_factory=list)
    certificate_keys: list[str] = field(default_factory=list)
    error_pages: list[ErrorPage] = field(default_factory=list)
    ifs: list[IfReturn] = field(default_factory=list)
    auth_request_set: list[tuple[str, str]] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # rewrite module, in order (config/rewrite.py)


@dataclass(kw_only=True)
class _HttpBlock(_Level):
    servers: list[_ServerBlock] = field(default_factory=list)
    upstreams: list[_UpstreamBlock] = field(default_factory=list)


@dataclass(kw_only=True)
class _ServerBlock(_Level):
    listens: list[Listen] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    return_: Return | None = None
    locations: list[_LocationBlock] = field(default_factory=list)
    ws_log: str | None = None
    ws_log_enabled: bool | None = None
    ws_templates: dict[str, str] = field(default_factory=dict)
    ws_max_connections: int = 0
    ws_conn_age: float | None = None


@dataclass(kw_only=True)
class _LocationBlock(_Level):
    modifier: str
    pattern: str
    proxy_pass: ProxyPass | None = None
    ws_stat: bool = False
    return_: Return | None = None
    locations: list[_LocationBlock] = field(default_factory=list)
    internal: bool = False

    @property
    def name(self) -> str:
        """The location's name as nginx prints it (``@name`` keeps its ``@``)."""
        return self.pattern


@dataclass(kw_only=True)
class _UpstreamBlock:
    source: Source
    close_line: int  # nginx names the block's "}" line in "no servers are inside upstream"
    name: str
    seen: set[str] = field(default_factory=set)
    peers: list[UpstreamPeer] = field(default_factory=list)
    balance: str = "round_robin"
    hash_key: str | None = None
    hash_consistent: bool = False
    keepalive: int = 0


@dataclass(kw_only=True)
class _MainBlock:
    seen: set[str] = field(default_factory=set)
    events: bool = False
    worker_processes: int = 1
    worker_connections: int = 512
    worker_rlimit_nofile: int | None = None
    pid: str | None = None
    error_log: str | None = None
    error_log_level: str = "error"
    http: _HttpBlock | None = None


@dataclass(kw_only=True)
class _OtherBlock:
    """events {} and anything else whose directives need a ``seen`` set only."""

    seen: set[str] = field(default_factory=set)


_Owner: TypeAlias = (
    _MainBlock | _OtherBlock | _HttpBlock | _ServerBlock | _LocationBlock | _UpstreamBlock
)
_Handler = Callable[[_Node, _Owner], None]

_LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
_DEBUG_LEVELS = (
    "debug_core", "debug_alloc", "debug_mutex", "debug_event",
    "debug_http", "debug_mail", "debug_stream",
)  # fmt: skip
_SSL_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_NEXT_UPSTREAM = (
    "error", "timeout", "invalid_header", "http_500", "http_502", "http_503",
    "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off",
)  # fmt: skip
_PROXY_PASS_URI_ERROR = (
    '"proxy_pass" cannot have URI part in location given by regular expression, '
    'or inside named location, or inside "if" statement, or inside "limit_except" block'
)
_DEFAULT_PROXY_HEADERS = (("Host", "$proxy_host"), ("Connection", "close"))
_PROXY_TIMEOUTS = {
    "proxy_connect_timeout": "connect_timeout",
    "proxy_read_timeout": "read_timeout",
    "proxy_send_timeout": "send_timeout",
}
_PROXY_FLAGS = {
    "proxy_pass_request_headers": "pass_request_headers",
    "proxy_pass_request_body": "pass_request_body",
    "proxy_buffering": "buffering",
    "proxy_request_buffering": "request_buffering",
    "proxy_ssl_server_name": "ssl_server_name",
    "proxy_ssl_verify": "ssl_verify",
}


_CLIENT_CERT_DIRECTIVES = (
    "ssl_verify_client", "ssl_verify_depth", "ssl_client_certificate",
    "ssl_trusted_certificate", "ssl_crl", "ssl_reject_handshake",
)  # fmt: skip

# Directives _Reader._level_directive() sets on http/server/location levels
# (the other HONOURED ones have a handler of their own in _Reader.handlers).
_LEVEL_DIRECTIVES = frozenset(
    {
        "proxy_set_header", "proxy_http_version", "proxy_next_upstream",
        "proxy_ssl_protocols", "proxy_ssl_name", "proxy_ssl_ciphers", "proxy_ssl_verify_depth",
        "proxy_ssl_trusted_certificate", "proxy_ssl_certificate", "proxy_ssl_certificate_key",
        "allow", "deny", "auth_basic", "auth_basic_user_file", "client_max_body_size",
        "default_type", "keepalive_timeout", "client_header_timeout",
        "large_client_header_buffers", "ssl_certificate", "ssl_certificate_key",
        "ssl_protocols", "ssl_ciphers", "http2", "ssl", "send_timeout",
        *_CLIENT_CERT_DIRECTIVES, *_PROXY_TIMEOUTS, *_PROXY_FLAGS,
        "auth_request", "auth_request_set", "satisfy",
        "client_body_timeout", "client_body_buffer_size", "client_body_temp_path",
        "set_real_ip_from", "real_ip_header", "real_ip_recursive",
        *_PROXY_TIMEOUTS, *_PROXY_FLAGS,
    }
)  # fmt: skip


_LIMIT_DIRECTIVES = (
    "limit_req_zone", "limit_conn_zone", "limit_req", "limit_conn",
    "limit_req_status", "limit_conn_status", "limit_req_log_level", "limit_conn_log_level",
    "limit_req_dry_run", "limit_conn_dry_run",
)  # fmt: skip


def _limits(core: _Core) -> Limits:
    """The limits in force at a level, from its merged settings."""
    return Limits(**{name[6:]: getattr(core, name) for name in _LIMIT_DIRECTIVES[2:]})


def _invalid_value(node: _Node) -> _ReadingError:
    # what nginx prints when a *_slot setter returns "invalid value"
    return node.error(f'"{node.name}" directive invalid value')


def _digits(text: str) -> int | None:
    """``ngx_atoi()``: plain decimal digits, else None."""
    if text and text.isascii() and text.isdigit():
        return int(text)
    return None


def _unknown_variable_notice(written: str) -> str:
    """``ngxws check``'s line for an unknown variable in a ws_log_format."""
    text = f'unknown variable "{written}" in ws_log_format: written as literal text'
    known = module_reading(written)
    if known is None:
        return text + ", as the module does"
    rest = written[1 + len(known) :]
    return f'{text} (the module printed ${known} then "{rest}"; for that write ${{{known}}}{rest})'


class _Reader:
    """Step 3: one pass over the nodes in reading order (see module docstring)."""

    def __init__(self, conf_path: str, prefix: str) -> None:
        self.conf_path = conf_path
        self.conf_dir = os.path.dirname(conf_path)
        self.prefix = prefix
        self.main = _MainBlock()
        self.ignored: list[Ignored] = []
        self.unenforced: list[Ignored] = []
        # every "set $name" (also in skipped blocks), for enforcement.py, and
        # the reading position of each directive's place
        self.set_variables: list[tuple[str, Source]] = []
        self._positions: dict[tuple[str, int], int] = {}
        self.warnings: list[str] = []
        self.notices: list[tuple[str, Source]] = []
        self.maps: list[Map] = []
        self.honoured: list[tuple[str, Source]] = []
        # (address key, server, listen) in reading order, for the listen checks
        self.listen_registry: list[
            tuple[tuple[str, int, str | None], _ServerBlock, Listen, bool]
        ] = []
        # proxy_pass hosts with an explicit port, for "upstream ... may not have port"
        self.ported_hosts: list[tuple[str, int]] = []
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
            "listen": self._listen,
            "server_name": self._server_name,
            "location": self._location,
            "return": self._return,
            "proxy_pass": self._proxy_pass,
            "error_page": self._error_page,
            "types": self._types,
            "internal": self._internal,
            "include": lambda node, owner: None,  # already inlined by _Tree
            **dict.fromkeys(_LIMIT_DIRECTIVES, self._limit),
        }
        # limit_*_zone names: the zone, or None while only limit_req/limit_conn named it
        self.limit_zones: dict[str, tuple[str, LimitZone | None]] = {}

    # -- walking ------------------------------------------------------------

    def read(self, roots: Sequence[_Node]) -> None:
        self._walk(roots, self.main)

    def _walk(self, nodes: Iterable[_Node], owner: _Owner) -> None:
        for node in nodes:
            self._directive(node, owner)

    def _directive(self, node: _Node, owner: _Owner) -> None:
        name = node.name
        self._positions.setdefault((node.source.file, node.source.line), len(self._positions))
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
        if isinstance(owner, _UpstreamBlock) and name == "keepalive_timeout":
            rule = StockRule(Handling.IGNORED_HARMLESS, "upstream keepalive tuning")
        if rule.handling is Handling.HONOURED:
            if name in CHECKED_NOT_ACTED_ON:
                self._ignore(node, CHECKED_NOT_ACTED_ON[name])
            else:
                self.honoured.append((name, node.source))
            handler = self.handlers.get(name)
            if handler is not None:
                handler(node, owner)
            elif isinstance(owner, _Level):
                self._level_directive(node, owner)
            else:
                self._ignore(
                    node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "not supported here")
                )
            return
        if name == "if" and _refuses(node):
            # a skipped if whose return would refuse (403, 401, 444...) must not fail open
            rule = StockRule(
                Handling.UNENFORCED_ACCESS, "this if block is skipped: its refusing return does not run"
            )
        self._ignore(node, rule)
        if node.block is not None and name in _CROSSPLANE_DIRECTIVES and name not in DATA_BLOCKS:
            self._check_skipped(node.block)

    def order(self, source: Source) -> int:
        """Reading position of the directive at ``source`` (for sorting reports)."""
        return self._positions.get((source.file, source.line), len(self._positions))

    def _ignore(self, node: _Node, rule: StockRule, name: str | None = None) -> None:
        args = tuple(a.lower() for a in node.args)
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

    def _check_skipped(self, nodes: Iterable[_Node]) -> None:
        """Inside a block ngxws skips (``if``, ``limit_except``, ``stream``...),
        still refuse what nginx would: a ``ws_*`` directive there is "not
        allowed here" (or unknown), a stray ``;`` is unexpected."""
        for node in nodes:
            if node.name in (";", "{"):
                raise node.error(f'unexpected "{node.name}"')
            self._positions.setdefault((node.source.file, node.source.line), len(self._positions))
            if node.name == "set" and node.args:
                self.set_variables.append((node.args[0].lstrip("$"), node.source))
            if node.name.startswith("ws_"):
                self._ws_rule(node)
            if node.ctx[:1] == ("stream",) and node.name == "listen" and node.args:
                self.ignored.append(not_served_listen(node.args, node.source))
            if node.name == "proxy_pass" and node.args and node.ctx[:1] == ("http",):
                # ngx_http_proxy_pass() still runs inside if/limit_except
                proxy_pass = _parse_proxy_pass(node, node.args[0])
                if not proxy_pass.has_variables and proxy_pass.uri is not None:
                    raise node.error(_PROXY_PASS_URI_ERROR)
            if node.block is not None and node.name not in DATA_BLOCKS:
                self._check_skipped(node.block)

    def _prefix_path(self, path: str) -> str:
        """Runtime files (logs, pid, ws_log): against the prefix, as nginx."""
        if os.path.isabs(path):
            return path
        return os.path.normpath(os.path.join(self.prefix, path))

    def _conf_relative(self, path: str) -> str:
        """Files nginx reads with the config (certificates, htpasswd): against
        the conf file's directory (nginx's conf_prefix)."""
        if os.path.isabs(path) or path.startswith("data:"):
            return path
        return os.path.normpath(os.path.join(self.conf_dir, path))

    # -- the module's directives ---------------------------------------------

    def _ws_rule(self, node: _Node) -> WsRule:
        """The module's ngx_command_t entry for ``node``, applied."""
        rule = WS_DIRECTIVES.get(node.name)
        if rule is None:
            raise node.error(f'unknown directive "{node.name}"')
        return self._command_rule(node, rule)

    def _command_rule(self, node: _Node, rule: WsRule) -> WsRule:
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

    def _ws(self, node: _Node, owner: _Owner) -> None:
        self._ws_rule(node)
        name, args = node.name, node.args
        if name == "ws_stat":
            assert isinstance(owner, _LocationBlock)
            owner.ws_stat = True
            return
        assert isinstance(owner, _ServerBlock)
        # The module's own setters keep the last value: no "is duplicate".
        if name == "ws_log":
            owner.ws_log = self._prefix_path(args[0])
        elif name == "ws_log_enabled":
            owner.ws_log_enabled = parse_flag(args[0])
        elif name == "ws_log_format":
            for unknown in compile_template(args[-1]).unknown_variables:
                self.notices.append((_unknown_variable_notice(unknown), node.source))
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
            value = _digits(args[0])
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

    def _events(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _MainBlock)
        owner.events = True
        self._walk(node.block or (), _OtherBlock())

    def _http(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _MainBlock)
        owner.http = _HttpBlock(source=node.source)
        self._walk(node.block or (), owner.http)

    def _worker_processes(self, node: _Node, owner: _Owner) -> None:
        value = node.args[0]
        if value == "auto":
            count = os.cpu_count() or 1
        else:
            parsed = _digits(value)
            if parsed is None:
                raise _invalid_value(node)
            count = parsed
        self.main.worker_processes = count

    def _worker_connections(self, node: _Node, owner: _Owner) -> None:
        value = _digits(node.args[0])
        if value is None:
            raise node.error(f'invalid number "{node.args[0]}"')
        self.main.worker_connections = value

    def _worker_rlimit_nofile(self, node: _Node, owner: _Owner) -> None:
        value = _digits(node.args[0])  # nginx's ngx_conf_set_num_slot, and its words
        if value is None:
            raise node.error('"worker_rlimit_nofile" directive invalid number')
        self.main.worker_rlimit_nofile = value

    def _pid(self, node: _Node, owner: _Owner) -> None:
        self.main.pid = self._prefix_path(node.args[0])

    def _error_log(self, node: _Node, owner: _Owner) -> None:
        target, levels = node.args[0], node.args[1:]
        level = "error"
        for value in levels:
            if value in _LOG_LEVELS:
                level = value
            elif value not in _DEBUG_LEVELS:
                raise node.error(f'invalid log level "{value}"')
        if not isinstance(owner, _MainBlock):
            self._ignore(
                node,
                StockRule(Handling.IGNORED_HARMLESS, "only the main-level error_log is written"),
            )
            return
        if owner.error_log is not None:
            self._ignore(
                node,
                StockRule(
                    Handling.IGNORED_HARMLESS, "only the first main-level error_log is written"
                ),
            )
            return
        if target == "stderr" or target.startswith(("syslog:", "memory:")):
            owner.error_log = target
        else:
            owner.error_log = self._prefix_path(target)
        owner.error_log_level = level

    # -- http level ------------------------------------------------------------

    def _server(self, node: _Node, owner: _Owner) -> None:
        if isinstance(owner, _UpstreamBlock):
            self._upstream_server(node, owner)
            return
        assert isinstance(owner, _HttpBlock)
        server = _ServerBlock(source=node.source)
        owner.servers.append(server)
        self._walk(node.block or (), server)

    def _upstream(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _HttpBlock)
        name = node.args[0]
        low = name.lower()
        for other in owner.upstreams:
            if other.name.lower() == low:
                raise node.error(f'duplicate upstream "{name}"')
        # ngx_http_upstream_add(): an earlier proxy_pass to this name with a port
        for host, port in self.ported_hosts:
            if host == low:
                raise node.error(f'upstream "{name}" may not have port {port}')
        upstream = _UpstreamBlock(
            source=node.source, close_line=node.close_line or node.line, name=name
        )
        owner.upstreams.append(upstream)
        self._walk(node.block or (), upstream)

    def _upstream_server(self, node: _Node, up: _UpstreamBlock) -> None:
        address = node.args[0]
        host, port, unix = _split_upstream_address(node, address)
        weight, max_fails, fail_timeout = 1, 1, 10.0
        backup = down = False
        for param in node.args[1:]:
            key, eq, value = param.partition("=")
            number = _digits(value) if eq else None
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
                self._ignore(
                    node,
                    StockRule(
                        Handling.IGNORED_CHANGES_BEHAVIOUR,
                        "per-peer connection limits are not implemented",
                    ),
                    name="server ... max_conns",
                )
            elif param == "backup" and not eq:
                if up.balance in ("ip_hash", "hash"):
                    # ip_hash/hash set flags that refuse backup on later servers
                    raise node.error('balancing method does not support parameter "backup"')
                backup = True
            elif param == "down" and not eq:
                down = True
            else:
                raise node.error(f'invalid parameter "{param}"')
        up.peers.append(
            UpstreamPeer(
                host=host,
                port=port,
                weight=weight,
                max_fails=max_fails,
                fail_timeout=fail_timeout,
                backup=backup,
                down=down,
                unix=unix,
            )
        )

    def _balance(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _UpstreamBlock)
        if owner.balance != "round_robin":
            self.warnings.append(f"load balancing method redefined in {node.source}")
        owner.balance = node.name
        if node.name == "hash":
            owner.hash_key = node.args[0]
            if len(node.args) > 1:
                if node.args[1] != "consistent":
                    raise node.error(f'invalid parameter "{node.args[1]}"')
                owner.hash_consistent = True
                reason = "ketama (consistent) hashing is not implemented; plain hash is used"
                self._ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, reason), "hash consistent")

    def _keepalive(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _UpstreamBlock)
        value = _digits(node.args[0])
        if value is None or value == 0:
            raise node.error(f'invalid value "{node.args[0]}" in "keepalive" directive')
        owner.keepalive = value

    def _map(self, node: _Node, owner: _Owner) -> None:
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

    def _listen(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _ServerBlock)
        listen, has_options = self._parse_listen(node)
        key = listen.key
        text = _address_text(listen)
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

    def _parse_listen(self, node: _Node) -> tuple[Listen, bool]:
        address = node.args[0]
        host, port, unix = _split_listen_address(node, address)
        try:
            params = parse_listen_params(node.args[1:])
        except ValueError as exc:
            raise node.error(str(exc)) from None
        if params.quic:
            rule = StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "HTTP/3 is not implemented")
            self._ignore(node, rule, name="listen ... quic")
        for param, reason in params.harmless:
            self._ignore(node, StockRule(Handling.IGNORED_HARMLESS, reason), name=f"listen ... {param}")
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

    def _server_name(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _ServerBlock)
        for name in node.args:
            if name == "$hostname":
                name = socket.gethostname()
            # nginx lowercases names, but not regexes (their case matters)
            owner.names.append(name if name.startswith("~") else name.lower())

    def _return(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, (_ServerBlock, _LocationBlock))
        first = node.args[0]
        if len(node.args) == 1 and first.startswith(("http://", "https://", "$scheme")):
            ret = Return(code=302, text=wire(first))
        else:
            code = _digits(first)
            if code is None or code > 999:
                raise node.error(f'invalid return code "{first}"')
            ret = Return(code=code, text=wire(node.args[1]) if len(node.args) > 1 else None)
        if owner.return_ is None:  # the first return runs; later ones never do
            owner.return_ = ret
        owner.steps.append(ReturnStep(ret))

    def _if(self, node: _Node, owner: _Owner) -> bool:
        """``if (COND) { ... }`` in a server or location: its body is read
        into a nameless location (nginx's if-location, config/rewrite.py)."""
        if not isinstance(owner, (_ServerBlock, _LocationBlock)) or node.block is None:
            return False
        error = if_condition_error(node.args)
        if error is not None:
            raise node.error(error)
        pattern = owner.pattern if isinstance(owner, _LocationBlock) else ""
        block = _LocationBlock(source=node.source, modifier="if", pattern=pattern)
        self._walk(node.block, block)
        owner.steps.append(RawIf(tuple(node.args), block, node.source, isinstance(owner, _ServerBlock)))
        return True

    def _rewrite_step(self, node: _Node, owner: _Owner) -> None:
        if isinstance(owner, (_ServerBlock, _LocationBlock)):
            read_step(node, owner.steps, node.error)

    def _internal(self, node: _Node, owner: _Owner) -> None:
        if isinstance(owner, _LocationBlock):
            owner.internal = True

    def _error_page(self, node: _Node, owner: _Owner) -> None:
        if not isinstance(owner, _Level):
            self._ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "not supported here"))
            return
        args = list(node.args)
        target = args.pop()
        response: int | None = None
        if args and args[-1].startswith("="):
            word = args.pop()[1:]
            if word and _digits(word) is None:
                raise node.error(f'invalid value "={word}"')
            response = _digits(word) if word else 0
        codes: list[int] = []
        for word in args:
            code = _digits(word)
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

    def _types(self, node: _Node, owner: _Owner) -> None:
        if not isinstance(owner, _Level):
            return
        pairs: list[tuple[str, str]] = []
        for entry in node.block or ():
            for ext in entry.args:
                pairs.append((ext.lower(), entry.name))
        owner.core["types"] = tuple(pairs)

    # -- location level -----------------------------------------------------------

    def _location(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, (_ServerBlock, _LocationBlock))
        args = node.args
        if len(args) == 2:
            modifier, pattern = args
            if modifier not in ("=", "^~", "~", "~*"):
                raise node.error(f'invalid location modifier "{modifier}"')
        else:
            modifier, pattern = _split_location_name(args[0])
        if isinstance(owner, _LocationBlock):
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
        location = _LocationBlock(source=node.source, modifier=modifier, pattern=pattern)
        owner.locations.append(location)
        self._walk(node.block or (), location)

    def _proxy_pass(self, node: _Node, owner: _Owner) -> None:
        assert isinstance(owner, _LocationBlock)
        url = node.args[0]
        proxy_pass = _parse_proxy_pass(node, url)
        if not proxy_pass.has_variables:
            if proxy_pass.uri is not None and owner.modifier in ("~", "~*", "@", "if"):
                raise node.error(_PROXY_PASS_URI_ERROR)
            if proxy_pass.unix is None and _explicit_port(url):
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

    # -- limit_req / limit_conn (parsing in config/limits.py) -----------------------

    def _limit(self, node: _Node, owner: _Owner) -> None:
        name, args = node.name, node.args
        try:
            if name in ("limit_req_zone", "limit_conn_zone"):
                if name == "limit_req_zone" and len(args) != 3:  # NGX_CONF_TAKE3 (crossplane: TAKE34)
                    raise node.error(f'invalid number of arguments in "{name}" directive')
                zone = parse_zone(name, args)
                self._shared_zone(node, zone.name, zone.kind, zone.size)
                known = self.limit_zones[zone.name][1]
                if known is not None:  # ngx_http_limit_req_zone(): shm_zone->data set
                    raise node.error(f'{name} "{zone.name}" is already bound to key "{known.key}"')
                self.limit_zones[zone.name] = (zone.kind, zone)
                return
            assert isinstance(owner, _Level)
            value: object
            if name == "limit_req":
                req = parse_limit_req(args)
                self._shared_zone(node, req.zone, "req", 0)
                reqs: tuple[LimitReq, ...] = owner.core.get(name, ())
                if any(r.zone == req.zone for r in reqs):
                    raise node.error('"limit_req" directive is duplicate')
                value = (*reqs, req)
            elif name == "limit_conn":
                self._shared_zone(node, args[0], "conn", 0)
                conns: tuple[LimitConn, ...] = owner.core.get(name, ())
                if any(c.zone == args[0] for c in conns):
                    raise node.error('"limit_conn" directive is duplicate')
                value = (*conns, parse_limit_conn(args))
            elif name.endswith("_status"):
                value = parse_status(name, args[0])
            elif name.endswith("_log_level"):
                if args[0] not in _LIMIT_LOG_LEVELS:
                    raise node.error(f'invalid value "{args[0]}"')
                value = args[0]
            else:  # limit_*_dry_run: ngx_conf_set_flag_slot (crossplane takes any word)
                if args[0].lower() not in ("on", "off"):
                    raise node.error(
                        f'invalid value "{args[0]}" in "{name}" directive, it must be "on" or "off"'
                    )
                value = parse_flag(args[0])
        except LimitConfigError as exc:
            raise node.error(str(exc)) from None
        owner.core[name] = value

    def _shared_zone(self, node: _Node, zone: str, kind: str, size: int) -> None:
        """ngx_shared_memory_add(): one name, one use, one size."""
        known = self.limit_zones.get(zone)
        if known is None:
            self.limit_zones[zone] = (kind, None)
            return
        if known[0] != kind:
            raise node.error(f'the shared memory zone "{zone}" is already declared for a different use')
        declared = known[1]
        if size and declared is not None and size != declared.size:
            raise node.error(
                f'the size {size} of shared memory zone "{zone}" '
                f"conflicts with already declared size {declared.size}"
            )

    # -- directives that set a level's (inheritable) settings ----------------------

    def _level_directive(self, node: _Node, level: _Level) -> None:
        name, args = node.name, node.args
        if name == "proxy_set_header":
            level.headers.append((args[0], wire(args[1])))
        elif name in _PROXY_TIMEOUTS:
            level.proxy[_PROXY_TIMEOUTS[name]] = self._time(node, args[0], TimeSlot.MSEC)
        elif name in _PROXY_FLAGS:
            level.proxy[_PROXY_FLAGS[name]] = parse_flag(args[0])
        elif name == "proxy_http_version":
            if args[0] not in ("1.0", "1.1"):
                raise node.error(f'invalid value "{args[0]}"')
            level.proxy["http_version"] = args[0]
        elif name == "proxy_next_upstream":
            level.proxy["next_upstream"] = self._bitmask(node, level.next_upstream, _NEXT_UPSTREAM)
        elif name == "proxy_ssl_protocols":
            level.proxy["ssl_protocols"] = self._bitmask(
                node, level.proxy_ssl_protocols, _SSL_PROTOCOLS
            )
        elif name == "proxy_ssl_name":
            level.proxy["ssl_name"] = args[0]
        elif name == "proxy_ssl_ciphers":
            level.proxy["ssl_ciphers"] = args[0]
        elif name == "proxy_ssl_verify_depth":
            depth = _digits(args[0])
            if depth is None:
                raise node.error(f'"{name}" directive invalid number')
            level.proxy["ssl_verify_depth"] = depth
        elif name in (
            "proxy_ssl_trusted_certificate",
            "proxy_ssl_certificate",
            "proxy_ssl_certificate_key",
        ):
            level.proxy[name[len("proxy_") :]] = self._conf_relative(args[0])
        elif name in ("allow", "deny"):
            level.rules.append((name, self._access_rule(node)))
        elif name == "auth_basic":
            level.core["auth_basic"] = None if args[0] == "off" else wire(args[0])
        elif name == "auth_basic_user_file":
            level.core["auth_basic_user_file"] = self._conf_relative(args[0])
        elif name == "auth_request":
            level.core["auth_request"] = None if args[0] == "off" else args[0]
        elif name == "auth_request_set":
            if not args[0].startswith("$"):
                raise node.error(f'invalid variable name "{args[0]}"')
            level.auth_request_set.append((args[0][1:], args[1]))
        elif name == "satisfy":
            if args[0] not in ("all", "any"):
                raise node.error(f'invalid value "{args[0]}"')
            level.core["satisfy_any"] = args[0] == "any"
        elif name == "set_real_ip_from":
            level.core["real_ip_from"] = level.core.get("real_ip_from", ()) + self._real_ip_from(node)
        elif name == "real_ip_header":
            level.core["real_ip_header"] = args[0]
        elif name == "real_ip_recursive":
            level.core["real_ip_recursive"] = parse_flag(args[0])
        elif name == "client_max_body_size":
            level.core["client_max_body_size"] = self._size(node, args[0])
        elif name == "default_type":
            level.core["default_type"] = args[0]
        elif name == "keepalive_timeout":
            timeout = self._time(node, args[0], TimeSlot.MSEC)
            if len(args) > 1:  # the Keep-Alive: timeout= header value; checked, not sent
                self._time(node, args[1], TimeSlot.SEC)
            if isinstance(level, _LocationBlock):
                reason = "keepalive_timeout applies per server in ngxws"
                self._ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, reason))
            else:
                level.core["keepalive_timeout"] = timeout
        elif name == "client_header_timeout":
            level.core["client_header_timeout"] = self._time(node, args[0], TimeSlot.MSEC)
        elif name == "large_client_header_buffers":
            count = _digits(args[0])
            size = self._size(node, args[1])
            if not count or not size:
                raise _invalid_value(node)
            level.core["large_client_header_buffers"] = (count, size)
        elif name == "ssl_certificate":
            level.certificates.append(self._conf_relative(args[0]))
            level.certificates_written.append(args[0])
            level.core["ssl_certificates"] = tuple(level.certificates)
            level.core["ssl_certificates_written"] = tuple(level.certificates_written)
        elif name == "ssl_certificate_key":
            level.certificate_keys.append(self._conf_relative(args[0]))
            level.core["ssl_certificate_keys"] = tuple(level.certificate_keys)
        elif name == "ssl_protocols":
            level.core["ssl_protocols"] = self._bitmask(node, level.ssl_protocols, _SSL_PROTOCOLS)
        elif name == "ssl_ciphers":
            level.core["ssl_ciphers"] = args[0]
        elif name == "http2":
            level.core["http2"] = parse_flag(args[0])
        elif name == "ssl":
            # ngx_http_ssl_enable(): the flag, its file:line, and a warning
            # whatever the value
            level.core["ssl_on"] = parse_flag(args[0])
            level.core["ssl_on_source"] = node.source
            self.warnings.append(
                'the "ssl" directive is deprecated, use the "listen ... ssl" directive '
                f"instead in {node.source}"
            )
        elif name == "send_timeout":
            level.core["send_timeout"] = self._time(node, args[0], TimeSlot.MSEC)
        elif name in _CLIENT_CERT_DIRECTIVES:
            level.core[name] = self._client_cert_value(node, name, args[0])
        elif name == "client_body_timeout":
            level.core["client_body_timeout"] = self._time(node, args[0], TimeSlot.MSEC)
        elif name == "client_body_buffer_size":
            level.core["client_body_buffer_size"] = self._size(node, args[0])
        elif name == "client_body_temp_path":
            # levels (args 1..3) only shape nginx's file names; ngxws's files have none
            level.core["client_body_temp_path"] = self._prefix_path(args[0])
        else:  # a HONOURED name without a setter here: say so rather than drop it
            self._ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, "not supported here"))

    def _client_cert_value(self, node: _Node, name: str, arg: str) -> object:
        """ngx_http_ssl_module's slots: an enum, a number, a flag, or a file
        (relative to the conf prefix, as ngx_conf_full_name(cycle, name, 1))."""
        if name == "ssl_verify_client":
            if arg.lower() not in VERIFY_CLIENT:
                raise node.error(f'invalid value "{arg}"')
            return arg.lower()
        if name == "ssl_verify_depth":
            depth = _digits(arg)
            if depth is None:
                raise _invalid_value(node)
            return depth
        if name == "ssl_reject_handshake":
            return parse_flag(arg)
        return self._conf_relative(arg)

    def _time(self, node: _Node, text: str, slot: TimeSlot) -> float:
        try:
            return parse_time(text, slot)
        except ValueError:
            raise _invalid_value(node) from None

    def _size(self, node: _Node, text: str) -> int:
        try:
            return parse_size(text)
        except ValueError:
            raise _invalid_value(node) from None

    def _bitmask(self, node: _Node, acc: list[str], allowed: Sequence[str]) -> tuple[str, ...]:
        """ngx_conf_set_bitmask_slot: known words only, ORed within a block."""
        for value in node.args:
            if value not in allowed:
                raise node.error(f'invalid value "{value}"')
            if value not in acc:
                acc.append(value)
        return tuple(v for v in allowed if v in acc)

    def _real_ip_from(self, node: _Node) -> tuple[str, ...]:
        """ngx_http_realip_from(): ``unix:``, a CIDR (low bits warned about),
        or a name resolved now into its addresses."""
        value = node.args[0]
        try:
            cidr, low_bits = trusted_source(value)
        except ValueError:
            pass
        else:
            if low_bits:  # nginx masks the address and only warns
                self.warnings.append(f"low address bits of {value} are meaningless in {node.source}")
            return (cidr,)
        try:
            infos = socket.getaddrinfo(value, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise node.error(f'host not found in set_real_ip_from "{value}"') from None
        return tuple(dict.fromkeys(str(info[4][0]) for info in infos))

    def _access_rule(self, node: _Node) -> str:
        value = node.args[0]
        if value in ("all", "unix:"):
            return value
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise node.error(f'invalid parameter "{value}"') from None
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:  # nginx masks the address and only warns
            self.warnings.append(f"low address bits of {value} are meaningless in {node.source}")
        return value


_IF_OPERATORS = ("=", "!=", "~", "~*", "!~", "!~*")


def _refuses(node: _Node) -> bool:
    """Whether a block holds a ``return`` of an error code (4xx, 5xx, 444)."""
    for n in node.block or ():
        if n.name == "return" and n.args and n.args[0].isdigit() and int(n.args[0]) >= 400:
            return True
        if n.block and _refuses(n):
            return True
    return False


def _if_condition_supported(args: Sequence[str]) -> bool:
    """Conditions on variables (``$v``, ``$v = x``, ``$v ~* re``...); file
    tests (``-f``...) are not."""
    if len(args) == 1:
        return args[0].lstrip("!").startswith("$")
    return len(args) == 3 and args[0].startswith("$") and args[1] in _IF_OPERATORS


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


def _address_text(listen: Listen) -> str:
    """nginx's addr_text: ``0.0.0.0:80``, ``[::]:80``, ``unix:/path``."""
    if listen.unix is not None:
        return f"unix:{listen.unix}"
    if ":" in listen.host:
        return f"[{listen.host}]:{listen.port}"
    return f"{listen.host}:{listen.port}"


def _port(text: str) -> int | None:
    port = _digits(text)
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


def _split_listen_address(node: _Node, address: str) -> tuple[str, int, str | None]:
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
    elif _digits(address) is not None:
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
    if not _resolvable_name(host):
        fail("host not found")
    # Other names: nginx resolves them here; ngxws keeps the name and the
    # listener resolves it when binding (the config layer does no I/O).
    return host, port, None


_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")


_DOTTED_QUAD = re.compile(r"\d+(\.\d+){3}")


def _resolvable_name(host: str) -> bool:
    """Could a resolver find ``host``?  nginx resolves listen/upstream names
    while reading and reports failures as "host not found"; ngxws resolves
    later, so here it only refuses characters no host name has (``80]80``,
    ``8@080``), with nginx's message.  Anything else is let through: the
    resolver's quirks (``10.0.0.`` resolves) are not second-guessed here."""
    if _DOTTED_QUAD.fullmatch(host):
        return _is_ipv4(host)  # 1.2.3.256: no resolver takes it
    return _HOSTNAME.fullmatch(host) is not None


def _split_upstream_address(node: _Node, address: str) -> tuple[str, int, str | None]:
    """An upstream ``server`` address: ``host[:port]``, ``[v6]:port``, ``unix:``."""
    if address.startswith("unix:"):
        if len(address) == 5:
            raise node.error(f'no path in the unix domain socket in upstream "{address}"')
        return "", 0, address[5:]
    if "/" in address:
        raise node.error(f'invalid host in upstream "{address}"')
    host, port, _ = _split_host_port(node, address, address, default_port=80)
    return host, port, None


def _split_host_port(
    node: _Node, hostport: str, shown: str, default_port: int, proxy_pass: bool = False
) -> tuple[str, int, bool]:
    """host[:port] / [v6][:port] -> (host, port, explicit port?); errors name
    ``shown`` as nginx does: ``invalid port in upstream "a:xx"``.  A
    ``proxy_pass`` host is checked later (``_Builder``), as nginx resolves it
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
    if not proxy_pass and not _is_ipv4(host) and not _resolvable_name(host):
        fail("host not found")
    return host, port, explicit


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _explicit_port(url: str) -> bool:
    rest = url.split("://", 1)[-1]
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("["):
        return "]:" in hostport
    return ":" in hostport


def _parse_proxy_pass(node: _Node, url: str) -> ProxyPass:
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


# --------------------------------------------------------------------------
# 4. building: what nginx does after the parse
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Effective:
    """Settings in force at one level, inherited down the tree."""

    proxy: ProxySettings
    core: _Core
    headers: tuple[tuple[str, str], ...]
    rules: tuple[tuple[str, str], ...]
    error_pages: tuple[ErrorPage, ...] = ()
    auth_request_set: tuple[tuple[str, str], ...] = ()

    def below(self, level: _Level) -> _Effective:
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
        )

    def proxy_settings(self) -> ProxySettings:
        # nginx adds its default headers (ngx_http_proxy_headers) for every
        # name the config does not set itself.
        names = {name.lower() for name, _ in self.headers}
        defaults = tuple(h for h in _DEFAULT_PROXY_HEADERS if h[0].lower() not in names)
        return replace(self.proxy, set_headers=self.headers + defaults)

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


_NO_HTTP = _HttpBlock(source=Source("", 0))
_ROOT = _Effective(proxy=ProxySettings(), core=_Core(), headers=(), rules=())


class _Builder:
    """Step 4, in the order nginx does it after reading the http block:
    upstreams, server merges (certificates), location trees (duplicates),
    SSL listeners, server names; then the events check."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.main = reader.main
        self.warnings = list(reader.warnings)

    def build(self) -> Config:
        http = self.main.http or _HttpBlock(source=Source(self.reader.conf_path, 1))
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
            ignored=tuple(self.reader.ignored),
            maps=tuple(self.reader.maps),
            warnings=tuple(self.warnings),
            notices=tuple(self.reader.notices),
            honoured=tuple(self.reader.honoured),
            unenforced=tuple(self.reader.unenforced),
            limit_zones=tuple(z for _kind, z in zones.values() if z is not None),
        )

    def _check_proxy_pass_hosts(self, servers: Sequence[_ServerBlock]) -> None:
        """ngx_http_upstream_init_round_robin() resolves proxy_pass hosts that
        name no upstream block; ngxws resolves at connect time, and only
        refuses names no resolver would take, with nginx's message."""
        upstream_names = {u.name.lower() for u in (self.main.http or _NO_HTTP).upstreams}

        def walk(locations: Sequence[_LocationBlock]) -> None:
            for loc in locations:
                pp = loc.proxy_pass
                if pp is not None and not pp.has_variables and pp.unix is None:
                    host = pp.host
                    known = host.lower() in upstream_names or _is_ipv4(host) or ":" in host
                    if not known and not _resolvable_name(host) and pp.source is not None:
                        message = f'host not found in upstream "{host}"'
                        raise ConfigError(message, pp.source.file, pp.source.line)
                walk(loc.locations)

        for server in servers:
            walk(server.locations)

    def _upstream(self, raw: _UpstreamBlock) -> Upstream:
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

    def _check_certificates(self, core: _Core) -> None:
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

    def _server(self, raw: _ServerBlock, eff: _Effective, upstreams: Mapping[str, str]) -> Server:
        core = eff.core
        listens = raw.listens or [Listen(host="0.0.0.0", port=80, source=raw.source)]
        if core.http2:
            listens = [replace(listen, http2=True) for listen in listens]
        return Server(
            listens=tuple(listens),
            server_names=tuple(raw.names) if raw.names else ("",),
            locations=tuple(self._location(loc, eff, upstreams) for loc in raw.locations),
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
            ifs=tuple(raw.ifs),
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
            limits=_limits(core),
        )

    def _ws_settings(self, raw: _ServerBlock) -> WsSettings:
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
            ),
            max_connections=raw.ws_max_connections,
            conn_age=raw.ws_conn_age,
            # spec: a server that uses ws_log_enabled follows the chainstack fork
            fork=Fork.CHAINSTACK if raw.ws_log_enabled is not None else Fork.V1,
        )

    def _location(
        self, raw: _LocationBlock, parent: _Effective, upstreams: Mapping[str, str]
    ) -> Location:
        eff = parent.below(raw)
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
            return_=raw.return_,
            proxy=eff.proxy_settings(),
            access=eff.access(),
            realip=eff.realip(),
            client_max_body_size=eff.core.client_max_body_size,
            locations=tuple(self._location(child, eff, upstreams) for child in raw.locations),
            source=raw.source,
            default_type=eff.core.default_type,
            ifs=tuple(raw.ifs),
            error_pages=eff.error_pages,
            types=eff.core.types,
            send_timeout=eff.core.send_timeout,
            internal=raw.internal,
            limits=_limits(eff.core),
            client_body_timeout=eff.core.client_body_timeout,
            client_body_buffer_size=eff.core.client_body_buffer_size,
            client_body_temp_path=eff.core.client_body_temp_path,
        )
        if not raw.steps:
            return location
        return replace(location, rewrites=build_steps(raw.steps, lambda block: self._if_location(block, eff, upstreams, location)))

    def _if_location(
        self, raw: _LocationBlock, parent: _Effective, upstreams: Mapping[str, str], enclosing: Location
    ) -> Location:
        # ngx_http_proxy_merge_loc_conf(): a nameless (if) location without
        # proxy_pass of its own takes the enclosing one's
        inner = self._location(raw, parent, upstreams)
        if inner.proxy_pass is None and enclosing.proxy_pass is not None:
            inner = replace(inner, proxy_pass=enclosing.proxy_pass)
        return inner

    def _check_duplicate_locations(self, locations: Sequence[_LocationBlock]) -> None:
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
            lacking = [default] if not default.ssl_reject_handshake else [
                s for s, _ in entries if s.ssl_certificate is None and not s.ssl_reject_handshake
            ]
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
                            f'conflicting server name "{name}" on {_address_text(listen)}, ignored'
                        )
        return out
