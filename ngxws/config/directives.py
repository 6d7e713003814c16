"""Directive rules, as data: what the module's directives accept, and what
ngxws does with every stock nginx directive it meets.

Two tables, read by the loading stages (``reader.py``) and nothing else;
the value setters for the same names are ``setters.SETTERS``:

``WS_DIRECTIVES``
    The module's own directives, in the form of nginx's ``ngx_command_t``
    table (context bits + argument count).  crossplane does not know them
    (and its ``register_external_directives()`` is broken on Python 3), so
    ngxws checks them itself, with nginx's wording.  Any other ``ws_*`` name
    is an ``unknown directive``, as nginx with the module loaded would say.

``STOCK_DIRECTIVES``
    Every stock directive ngxws has an opinion on: ``HONOURED`` (implemented,
    ends up in the model), ``IGNORED_HARMLESS`` (tuning that nothing on the
    wire depends on), ``IGNORED_CHANGES_BEHAVIOUR`` (nginx would do
    something ngxws will not) or ``UNENFORCED_ACCESS`` (access control or
    authentication ngxws does not enforce: the config is refused unless the
    operator names the directive with ``--allow-unenforced``, so that a
    config never starts unprotected by mistake).  crossplane still checks their contexts and
    argument counts.  A directive missing here is treated as
    ``IGNORED_CHANGES_BEHAVIOUR``: when in doubt, tell the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Handling",
    "WsRule",
    "StockRule",
    "WS_DIRECTIVES",
    "WS_LOG_FORMAT_KEYWORDS",
    "STOCK_DIRECTIVES",
    "CHECKED_NOT_ACTED_ON",
    "DATA_BLOCKS",
    "OPAQUE_BLOCKS",
    "CONTEXT_NAMES",
    "context_name",
    "stock_rule",
    "CACHE_DIRECTIVES",
    "CACHE_HEADERS_REASON",
    "UNKNOWN_RULE",
    "UNLISTED_RULE",
    "NEWER_STOCK_DIRECTIVES",
    "THIRD_PARTY_ACCESS",
    "UNSERVED_HANDLERS",
]


class Handling(str, Enum):
    """What ngxws does with a directive."""

    HONOURED = "honoured"
    IGNORED_HARMLESS = "ignored_harmless"
    IGNORED_CHANGES_BEHAVIOUR = "ignored_changes_behaviour"
    UNENFORCED_ACCESS = "unenforced_access"


# crossplane's context tuples (analyzer.CONTEXTS) -> the names used below.
# A nested location is ("http", "location") like a top-level one: crossplane
# flattens them, and so does nginx's NGX_HTTP_LOC_CONF bit.
CONTEXT_NAMES: Mapping[tuple[str, ...], str] = {
    (): "main",
    ("events",): "events",
    ("http",): "http",
    ("http", "server"): "server",
    ("http", "location"): "location",
    ("http", "upstream"): "upstream",
    ("http", "server", "if"): "server_if",
    ("http", "location", "if"): "location_if",
    ("http", "location", "limit_except"): "limit_except",
}


def context_name(ctx: tuple[str, ...]) -> str:
    """Name of a crossplane context tuple; ``"other"`` for stream, mail, map..."""
    return CONTEXT_NAMES.get(ctx, "other")


@dataclass(frozen=True)
class WsRule:
    """One entry of the module's ``ngx_command_t`` table (also used for the
    few stock directives crossplane does not know).

    ``contexts``: where it may stand (NGX_HTTP_SRV_CONF -> ``server``,
    NGX_HTTP_LOC_CONF -> ``location``).  ``nargs``: accepted argument counts
    (NGX_CONF_NOARGS -> 0, TAKE1 -> 1, TAKE12 -> 1 and 2).  ``flag``: the
    single argument must be ``on``/``off`` (NGX_CONF_FLAG).
    """

    contexts: frozenset[str]
    nargs: frozenset[int]
    flag: bool = False


# ws_log_format's first argument when it has two (spec: module.md).  "message"
# is the chainstack README's name for client+server.
WS_LOG_FORMAT_KEYWORDS: tuple[str, ...] = ("open", "close", "client", "server", "message")

_SRV = frozenset({"server"})

WS_DIRECTIVES: Mapping[str, WsRule] = {
    # v1: NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS
    "ws_stat": WsRule(contexts=frozenset({"location"}), nargs=frozenset({0})),
    # NGX_HTTP_SRV_CONF | NGX_CONF_TAKE1
    "ws_log": WsRule(contexts=_SRV, nargs=frozenset({1})),
    # NGX_HTTP_SRV_CONF | NGX_CONF_TAKE12 (frame template, or KEYWORD template);
    # ngxws: a leading escape=default|json|none (nginx's log_format parameter)
    "ws_log_format": WsRule(contexts=_SRV, nargs=frozenset({1, 2, 3})),
    # NGX_HTTP_SRV_CONF | NGX_CONF_TAKE1, non-negative integer
    "ws_max_connections": WsRule(contexts=_SRV, nargs=frozenset({1})),
    # NGX_HTTP_SRV_CONF | NGX_CONF_TAKE1, nginx time
    "ws_conn_age": WsRule(contexts=_SRV, nargs=frozenset({1})),
    # chainstack fork: NGX_HTTP_SRV_CONF | NGX_CONF_FLAG
    "ws_log_enabled": WsRule(contexts=_SRV, nargs=frozenset({1}), flag=True),
}


# Stock directives newer than crossplane's table (it stops at nginx ~1.21), so
# that ngxws checks them itself, like the module's.
NEWER_STOCK_DIRECTIVES: Mapping[str, WsRule] = {
    # nginx 1.25.1: "http2 on;" replaces "listen ... http2"
    "http2": WsRule(contexts=frozenset({"http", "server"}), nargs=frozenset({1}), flag=True),
}


@dataclass(frozen=True)
class StockRule:
    """What ngxws does with one stock directive.

    ``reason``: one line for the migration report (why it is ignored, or
    what ngxws does instead).  ``harmless_args``: argument lists for which an
    otherwise behaviour-changing directive is harmless (``ssi off``).
    ``unique``: nginx refuses a second one in the same block with
    ``"X" directive is duplicate`` (its ``*_slot`` setters do), so ngxws does.
    """

    handling: Handling
    reason: str = ""
    harmless_args: tuple[tuple[str, ...], ...] = ()
    unique: bool = False


_H = Handling.HONOURED
_OK = Handling.IGNORED_HARMLESS
_CH = Handling.IGNORED_CHANGES_BEHAVIOUR


def _honoured(unique: bool = False) -> StockRule:
    return StockRule(_H, unique=unique)


def _harmless(reason: str) -> StockRule:
    return StockRule(_OK, reason)


def _changes(reason: str, *harmless_args: tuple[str, ...]) -> StockRule:
    return StockRule(_CH, reason, harmless_args=tuple(harmless_args))


def _unenforced(reason: str, *harmless_args: tuple[str, ...]) -> StockRule:
    return StockRule(Handling.UNENFORCED_ACCESS, reason, harmless_args=tuple(harmless_args))


_TUNING = "performance tuning; ngxws manages its own I/O"
_STATIC = "this part of static file serving is not implemented"
_CACHE = "proxy caching is not implemented; every request goes to the upstream"
_GZIP_SUB = "output buffer sizes: the compressed bytes are the same"
_HEADERS = "response header manipulation is not implemented"
_LIMIT = "rate limiting of responses is not implemented"
_VARS = "defines variables ngxws does not evaluate"
_NO_ACCESS_LOG = "ngxws writes no access log (ws_log and the error log are written)"
_ONLY_WITH = "only acts with {} (which is refused unless allowed)"
_ONLY_BESIDE = "only acts with {}, reported on its own where it is"
_SECURE_LINK = "secure links are not checked ($secure_link is empty)"
_LUA = "Lua access handlers do not run"

STOCK_DIRECTIVES: Mapping[str, StockRule] = {
    # --- core / main context ------------------------------------------------
    "include": _honoured(),
    "events": _honoured(unique=True),
    "http": _honoured(unique=True),
    "worker_processes": _honoured(unique=True),
    "worker_connections": _honoured(unique=True),
    "pid": _honoured(unique=True),
    "error_log": _honoured(),
    "user": _harmless("ngxws runs as the user that starts it"),
    "daemon": _harmless("ngxws runs in the foreground; use a service manager"),
    "master_process": _harmless("ngxws always runs a supervisor"),
    "worker_rlimit_nofile": _honoured(unique=True),
    "worker_rlimit_core": _harmless(_TUNING),
    "worker_cpu_affinity": _harmless(_TUNING),
    "worker_priority": _harmless(_TUNING),
    "worker_shutdown_timeout": _harmless("ngxws has its own graceful-shutdown timeout"),
    "working_directory": _harmless(_TUNING),
    "timer_resolution": _harmless(_TUNING),
    "pcre_jit": _harmless(_TUNING),
    "thread_pool": _harmless(_TUNING),
    "lock_file": _harmless(_TUNING),
    "env": _harmless("environment is inherited as is"),
    "load_module": _harmless("ngxws has the websocket module built in"),
    "ssl_engine": _harmless(_TUNING),
    "debug_points": _harmless(_TUNING),
    # --- events -------------------------------------------------------------
    "use": _harmless(_TUNING),
    "multi_accept": _harmless(_TUNING),
    "accept_mutex": _harmless(_TUNING),
    "accept_mutex_delay": _harmless(_TUNING),
    "worker_aio_requests": _harmless(_TUNING),
    "debug_connection": _harmless(_TUNING),
    # --- http / server / location: what ngxws does --------------------------
    "server": _honoured(),  # http server {} and upstream's server lines
    "listen": _honoured(),
    "server_name": _honoured(),
    "location": _honoured(),
    "upstream": _honoured(),
    "least_conn": _honoured(),
    "ip_hash": _honoured(),
    "hash": _honoured(),
    "keepalive": _honoured(unique=True),
    "map": _honoured(),
    "geo": _honoured(),  # ngxws/config/geo.py
    "return": _honoured(),
    "allow": _honoured(),
    "deny": _honoured(),
    "auth_basic": _honoured(unique=True),
    "auth_basic_user_file": _honoured(unique=True),
    "auth_request": _honoured(unique=True),
    "auth_request_set": _honoured(),
    "satisfy": _honoured(unique=True),
    "internal": _honoured(unique=True),
    "default_type": _honoured(unique=True),
    "client_max_body_size": _honoured(unique=True),
    "client_header_timeout": _honoured(unique=True),
    "keepalive_timeout": _honoured(unique=True),
    "large_client_header_buffers": _honoured(unique=True),
    "ssl_certificate": _honoured(),
    "ssl_certificate_key": _honoured(),
    "ssl_protocols": _honoured(),  # bitmask slot: repeated ones are ORed
    "ssl_ciphers": _honoured(unique=True),
    "ssl": _honoured(unique=True),  # obsolete "ssl on;" (nginx < 1.25), with nginx's warning
    # client certificates, per server under SNI (ngxws.client_certs)
    "ssl_verify_client": _honoured(unique=True),
    "ssl_verify_depth": _honoured(unique=True),
    "ssl_client_certificate": _honoured(unique=True),
    "ssl_trusted_certificate": _honoured(unique=True),
    "ssl_crl": _honoured(unique=True),
    "ssl_reject_handshake": _honoured(unique=True),  # refused in the SNI step (ngxws.tls)
    "send_timeout": _honoured(unique=True),  # a blocked write to the client (tunnel or response)
    "client_body_timeout": _honoured(unique=True),
    "client_body_buffer_size": _honoured(unique=True),
    "client_body_temp_path": _honoured(unique=True),
    "http2": _honoured(unique=True),
    "proxy_pass": _honoured(unique=True),
    "proxy_set_header": _honoured(),
    "proxy_http_version": _honoured(unique=True),
    "proxy_pass_request_headers": _honoured(unique=True),
    "proxy_pass_request_body": _honoured(unique=True),
    "proxy_connect_timeout": _honoured(unique=True),
    "proxy_read_timeout": _honoured(unique=True),
    "proxy_send_timeout": _honoured(unique=True),
    "proxy_next_upstream": _honoured(),
    "proxy_redirect": _honoured(),
    "proxy_cookie_domain": _honoured(),
    "proxy_cookie_path": _honoured(),
    "proxy_intercept_errors": _honoured(unique=True),
    # X-Accel-Redirect honoured, the other values reported (config/ignore_headers.py)
    "proxy_ignore_headers": _honoured(),
    "limit_except": _honoured(unique=True),
    "proxy_hide_header": _honoured(),
    "proxy_pass_header": _honoured(),
    "proxy_buffering": _honoured(unique=True),
    "proxy_request_buffering": _honoured(unique=True),
    "proxy_ssl_server_name": _honoured(unique=True),
    "proxy_ssl_name": _honoured(unique=True),
    "proxy_ssl_verify": _honoured(unique=True),
    "proxy_ssl_verify_depth": _honoured(unique=True),
    "proxy_ssl_trusted_certificate": _honoured(unique=True),
    "proxy_ssl_certificate": _honoured(),
    "proxy_ssl_certificate_key": _honoured(),
    "proxy_ssl_protocols": _honoured(),
    "proxy_ssl_ciphers": _honoured(unique=True),
    # --- ignored, harmless: tuning and bookkeeping ---------------------------
    "types": _honoured(),  # Content-Type of ``return CODE text`` answers
    "types_hash_max_size": _harmless(_TUNING),
    "types_hash_bucket_size": _harmless(_TUNING),
    "server_names_hash_max_size": _harmless(_TUNING),
    "server_names_hash_bucket_size": _harmless(_TUNING),
    "variables_hash_max_size": _harmless(_TUNING),
    "variables_hash_bucket_size": _harmless(_TUNING),
    "map_hash_max_size": _harmless(_TUNING),
    "map_hash_bucket_size": _harmless(_TUNING),
    "proxy_headers_hash_max_size": _harmless(_TUNING),
    "proxy_headers_hash_bucket_size": _harmless(_TUNING),
    "sendfile": _harmless(_TUNING),
    "sendfile_max_chunk": _harmless(_TUNING),
    "tcp_nopush": _harmless(_TUNING),
    "tcp_nodelay": _harmless("ngxws always sets TCP_NODELAY"),
    "aio": _harmless(_TUNING),
    "aio_write": _harmless(_TUNING),
    "directio": _harmless(_TUNING),
    "output_buffers": _harmless(_TUNING),
    "postpone_output": _harmless(_TUNING),
    "open_file_cache": _harmless(_TUNING),
    "open_file_cache_valid": _harmless(_TUNING),
    "open_file_cache_min_uses": _harmless(_TUNING),
    "open_file_cache_errors": _harmless(_TUNING),
    "open_log_file_cache": _harmless(_TUNING),
    "access_log": _harmless(_NO_ACCESS_LOG),
    "log_format": _harmless(_NO_ACCESS_LOG),
    "log_not_found": _harmless(_TUNING),
    "log_subrequest": _harmless(_TUNING),
    "rewrite_log": _harmless(_TUNING),
    "uninitialized_variable_warn": _harmless(_TUNING),
    "server_tokens": _harmless("ngxws sends no version in its own responses"),
    "resolver": _honoured(unique=True),  # proxy_pass with variables (ngxws.proxy.resolver)
    "resolver_timeout": _honoured(unique=True),
    "client_header_buffer_size": _harmless(_TUNING),
    "client_body_in_file_only": _harmless(_TUNING),
    "client_body_in_single_buffer": _harmless(_TUNING),
    "reset_timedout_connection": _harmless(_TUNING),
    "lingering_close": _harmless(_TUNING),
    "lingering_time": _harmless(_TUNING),
    "lingering_timeout": _harmless(_TUNING),
    "keepalive_requests": _harmless(_TUNING),
    "keepalive_time": _harmless(_TUNING),
    "keepalive_disable": _harmless(_TUNING),
    "msie_padding": _harmless(_TUNING),
    "msie_refresh": _harmless(_TUNING),
    "etag": _honoured(unique=True),
    "if_modified_since": _honoured(unique=True),
    "max_ranges": _honoured(unique=True),
    "disable_symlinks": _harmless(_STATIC),
    # ngx_http_limit_req_module / ngx_http_limit_conn_module (ngxws/limits/)
    "limit_req_zone": _honoured(),
    "limit_conn_zone": _honoured(),
    "limit_req": _honoured(),
    "limit_conn": _honoured(),
    "limit_req_status": _honoured(unique=True),
    "limit_conn_status": _honoured(unique=True),
    "limit_req_log_level": _honoured(unique=True),
    "limit_conn_log_level": _honoured(unique=True),
    "limit_req_dry_run": _honoured(unique=True),
    "limit_conn_dry_run": _honoured(unique=True),
    "proxy_buffer_size": _harmless(_TUNING),
    "proxy_buffers": _harmless(_TUNING),
    "proxy_busy_buffers_size": _harmless(_TUNING),
    "proxy_temp_path": _harmless(_TUNING),
    "proxy_max_temp_file_size": _harmless(_TUNING),
    "proxy_temp_file_write_size": _harmless(_TUNING),
    "proxy_socket_keepalive": _harmless(_TUNING),
    "proxy_ssl_session_reuse": _harmless(_TUNING),
    "proxy_ignore_client_abort": _harmless(_TUNING),
    "ssl_session_cache": _harmless(_TUNING),
    "ssl_session_timeout": _harmless(_TUNING),
    "ssl_session_tickets": _harmless(_TUNING),
    "ssl_session_ticket_key": _harmless(_TUNING),
    "ssl_prefer_server_ciphers": _harmless(_TUNING),
    "ssl_buffer_size": _harmless(_TUNING),
    "ssl_dhparam": _harmless("ECDHE key exchange is used"),
    "ssl_ecdh_curve": _harmless(_TUNING),
    "ssl_stapling": _harmless("OCSP stapling is not sent"),
    "ssl_stapling_verify": _harmless("OCSP stapling is not sent"),
    "ssl_stapling_file": _harmless("OCSP stapling is not sent"),
    "ssl_stapling_responder": _harmless("OCSP stapling is not sent"),
    "ssl_early_data": _harmless(_TUNING),
    "ssl_conf_command": _harmless(_TUNING),
    "http2_max_concurrent_streams": _harmless(_TUNING),
    "http2_recv_buffer_size": _harmless(_TUNING),
    "http2_chunk_size": _harmless(_TUNING),
    "http2_body_preread_size": _harmless(_TUNING),
    "http2_idle_timeout": _harmless(_TUNING),
    "http2_max_field_size": _harmless(_TUNING),
    "http2_max_header_size": _harmless(_TUNING),
    "http2_max_requests": _harmless(_TUNING),
    "http2_recv_timeout": _harmless(_TUNING),
    "charset_map": _harmless(_STATIC),
    "source_charset": _honoured(),  # only where it names the charset (config/headers.py)
    "gzip_buffers": _harmless(_GZIP_SUB),
    # gzip (config/gzip.py, applied by http/gzip_filter.py)
    "gzip_comp_level": _honoured(unique=True),
    "gzip_disable": _honoured(),
    "gzip_http_version": _honoured(unique=True),
    "gzip_min_length": _honoured(unique=True),
    "gzip_proxied": _honoured(),
    "gzip_types": _honoured(),
    "gzip_vary": _honoured(unique=True),
    "zone": _harmless("upstream state is per ngxws worker"),
    "keepalive_timeout_upstream": _harmless(_TUNING),
    "random_index": _harmless(_STATIC),
    "autoindex_exact_size": _honoured(unique=True),
    "autoindex_format": _honoured(unique=True),
    "autoindex_localtime": _honoured(unique=True),
    "index": _honoured(),
    "recursive_error_pages": _honoured(unique=True),
    "absolute_redirect": _honoured(),  # proxy/header_phase.py redirect_location
    "port_in_redirect": _honoured(),
    "server_name_in_redirect": _honoured(),
    # --- ignored, changes behaviour -----------------------------------------
    "gzip": _honoured(unique=True),
    "gzip_static": _honoured(unique=True),  # config/gzip.py, http/static.py precompressed
    "gunzip": _changes("responses are not decompressed", ("off",)),
    "rewrite": _honoured(),  # ngxws/config/rewrite.py, run by ngxws/http/rewrite.py
    "if": _honoured(),
    "set": _honoured(),
    "break": _honoured(),
    "add_header": _honoured(),  # ngxws/config/headers.py, sent by ngxws/http/headers_filter.py
    "add_trailer": _changes(_HEADERS),
    "expires": _honoured(),
    "charset": _honoured(),  # the Content-Type label only (http/headers_filter.py)
    "charset_types": _honoured(),
    "override_charset": _honoured(),  # "on" refused: it recodes
    "more_set_headers": _changes(_HEADERS),
    "more_clear_headers": _changes(_HEADERS),

    "proxy_cookie_flags": _honoured(),
    "proxy_set_body": _honoured(unique=True),  # http/upstream_request.py build_upstream_head
    "proxy_method": _honoured(unique=True),
    "proxy_bind": _changes("upstream connections use the default source address", ("off",)),
    "proxy_next_upstream_tries": _honoured(unique=True),
    "proxy_next_upstream_timeout": _changes("retries are bounded by the peer count only"),
    "proxy_limit_rate": _changes(_LIMIT, ("0",)),
    "proxy_store": _changes(_CACHE, ("off",)),
    "proxy_cache": _changes(_CACHE, ("off",)),
    "proxy_cache_path": _changes(_CACHE),
    "proxy_cache_key": _changes(_CACHE),
    "proxy_cache_valid": _changes(_CACHE),
    "proxy_cache_bypass": _changes(_CACHE),
    "proxy_no_cache": _changes(_CACHE),
    "proxy_cache_methods": _changes(_CACHE),
    "proxy_cache_min_uses": _changes(_CACHE),
    "proxy_cache_use_stale": _changes(_CACHE),
    "proxy_cache_lock": _changes(_CACHE),
    "proxy_cache_revalidate": _changes(_CACHE),
    "proxy_cache_background_update": _changes(_CACHE),
    "proxy_cache_convert_head": _changes(_CACHE),
    "proxy_cache_lock_timeout": _changes(_CACHE),
    "proxy_cache_lock_age": _changes(_CACHE),
    "proxy_cache_max_range_offset": _changes(_CACHE),
    "proxy_ssl_crl": _unenforced("upstream certificate revocation is not checked"),
    "proxy_ssl_password_file": _changes("encrypted client keys are not supported"),
    "proxy_ssl_conf_command": _changes("OpenSSL commands are not applied"),
    "limit_rate": _changes(_LIMIT, ("0",)),
    "limit_rate_after": _changes(_LIMIT),
    "sub_filter": _changes("response bodies are passed unchanged"),
    "sub_filter_once": _harmless(_ONLY_BESIDE.format("sub_filter")),
    "sub_filter_types": _harmless(_ONLY_BESIDE.format("sub_filter")),
    "sub_filter_last_modified": _harmless(_ONLY_BESIDE.format("sub_filter")),
    "addition_types": _harmless(_ONLY_BESIDE.format("add_before_body or add_after_body")),
    "add_before_body": _changes("response bodies are passed unchanged"),
    "add_after_body": _changes("response bodies are passed unchanged"),
    "ssi": _changes("SSI is not implemented", ("off",)),
    "ssi_types": _harmless(_ONLY_BESIDE.format("ssi on")),
    "ssi_silent_errors": _harmless(_ONLY_BESIDE.format("ssi on")),
    "ssi_value_length": _harmless(_ONLY_BESIDE.format("ssi on")),
    "ssi_min_file_chunk": _harmless(_ONLY_BESIDE.format("ssi on")),
    "ssi_last_modified": _harmless(_ONLY_BESIDE.format("ssi on")),
    "mirror": _changes("requests are not mirrored", ("off",)),
    "mirror_request_body": _harmless(_ONLY_BESIDE.format("mirror")),
    "error_page": _honoured(),
    "root": _honoured(),
    "alias": _honoured(),
    "try_files": _honoured(unique=True),
    "autoindex": _honoured(unique=True),
    "stub_status": _honoured(),  # the page (accounting/connstats.py)
    "set_real_ip_from": _honoured(),
    "real_ip_header": _honoured(unique=True),
    "real_ip_recursive": _honoured(unique=True),
    "underscores_in_headers": _changes("header names with underscores are dropped", ("off",)),
    "ignore_invalid_headers": _changes("invalid header names are dropped", ("on",)),
    "chunked_transfer_encoding": _changes(
        "chunked encoding is used as the upstream sends it", ("on",)
    ),
    "split_clients": _honoured(),
    "ssl_password_file": _changes("encrypted certificate keys are not supported"),
    "stream": _changes(
        "NOT served: the stream module (TCP/UDP proxying, TLS passthrough, ssl_preread) "
        "is not implemented; the http part runs without it"
    ),
    "mail": _changes("the mail proxy is not implemented; its block is skipped"),
    # content handlers ngxws cannot run (UNSERVED_HANDLERS): refused unless allowed
    "fastcgi_pass": _unenforced("the FastCGI protocol is not implemented"),
    "uwsgi_pass": _unenforced("the uwsgi protocol is not implemented"),
    "scgi_pass": _unenforced("the SCGI protocol is not implemented"),
    "grpc_pass": _unenforced("gRPC proxying is not implemented"),
    "memcached_pass": _unenforced("the memcached protocol is not implemented"),
    "perl": _unenforced("embedded Perl is not implemented"),
    "js_content": _unenforced("njs (JavaScript) handlers are not implemented"),
    "random": _changes("balancing falls back to round robin"),
    "sticky": _changes("balancing falls back to round robin"),
    # --- access control ngxws does not enforce: refused unless allowed ------
    "secure_link": _unenforced(_SECURE_LINK),
    "secure_link_md5": _unenforced(_SECURE_LINK),
    "secure_link_secret": _unenforced(_SECURE_LINK),
    "ssl_ocsp": _unenforced("client certificates are not checked with OCSP", ("off",)),
    "ssl_ocsp_cache": _harmless(_ONLY_WITH.format("ssl_ocsp")),
    "ssl_ocsp_responder": _harmless(_ONLY_WITH.format("ssl_ocsp")),
    # nginx plus (crossplane knows these)
    "auth_jwt": _unenforced("JSON Web Tokens are not validated", ("off",)),
    "auth_jwt_require": _unenforced("JSON Web Token claims are not checked"),
    "auth_jwt_key_file": _harmless(_ONLY_WITH.format("auth_jwt")),
    "auth_jwt_key_request": _harmless(_ONLY_WITH.format("auth_jwt")),
    "auth_jwt_key_cache": _harmless(_ONLY_WITH.format("auth_jwt")),
    "auth_jwt_leeway": _harmless(_ONLY_WITH.format("auth_jwt")),
    "auth_jwt_type": _harmless(_ONLY_WITH.format("auth_jwt")),
    "auth_jwt_claim_set": _harmless(_ONLY_WITH.format("auth_jwt")),
    "auth_jwt_header_set": _harmless(_ONLY_WITH.format("auth_jwt")),
}

CACHE_DIRECTIVES = frozenset(
    name for name, rule in STOCK_DIRECTIVES.items() if rule.reason == _CACHE and name != "proxy_store"
)
"""The proxy cache's directives: they act only where a ``proxy_cache``
zone is in force.  A config with no ``proxy_cache`` other than ``off``
anywhere caches nothing in nginx either, so there they are reported as
harmless (``Reader.cache_on``; ``proxy_store`` stores files on its own
and stays reported)."""

CACHE_HEADERS_REASON = (
    "nginx acts on X-Accel-Expires, Expires, Cache-Control, Set-Cookie and Vary for its proxy cache only; "
    + _CACHE
)
"""``proxy_ignore_headers`` naming those (config/ignore_headers.py): reported
with the cache's directives, harmless where no ``proxy_cache`` is on."""

