"""The typed, immutable picture of an nginx.conf that the rest of ngxws reads.

crossplane's raw parse is turned into these frozen dataclasses once, at
start-up (see ``loader.py``); nothing after that looks at the raw parse.  The
model keeps, for every item, the file:line it came from, so that ``ngxws
check`` and runtime messages can point at the config like ``nginx -t`` does.

Inheritance (http -> server -> location) is already resolved here: a
``Location`` carries the effective ``ProxySettings`` for requests it handles,
so the request path never walks parent blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ngxws.config.gzip import GzipConf
from ngxws.config.headers import HeadersConf
from ngxws.config.limits import Limits, LimitZone
from ngxws.config.redirects import CookieFlags, RedirectRule
from ngxws.config.static import StaticConf

if TYPE_CHECKING:
    from ngxws.config.rewrite import Step


@dataclass(frozen=True)
class Source:
    """Where a directive stands: printed as ``file:line`` in every message."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class SocketOptions:
    """The ``listen`` parameters that are socket options (one listen per
    address may carry them, as nginx's "duplicate listen options" rule).

    ``keepalive``: ``so_keepalive=on`` (True), ``off`` (False), unset (None);
    ``keepidle``/``keepintvl`` (seconds) and ``keepcnt`` from
    ``so_keepalive=idle:intvl:cnt`` (0: the system's).  ``deferred``: the
    ``TCP_DEFER_ACCEPT`` seconds (nginx uses the default server's
    ``client_header_timeout``), 0 when off.
    """

    backlog: int = 511
    rcvbuf: int | None = None
    sndbuf: int | None = None
    keepalive: bool | None = None
    keepidle: int = 0
    keepintvl: int = 0
    keepcnt: int = 0
    fastopen: int | None = None
    deferred: int = 0
    reuseport: bool = False
    bind: bool = False


@dataclass(frozen=True)
class Listen:
    """One ``listen`` directive.

    ``host`` is ``"0.0.0.0"`` for a bare port (as nginx binds ``*:port``),
    ``"::"`` for ``[::]:port``; ``unix`` holds the socket path for ``unix:``
    listens (then host is ``""`` and port ``0``).  ``ipv6only`` is the
    socket's ``IPV6_V6ONLY`` for IPv6 addresses (nginx's default ``on``;
    ``[::]:80 ipv6only=off`` takes IPv4 clients too); IPv4 and unix listens
    ignore it, as nginx does.
    """

    host: str
    port: int
    unix: str | None = None
    default_server: bool = False
    ssl: bool = False
    http2: bool = False
    source: Source | None = None
    ipv6only: bool = True
    options: SocketOptions = field(default_factory=SocketOptions)
    proxy_protocol: bool = False  # read a PROXY protocol preface first (ORed per address)

    @property
    def key(self) -> tuple[str, int, str | None]:
        """Identity of the socket this listen binds (several servers share one)."""
        return (self.host, self.port, self.unix)


@dataclass(frozen=True)
class ProxyPass:
    """A ``proxy_pass`` target, split the way nginx splits it.

    ``uri`` is ``None`` when the URL has no URI part (``http://b:9000``): the
    request URI is then passed unchanged.  With a URI part (even ``/``) the
    part of the request URI that matched the location is replaced by it.
    ``upstream`` names an ``upstream {}`` block when ``host`` matches one.
    ``has_variables`` marks a URL that holds ``$vars`` (resolved per request).
    """

    url: str
    scheme: str
    host: str
    port: int
    uri: str | None
    upstream: str | None = None
    has_variables: bool = False
    source: Source | None = None
    unix: str | None = None  # socket path for ``http://unix:/path:/uri`` (host ``""``, port 0)


@dataclass(frozen=True)
class UpstreamPeer:
    """One ``server`` line inside an ``upstream {}`` block."""

    host: str
    port: int
    weight: int = 1
    max_fails: int = 1
    fail_timeout: float = 10.0
    backup: bool = False
    down: bool = False
    unix: str | None = None
    # the address as written (nginx's peer->server): what ``hash ...
    # consistent`` places on its ring
    server: str = ""


