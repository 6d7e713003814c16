"""What the reader fills in and the builder reads: each block's own settings
before inheritance (``Level`` and its kinds), and ``Core``, the non-proxy
settings nginx inherits one by one.  Mutable on purpose: they exist only
while loading; the builder turns them into the frozen ``model`` classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ngxws.config.gzip import GzipCore
from ngxws.config.headers import CHARSET_TYPES, Expires, HeadersConf
from ngxws.config.limits import LimitConn, LimitReq, Limits
from ngxws.config.model import (
    DEFAULT_TYPES,
    ErrorPage,
    Listen,
    ProxyPass,
    Return,
    Source,
    UpstreamPeer,
)
from ngxws.config.reading import ConfigError
from ngxws.config.redirects import RedirectRule
from ngxws.config.static import StaticCore

__all__ = [
    "Core",
    "Level",
    "HttpBlock",
    "ServerBlock",
    "LocationBlock",
    "UpstreamBlock",
    "MainBlock",
    "OtherBlock",
    "Owner",
    "LIMIT_DIRECTIVES",
    "limits",
]


@dataclass(frozen=True)
class Core(StaticCore, GzipCore):  # the static directives' slots: config/static.py; gzip's: config/gzip.py
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
    # add_header / expires (config/headers.py): one slot each, so a level
    # with any add_header replaces the parent's whole list
    hdr_add: tuple[tuple[str, str, bool], ...] = ()
    hdr_expires: Expires | None = None
    hdr_charset: str | None = None
    hdr_charset_types: frozenset[str] = CHARSET_TYPES
    hdr_source_charset: tuple[str, str, int] | None = None  # (charset, file, line)
    absolute_redirect: bool = True
    port_in_redirect: bool = True
    server_name_in_redirect: bool = False
    recursive_error_pages: bool = False

    def headers_conf(self) -> HeadersConf:
        source = self.hdr_source_charset
        if source is not None and self.hdr_charset is not None and source[0].lower() != self.hdr_charset.lower():
            # ngx_http_charset_filter_module would recode through a charset_map
            raise ConfigError(
                f'ngxws does not recode responses: "source_charset {source[0]}" differs from '
                f'"charset {self.hdr_charset}"', source[1], source[2]
            )
        return HeadersConf(
            self.hdr_add, self.hdr_expires, self.hdr_charset, self.hdr_charset_types,
            self.absolute_redirect, self.port_in_redirect, self.server_name_in_redirect,
        )  # fmt: skip


@dataclass(kw_only=True)
class Level:
    """A block's own settings before inheritance.  ``headers`` and ``rules``
    are arrays: a level that sets any replaces the inherited ones."""

    source: Source
    seen: set[str] = field(default_factory=set)
    # overrides for ProxySettings / Core fields, applied with replace()
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
    auth_request_set: list[tuple[str, str]] = field(default_factory=list)
    redirects: list[RedirectRule] = field(default_factory=list)  # proxy_redirect
    steps: list[Any] = field(default_factory=list)  # rewrite module, in order (config/rewrite.py)


@dataclass(kw_only=True)
class HttpBlock(Level):
    servers: list[ServerBlock] = field(default_factory=list)
    upstreams: list[UpstreamBlock] = field(default_factory=list)


@dataclass(kw_only=True)
class ServerBlock(Level):
    listens: list[Listen] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    return_: Return | None = None
    locations: list[LocationBlock] = field(default_factory=list)
    ws_log: str | None = None
    ws_log_enabled: bool | None = None
    ws_templates: dict[str, str] = field(default_factory=dict)
    ws_max_connections: int = 0
    ws_conn_age: float | None = None
    stub_status: bool = False  # for requests no location matches


@dataclass(kw_only=True)
class LocationBlock(Level):
    modifier: str
    pattern: str
    proxy_pass: ProxyPass | None = None
    ws_stat: bool = False
    stub_status: bool = False
    return_: Return | None = None
    locations: list[LocationBlock] = field(default_factory=list)
    internal: bool = False
    unserved_handler: str | None = None  # uwsgi_pass...: see directives.UNSERVED_HANDLERS
    # limit_except METHOD ... { }: the methods and the block's own settings
    limit_except: tuple[frozenset[str], LocationBlock] | None = None

    @property
    def name(self) -> str:
        """The location's name as nginx prints it (``@name`` keeps its ``@``)."""
        return self.pattern


@dataclass(kw_only=True)
class UpstreamBlock:
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
class MainBlock:
    seen: set[str] = field(default_factory=set)
    events: bool = False
    worker_processes: int = 1
    worker_connections: int = 512
    worker_rlimit_nofile: int | None = None
    pid: str | None = None
    error_log: str | None = None
    error_log_level: str = "error"
    http: HttpBlock | None = None


@dataclass(kw_only=True)
class OtherBlock:
    """events {} and anything else whose directives need a ``seen`` set only."""

    seen: set[str] = field(default_factory=set)


Owner: TypeAlias = MainBlock | OtherBlock | HttpBlock | ServerBlock | LocationBlock | UpstreamBlock


LIMIT_DIRECTIVES = (
    "limit_req_zone", "limit_conn_zone", "limit_req", "limit_conn",
    "limit_req_status", "limit_conn_status", "limit_req_log_level", "limit_conn_log_level",
    "limit_req_dry_run", "limit_conn_dry_run",
)  # fmt: skip


def limits(core: Core) -> Limits:
    """The limits in force at a level, from its merged settings."""
    return Limits(**{name[6:]: getattr(core, name) for name in LIMIT_DIRECTIVES[2:]})