# Third-party modules' access handlers (nginx without the module would say
# "unknown directive"; a config written for OpenResty or with such a module
# built in must not start unprotected either).
THIRD_PARTY_ACCESS: Mapping[str, StockRule] = {
    "access_by_lua": _unenforced(_LUA),
    "access_by_lua_block": _unenforced(_LUA),
    "access_by_lua_file": _unenforced(_LUA),
    "access_by_lua_no_postpone": _harmless(_ONLY_WITH.format("access_by_lua*")),
    "auth_digest": _unenforced("HTTP digest authentication is not implemented", ("off",)),
    "auth_digest_user_file": _harmless(_ONLY_WITH.format("auth_digest")),
    "auth_pam": _unenforced("PAM authentication is not implemented", ("off",)),
    "auth_ldap": _unenforced("LDAP authentication is not implemented", ("off",)),
    "auth_gss": _unenforced("Kerberos (GSSAPI) authentication is not implemented", ("off",)),
    "auth_jwt_enabled": _unenforced("JSON Web Tokens are not validated", ("off",)),
    "modsecurity": _unenforced("the ModSecurity firewall does not run", ("off",)),
}

# Content handlers ngxws cannot run.  nginx would serve their locations;
# ngxws would answer 404 there (accepted, then wrong), so like unenforced
# access control they refuse the config unless ``--allow-unenforced`` names
# them, and then their locations answer 502 (an unreachable backend).
UNSERVED_HANDLERS: frozenset[str] = frozenset(
    {"fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "memcached_pass", "perl", "js_content"}
)

# Directives ngxws reads and checks like nginx but does not act on: reported
# as ignored (after the usual checks), not as honoured.
CHECKED_NOT_ACTED_ON: Mapping[str, StockRule] = {
    "keepalive": _harmless("upstream connections are not reused: one per request, as nginx 1.22 without it"),
}

# Blocks whose entries are data, not directives (map's "KEY VALUE;" lines).
# ngxws neither validates nor reports their contents.
DATA_BLOCKS: frozenset[str] = frozenset(
    {"map", "geo", "types", "split_clients", "charset_map", "match"}
)

# Blocks ngxws does not implement at all: reported once, contents skipped.
OPAQUE_BLOCKS: frozenset[str] = frozenset({"if", "stream", "mail"})

# A directive crossplane does not know either: nginx would refuse it unless a
# third-party module provides it, and ngxws cannot tell what that would do.
UNKNOWN_RULE = StockRule(_CH, "unknown to stock nginx (third-party module?); not implemented")
# A stock nginx directive this table does not list.
UNLISTED_RULE = StockRule(_CH, "not implemented by ngxws")


def stock_rule(name: str, known_to_nginx: bool) -> StockRule:
    """The rule for ``name``; unlisted names default to changes-behaviour."""
    rule = STOCK_DIRECTIVES.get(name) or THIRD_PARTY_ACCESS.get(name)
    if rule is not None:
        return rule
    return UNLISTED_RULE if known_to_nginx else UNKNOWN_RULE