@dataclass(frozen=True)
class Upstream:
    """An ``upstream NAME {}`` block; ``balance`` is ``round_robin``,
    ``least_conn``, ``ip_hash`` or ``hash`` (with ``hash_key``)."""

    name: str
    peers: tuple[UpstreamPeer, ...]
    balance: str = "round_robin"
    hash_key: str | None = None
    keepalive: int = 0
    source: Source | None = None
    hash_consistent: bool = False  # ``hash KEY consistent`` (ketama)


@dataclass(frozen=True)
class Resolver:
    """One ``resolver`` directive (read by ngxws.config.resolver): its
    servers, ``valid=`` (None: each answer's TTL) and ``ipv6=``.  Locations
    that inherit it share it, and so share its cache, as they share nginx's
    ngx_resolver_t."""

    servers: tuple[tuple[str, int], ...]
    valid: float | None = None
    ipv6: bool = True


@dataclass(frozen=True)
class ProxySettings:
    """Effective ``proxy_*`` settings of a location, after inheritance.

    ``set_headers`` is the complete list nginx would use at this level: when a
    level sets any ``proxy_set_header`` it replaces everything inherited, and
    when no level sets any, nginx's defaults apply (``Host $proxy_host``,
    ``Connection close``).  Values keep their ``$variables``; they are
    rendered per request.  Times are seconds.
    """

    set_headers: tuple[tuple[str, str], ...] = (
        ("Host", "$proxy_host"),
        ("Connection", "close"),
    )
    http_version: str = "1.0"
    pass_request_headers: bool = True
    pass_request_body: bool = True
    connect_timeout: float = 60.0
    read_timeout: float = 60.0
    send_timeout: float = 60.0
    next_upstream: tuple[str, ...] = ("error", "timeout")
    next_upstream_tries: int = 0  # proxy_next_upstream_tries: 0 is no bound
    method: str | None = None  # proxy_method (may hold variables): None sends the client's
    set_body: str | None = None  # proxy_set_body (may hold variables): sent instead of the client's body
    ssl_server_name: bool = False
    ssl_verify: bool = False
    ssl_trusted_certificate: str | None = None
    buffering: bool = True
    request_buffering: bool = True  # proxy_request_buffering: read the whole body first
    # proxy_ssl_name (None: the proxy_pass host), proxy_ssl_verify_depth,
    # proxy_ssl_protocols, proxy_ssl_ciphers, proxy_ssl_certificate(_key);
    # paths are resolved against the conf file's directory.
    ssl_name: str | None = None
    ssl_verify_depth: int = 1
    ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    ssl_ciphers: str = "DEFAULT"
    ssl_certificate: str | None = None
    ssl_certificate_key: str | None = None
    # ``resolver`` / ``resolver_timeout`` (core module directives, read only
    # by proxy_pass with variables): None asks the system (see README)
    resolver: Resolver | None = None
    resolver_timeout: float = 30.0
    # proxy_redirect: the rules in force (the implicit default included);
    # ``redirect`` False: "off" (nothing is rewritten)
    redirect: bool = True
    redirects: tuple[RedirectRule, ...] = ()
    # proxy_hide_header / proxy_pass_header (each level's list replaces the inherited one)
    hide_headers: tuple[str, ...] = ()
    pass_headers: tuple[str, ...] = ()
    intercept_errors: bool = False  # proxy_intercept_errors
    ignore_x_accel_redirect: bool = False  # proxy_ignore_headers X-Accel-Redirect
    # proxy_cookie_domain / proxy_cookie_path rules (a level's lines, or its
    # "off", replace the inherited ones)
    cookie_domains: tuple[RedirectRule, ...] = ()
    cookie_paths: tuple[RedirectRule, ...] = ()
    # proxy_cookie_flags lines (the first whose cookie matches applies); a
    # level's lines, or its "off", replace the inherited ones
    cookie_flags: tuple[CookieFlags, ...] = ()


class Fork(str, Enum):
    """Which line of the module a server's ws_* settings follow (spec: module.md)."""

    V1 = "v1"
    CHAINSTACK = "chainstack"


@dataclass(frozen=True)
class WsLogTemplates:
    """Raw ``ws_log_format`` templates; ``None`` = not set in the config.

    Defaults are applied by ``WsSettings.effective_templates`` because they
    depend on which fork the server follows.
    """

    frame: str | None = None
    open: str | None = None
    close: str | None = None
    client: str | None = None
    server: str | None = None
    # ngxws: ``ws_log_format escape=...`` per template kind (frame, open, ...)
    escapes: tuple[tuple[str, str], ...] = ()


DEFAULT_FRAME_TEMPLATE = "$time_local: packet received from $ws_packet_source"
DEFAULT_OPEN_TEMPLATE = "websocket connection opened"
DEFAULT_CLOSE_TEMPLATE = "websocket connection closed"


@dataclass(frozen=True)
class WsSettings:
    """The module's per-server settings (``ws_log``, ``ws_log_format``, ...).

    ``log_path`` is already resolved against the prefix (``-p``).  ``fork``
    is CHAINSTACK when the server uses ``ws_log_enabled`` (that fork's rules:
    no default templates, nothing logged unless ``on``; with ``on`` and no
    ``ws_log`` the lines go to the error log).
    """

    log_path: str | None = None
    log_enabled: bool | None = None
    templates: WsLogTemplates = field(default_factory=WsLogTemplates)
    max_connections: int = 0
    conn_age: float | None = None
    fork: Fork = Fork.V1

    def effective_templates(self) -> WsLogTemplates:
        """Templates that will actually log, or all-None when nothing logs."""
        t = self.templates
        if self.fork is Fork.CHAINSTACK:
            if not self.log_enabled:
                return WsLogTemplates()
            return t
        if self.log_path is None:
            return WsLogTemplates()
        return WsLogTemplates(
            frame=t.frame if t.frame is not None else DEFAULT_FRAME_TEMPLATE,
            open=t.open if t.open is not None else DEFAULT_OPEN_TEMPLATE,
            close=t.close if t.close is not None else DEFAULT_CLOSE_TEMPLATE,
            client=t.client,
            server=t.server,
            escapes=t.escapes,
        )


@dataclass(frozen=True)
class Return:
    """``return CODE [text|URL];`` or ``return URL;``."""

    code: int
    text: str | None = None


@dataclass(frozen=True)
class ErrorPage:
    """``error_page CODE... [=[RESPONSE]] URI|@name|URL;``.

    ``response`` is None without ``=`` (the original code is kept), ``0``
    for a bare ``=`` (the code the target answers with), or the new code.
    """

    codes: tuple[int, ...]
    target: str
    response: int | None = None


# nginx's built-in types (ngx_http_core_default_types) when no ``types`` is set.
DEFAULT_TYPES: tuple[tuple[str, str], ...] = (
    ("html", "text/html"),
    ("gif", "image/gif"),
    ("jpg", "image/jpeg"),
)


@dataclass(frozen=True)
class Access:
    """``allow``/``deny`` rules in config order: (``"allow"|"deny"``, CIDR or ``"all"``),
    plus ``auth_basic`` (realm, or None when off) and its user file,
    ``auth_request`` (the subrequest URI, or None when off) with its
    ``auth_request_set`` pairs (variable name without ``$``, value template),
    and ``satisfy any`` (``satisfy_any``) or ``all``."""

    rules: tuple[tuple[str, str], ...] = ()
    auth_basic: str | None = None
    auth_basic_user_file: str | None = None
    auth_request: str | None = None
    auth_request_set: tuple[tuple[str, str], ...] = ()
    satisfy_any: bool = False

    @property
    def restricted(self) -> bool:
        """Whether the access phase has anything to check."""
        return bool(self.rules) or self.auth_basic is not None or self.auth_request is not None


@dataclass(frozen=True)
class RealIP:
    """ngx_http_realip_module's settings at one level: the trusted sources
    (``set_real_ip_from``: CIDRs, ``"unix:"``; empty means the module is
    off), ``real_ip_header`` (``X-Real-IP``, ``X-Forwarded-For``,
    ``proxy_protocol`` or any header name) and ``real_ip_recursive``."""

    trusted: tuple[str, ...] = ()
    header: str = "X-Real-IP"
    recursive: bool = False


@dataclass(frozen=True)
class Location:
    """A ``location`` block.  ``modifier`` is ``""``, ``"="``, ``"^~"``,
    ``"~"``, ``"~*"`` or ``"@"`` (named)."""

    modifier: str
    pattern: str
    proxy_pass: ProxyPass | None = None
    ws_stat: bool = False
    stub_status: bool = False  # ngx_http_stub_status_module's page
    return_: Return | None = None
    proxy: ProxySettings = field(default_factory=ProxySettings)
    access: Access = field(default_factory=Access)
    client_max_body_size: int = 1024 * 1024
    locations: tuple[Location, ...] = ()
    source: Source | None = None
    default_type: str = "text/plain"  # Content-Type of ``return CODE text`` answers
    error_pages: tuple[ErrorPage, ...] = ()
    recursive_error_pages: bool = False  # an error_page target's own errors use error_page too
    types: tuple[tuple[str, str], ...] = DEFAULT_TYPES  # extension -> MIME type
    rewrites: tuple[Step, ...] = ()  # rewrite/set/break/return/if in config order
    send_timeout: float = 60.0  # ``send_timeout``: a write to the client blocked that long ends it
    internal: bool = False  # ``internal;``: a client's own request gets 404 here
    limits: Limits = field(default_factory=Limits)  # limit_req / limit_conn in force here
    # reading the request body (see ngxws.http.body): the time allowed between
    # two reads, the part kept in memory, where the rest goes (None: the
    # system's temp directory)
    client_body_timeout: float = 60.0
    client_body_buffer_size: int = 16 * 1024
    client_body_temp_path: str | None = None
    realip: RealIP = field(default_factory=RealIP)  # run before access (PREACCESS)
    static: StaticConf = field(default_factory=StaticConf)  # root/alias/index/try_files (no proxy_pass)
    # a content handler ngxws cannot run (``uwsgi_pass``...), let through by
    # --allow-unenforced: the location answers 502, as nginx would with its
    # backend unreachable, rather than 404 (no such page)
    unserved_handler: str | None = None
    # limit_except: the methods allowed, and the configuration a request of
    # another method runs under (ngx_http_update_location_config)
    limit_except: tuple[frozenset[str], Location] | None = None
    headers: HeadersConf = field(default_factory=HeadersConf)  # add_header / expires
    gzip: GzipConf = field(default_factory=GzipConf)  # gzip, gzip_types... (config/gzip.py)


@dataclass(frozen=True)
class Server:
    """A ``server`` block: where it listens, which names it answers, and what
    it serves.  ``locations`` are in config order (matching is done by
    ``routing.locations``)."""

    listens: tuple[Listen, ...]
    server_names: tuple[str, ...]
    locations: tuple[Location, ...]
    # a request no location matches runs under the server's own configuration
    # (ngx_http_core_find_config_phase keeps it): static files from its root
    fallback: Location | None = None
    ws: WsSettings = field(default_factory=WsSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    access: Access = field(default_factory=Access)
    realip: RealIP = field(default_factory=RealIP)  # run first (POST_READ)
    ssl_certificate: str | None = None
    ssl_certificate_key: str | None = None
    ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    client_header_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    client_max_body_size: int = 1024 * 1024
    large_client_header_buffers: tuple[int, int] = (4, 8192)
    source: Source | None = None
    return_: Return | None = None  # server-level ``return`` (runs before location matching)
    ssl_ciphers: str | None = None
    default_type: str = "text/plain"
    error_pages: tuple[ErrorPage, ...] = ()
    types: tuple[tuple[str, str], ...] = DEFAULT_TYPES
    rewrites: tuple[Step, ...] = ()  # server-level rewrite directives (before find-config)
    send_timeout: float = 60.0
    client_body_timeout: float = 60.0
    client_body_buffer_size: int = 16 * 1024
    client_body_temp_path: str | None = None
    # the obsolete ``ssl on;`` (nginx < 1.25): the sockets this server is the
    # default server of speak TLS, as if their ``listen`` said ``ssl``
    ssl_on: bool = False
    # client certificates (ngx_http_ssl_module; checked per request, see
    # ngxws.client_certs) and ssl_reject_handshake (refused in the SNI step)
    ssl_verify_client: str = "off"
    ssl_verify_depth: int = 1
    ssl_client_certificate: str | None = None
    ssl_trusted_certificate: str | None = None
    ssl_crl: str | None = None
    ssl_reject_handshake: bool = False
    limits: Limits = field(default_factory=Limits)  # for requests no location matches


@dataclass(frozen=True)
class Ignored:
    """A directive ngxws does not implement, for the migration report.

    ``harmless`` is True when ignoring it changes nothing a client or backend
    can observe (``worker_rlimit_nofile``, ``sendfile``...), False when it
    would change behaviour (``gzip``, ``rewrite``...).  ``reason`` is one line
    for the report (what ngxws does instead).
    """

    name: str
    source: Source
    harmless: bool
    reason: str = ""


@dataclass(frozen=True)
class Map:
    """A ``map SOURCE $variable {}`` block (the classic websocket recipe's
    ``map $http_upgrade $connection_upgrade``).

    ``expression`` is the complex value to test (``$http_upgrade``),
    ``variable`` the name it defines, without ``$``.  ``entries`` keep config
    order; a key starting with ``~`` (``~*`` caseless) is a regex, as in
    nginx.  ``default`` is the value when nothing matches.
    """

    expression: str
    variable: str
    entries: tuple[tuple[str, str], ...] = ()
    default: str = ""
    hostnames: bool = False
    volatile: bool = False
    source: Source | None = None
    geo: str = ""  # a geo block: "cidr" or "ranges" (ngxws/config/geo.py)
    # a split_clients block: (bound, value) per line, bound 0 for "*"
    # (ngxws/config/split_clients.py)
    split: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole file.  ``path`` is the main conf file, ``prefix`` the
    directory relative runtime paths (logs, pid, ws_log) resolve against."""

    path: str
    prefix: str
    servers: tuple[Server, ...]
    upstreams: tuple[Upstream, ...] = ()
    worker_processes: int = 1
    worker_connections: int = 512
    # RLIMIT_NOFILE (soft and hard) each worker sets, as nginx's worker_rlimit_nofile
    worker_rlimit_nofile: int | None = None
    pid_path: str | None = None
    error_log: str | None = None
    error_log_level: str = "error"
    ignored: tuple[Ignored, ...] = ()
    maps: tuple[Map, ...] = ()
    # nginx's [warn] lines at ``nginx -t`` time (``conflicting server name ...``).
    warnings: tuple[str, ...] = ()
    # ngxws's own warnings, with where (unknown ws_log_format variables: kept as text).
    notices: tuple[tuple[str, Source], ...] = ()
    # every directive ngxws acts on, in reading order (for ``ngxws check``)
    honoured: tuple[tuple[str, Source], ...] = ()
    # access control ngxws does not enforce (``directives.UNENFORCED``); the
    # loader refuses them unless named in ``allow_unenforced``
    unenforced: tuple[Ignored, ...] = ()
    allow_unenforced: frozenset[str] = frozenset()
    # limit_req_zone / limit_conn_zone: the shared tables (ngxws.limits)
    limit_zones: tuple[LimitZone, ...] = ()

    def upstream(self, name: str) -> Upstream | None:
        for u in self.upstreams:
            if u.name == name:
                return u
        return None
