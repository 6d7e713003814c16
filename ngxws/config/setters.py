"""Directive setters for http/server/location levels, as a table.

``SETTERS`` maps a directive name to the function that stores its value on
the block being read -- nginx's ``ngx_command_t.set`` (``ngx_conf_set_flag_slot``,
``ngx_conf_set_msec_slot``...).  The rule for the same name (context,
argument count, HONOURED or not) is ``directives.STOCK_DIRECTIVES[name]``:
crossplane and the reader apply the rule first, then call the setter.  A
HONOURED directive that is in neither this table nor ``Reader.handlers``
would vanish silently; tests/test_config.py checks there is none.

A setter stores into ``Level.core`` / ``Level.proxy`` (overrides applied by
``replace()`` when the builder merges, i.e. nginx's merge of a slot) or into
one of the level's arrays; it raises ``ReadingError`` with nginx's wording
for a value nginx would refuse.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ngxws.client_certs import VERIFY_CLIENT
from ngxws.config.directives import Handling, StockRule
from ngxws.config.gzip import GZIP_SETTERS
from ngxws.config.headers import HEADER_SETTERS
from ngxws.config.ignore_headers import set_ignore_headers
from ngxws.config.levels import Level, LocationBlock
from ngxws.config.pcre import compile_pcre
from ngxws.config.reading import Node, ReadingError
from ngxws.config.redirects import CookieFlags, RedirectRule, default_rule
from ngxws.config.resolver import read_resolver
from ngxws.config.rewrite import regex_error
from ngxws.config.units import TimeSlot, atoi, parse_flag, parse_size, parse_time
from ngxws.config.wiretext import wire
from ngxws.http.realip import trusted_source

__all__ = ["SETTERS", "Setter", "SetterContext", "invalid_value"]


class SetterContext(Protocol):
    """What a setter may use of the reader: where files resolve, and where
    warnings and ignored directives are reported."""

    warnings: list[str]

    def ignore(self, node: Node, rule: StockRule, name: str | None = None) -> None: ...

    def conf_relative(self, path: str) -> str: ...

    def prefix_path(self, path: str) -> str: ...


Setter = Callable[[SetterContext, Node, Level], None]

SSL_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_NEXT_UPSTREAM = (
    "error", "timeout", "invalid_header", "http_500", "http_502", "http_503",
    "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off",
)  # fmt: skip


def invalid_value(node: Node) -> ReadingError:
    # what nginx prints when a *_slot setter returns "invalid value"
    return node.error(f'"{node.name}" directive invalid value')


def _time(node: Node, text: str, slot: TimeSlot) -> float:
    try:
        return parse_time(text, slot)
    except ValueError:
        raise invalid_value(node) from None


def _size(node: Node, text: str) -> int:
    try:
        return parse_size(text)
    except ValueError:
        raise invalid_value(node) from None


def _bitmask(node: Node, acc: list[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """ngx_conf_set_bitmask_slot: known words only, ORed within a block."""
    for value in node.args:
        if value not in allowed:
            raise node.error(f'invalid value "{value}"')
        if value not in acc:
            acc.append(value)
    return tuple(v for v in allowed if v in acc)


# -- slot setters: one stored value, nginx's generic ngx_conf_set_*_slot ------


def _proxy_msec(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.proxy[field] = _time(node, node.args[0], TimeSlot.MSEC)

    return set_


def _proxy_flag(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.proxy[field] = parse_flag(node.args[0])

    return set_


def _proxy_number(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        number = atoi(node.args[0])
        if number is None:
            raise node.error(f'"{node.name}" directive invalid number')  # ngx_conf_set_num_slot
        level.proxy[field] = number

    return set_


def _proxy_word(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.proxy[field] = node.args[0]

    return set_


def _proxy_file(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.proxy[field] = ctx.conf_relative(node.args[0])

    return set_


def _core_msec(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.core[field] = _time(node, node.args[0], TimeSlot.MSEC)

    return set_


def _core_size(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.core[field] = _size(node, node.args[0])

    return set_


def _core_word(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.core[field] = node.args[0]

    return set_


def _core_flag(field: str) -> Setter:
    def set_(ctx: SetterContext, node: Node, level: Level) -> None:
        level.core[field] = parse_flag(node.args[0])

    return set_


def _resolver(ctx: SetterContext, node: Node, level: Level) -> None:
    level.proxy["resolver"] = read_resolver(node)


# -- proxy module ---------------------------------------------------------------


def _proxy_set_header(ctx: SetterContext, node: Node, level: Level) -> None:
    level.headers.append((node.args[0], wire(node.args[1])))


def _proxy_http_version(ctx: SetterContext, node: Node, level: Level) -> None:
    if node.args[0] not in ("1.0", "1.1"):
        raise node.error(f'invalid value "{node.args[0]}"')
    level.proxy["http_version"] = node.args[0]


def _proxy_next_upstream(ctx: SetterContext, node: Node, level: Level) -> None:
    level.proxy["next_upstream"] = _bitmask(node, level.next_upstream, _NEXT_UPSTREAM)


def _proxy_redirect(ctx: SetterContext, node: Node, level: Level) -> None:
    """ngx_http_proxy_redirect() of nginx 1.22: ``off``, ``default`` (after
    this block's proxy_pass), or a pattern (``~``/``~*``: a regex) and its
    replacement; a level's lines replace the inherited ones."""
    if level.proxy.get("redirect") is False:
        raise node.error(f'"{node.name}" directive is duplicate')
    args = node.args
    if len(args) == 1:
        if args[0] == "off":
            if level.redirects:
                raise node.error(f'"{node.name}" directive is duplicate')
            level.proxy["redirect"] = False
            return
        if args[0] != "default":
            raise node.error(f'invalid parameter "{args[0]}"')
        pp = level.proxy_pass if isinstance(level, LocationBlock) else None
        if pp is not None and pp.has_variables:
            raise node.error('"proxy_redirect default" cannot be used with "proxy_pass" directive with variables')
        if pp is None or not isinstance(level, LocationBlock):
            raise node.error('"proxy_redirect default" should be placed after the "proxy_pass" directive')
        level.proxy["redirect"] = True
        level.redirects.append(default_rule(pp.url, pp.uri is not None, level.pattern))
        return
    level.proxy["redirect"] = True
    pattern, replacement = wire(args[0]), wire(args[1])
    regex = None
    if pattern.startswith("~"):
        caseless = pattern.startswith("~*")
        pattern = pattern[2:] if caseless else pattern[1:]
        why = regex_error(pattern)
        if why is not None:
            raise node.error(why)
        regex = compile_pcre(pattern, caseless)
    level.redirects.append(RedirectRule(pattern, replacement, regex))


def _proxy_header_list(field: str) -> Setter:
    """proxy_hide_header / proxy_pass_header (ngx_conf_set_str_array_slot):
    a level's lines replace the inherited list."""

    def setter(ctx: SetterContext, node: Node, level: Level) -> None:
        level.proxy[field] = (*level.proxy.get(field, ()), node.args[0])

    return setter


def _proxy_cookie(field: str) -> Setter:
    """ngx_http_proxy_cookie_domain() / _cookie_path() of nginx 1.22: ``off``,
    or a pattern (``~``: a regex; for domains always caseless, a plain one
    compared whole, any case, leading dots dropped) and its replacement."""
    domain = field == "cookie_domains"

    def setter(ctx: SetterContext, node: Node, level: Level) -> None:
        own = level.proxy.get(field)
        if own == ():  # after this block's "off"
            raise node.error(f'"{node.name}" directive is duplicate')
        args = node.args
        if len(args) == 1:
            if args[0] != "off":
                raise node.error(f'invalid parameter "{args[0]}"')
            if own:
                raise node.error(f'"{node.name}" directive is duplicate')
            level.proxy[field] = ()
            return
        pattern, replacement = wire(args[0]), wire(args[1])
        regex = None
        if pattern.startswith("~"):
            caseless = domain or pattern.startswith("~*")
            pattern = pattern[2:] if pattern.startswith("~*") and not domain else pattern[1:]
            why = regex_error(pattern)
            if why is not None:
                raise node.error(why)
            regex = compile_pcre(pattern, caseless)
        elif domain:
            pattern, replacement = pattern.removeprefix("."), replacement.removeprefix(".")
        rule = RedirectRule(pattern, replacement, regex, domain=domain and regex is None)
        level.proxy[field] = (*(own or ()), rule)

    return setter


def _proxy_cookie_flags(ctx: SetterContext, node: Node, level: Level) -> None:
    """ngx_http_proxy_cookie_flags() of nginx 1.22: ``off``, or a cookie
    (``~``: a caseless regex) and its flags, kept as written (variables are
    rendered, and unknown flags skipped, per answer)."""
    own = level.proxy.get("cookie_flags")
    args = node.args
    if not 1 <= len(args) <= 4:  # NGX_CONF_TAKE1234 (crossplane's table does not know it)
        raise node.error(f'invalid number of arguments in "{node.name}" directive')
    if own == ():  # after this block's "off"
        raise node.error(f'"{node.name}" directive is duplicate')
    if len(args) == 1:
        if args[0] != "off":
            raise node.error(f'invalid parameter "{args[0]}"')
        if own:
            raise node.error(f'"{node.name}" directive is duplicate')
        level.proxy["cookie_flags"] = ()
        return
    cookie, regex = wire(args[0]), None
    if cookie.startswith("~"):
        cookie = cookie[1:]
        why = regex_error(cookie)
        if why is not None:
            raise node.error(why)
        regex = compile_pcre(cookie, True)
    rule = CookieFlags(cookie, tuple(wire(a) for a in args[1:]), regex)
    level.proxy["cookie_flags"] = (*(own or ()), rule)


def _proxy_ssl_protocols(ctx: SetterContext, node: Node, level: Level) -> None:
    level.proxy["ssl_protocols"] = _bitmask(node, level.proxy_ssl_protocols, SSL_PROTOCOLS)


def _proxy_ssl_verify_depth(ctx: SetterContext, node: Node, level: Level) -> None:
    depth = atoi(node.args[0])
    if depth is None:
        raise node.error(f'"{node.name}" directive invalid number')
    level.proxy["ssl_verify_depth"] = depth


# -- access, auth, realip -------------------------------------------------------


def _access_rule(ctx: SetterContext, node: Node, level: Level) -> None:
    value = node.args[0]
    if value not in ("all", "unix:"):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise node.error(f'invalid parameter "{value}"') from None
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:  # nginx masks the address and only warns
            ctx.warnings.append(f"low address bits of {value} are meaningless in {node.source}")
    level.rules.append((node.name, value))


def _auth_basic(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["auth_basic"] = None if node.args[0] == "off" else wire(node.args[0])


def _auth_basic_user_file(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["auth_basic_user_file"] = ctx.conf_relative(node.args[0])


def _auth_request(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["auth_request"] = None if node.args[0] == "off" else node.args[0]


def _auth_request_set(ctx: SetterContext, node: Node, level: Level) -> None:
    args = node.args
    if not args[0].startswith("$"):
        raise node.error(f'invalid variable name "{args[0]}"')
    level.auth_request_set.append((args[0][1:], args[1]))


def _satisfy(ctx: SetterContext, node: Node, level: Level) -> None:
    if node.args[0] not in ("all", "any"):
        raise node.error(f'invalid value "{node.args[0]}"')
    level.core["satisfy_any"] = node.args[0] == "any"


def _set_real_ip_from(ctx: SetterContext, node: Node, level: Level) -> None:
    """ngx_http_realip_from(): ``unix:``, a CIDR (low bits warned about),
    or a name resolved now into its addresses."""
    value = node.args[0]
    found: tuple[str, ...]
    try:
        cidr, low_bits = trusted_source(value)
    except ValueError:
        try:
            infos = socket.getaddrinfo(value, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise node.error(f'host not found in set_real_ip_from "{value}"') from None
        found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    else:
        if low_bits:  # nginx masks the address and only warns
            ctx.warnings.append(f"low address bits of {value} are meaningless in {node.source}")
        found = (cidr,)
    level.core["real_ip_from"] = level.core.get("real_ip_from", ()) + found


# -- core module ----------------------------------------------------------------


def _keepalive_timeout(ctx: SetterContext, node: Node, level: Level) -> None:
    args = node.args
    timeout = _time(node, args[0], TimeSlot.MSEC)
    if len(args) > 1:  # the Keep-Alive: timeout= header value; checked, not sent
        _time(node, args[1], TimeSlot.SEC)
    if isinstance(level, LocationBlock):
        reason = "keepalive_timeout applies per server in ngxws"
        ctx.ignore(node, StockRule(Handling.IGNORED_CHANGES_BEHAVIOUR, reason))
    else:
        level.core["keepalive_timeout"] = timeout


def _large_client_header_buffers(ctx: SetterContext, node: Node, level: Level) -> None:
    count = atoi(node.args[0])
    size = _size(node, node.args[1])
    if not count or not size:
        raise invalid_value(node)
    level.core["large_client_header_buffers"] = (count, size)


def _client_body_temp_path(ctx: SetterContext, node: Node, level: Level) -> None:
    # levels (args 1..3) only shape nginx's file names; ngxws's files have none
    level.core["client_body_temp_path"] = ctx.prefix_path(node.args[0])


# -- ssl module -----------------------------------------------------------------


def _ssl_certificate(ctx: SetterContext, node: Node, level: Level) -> None:
    level.certificates.append(ctx.conf_relative(node.args[0]))
    level.certificates_written.append(node.args[0])
    level.core["ssl_certificates"] = tuple(level.certificates)
    level.core["ssl_certificates_written"] = tuple(level.certificates_written)


def _ssl_certificate_key(ctx: SetterContext, node: Node, level: Level) -> None:
    level.certificate_keys.append(ctx.conf_relative(node.args[0]))
    level.core["ssl_certificate_keys"] = tuple(level.certificate_keys)


def _ssl_protocols(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core["ssl_protocols"] = _bitmask(node, level.ssl_protocols, SSL_PROTOCOLS)


def _ssl(ctx: SetterContext, node: Node, level: Level) -> None:
    # ngx_http_ssl_enable(): the flag, its file:line, and a warning
    # whatever the value
    level.core["ssl_on"] = parse_flag(node.args[0])
    level.core["ssl_on_source"] = node.source
    ctx.warnings.append(
        'the "ssl" directive is deprecated, use the "listen ... ssl" directive '
        f"instead in {node.source}"
    )


# ngx_http_ssl_module's client-certificate slots: an enum, a number, a flag,
# or a file (relative to the conf prefix, as ngx_conf_full_name(cycle, name, 1))


def _ssl_verify_client(ctx: SetterContext, node: Node, level: Level) -> None:
    arg = node.args[0]
    if arg.lower() not in VERIFY_CLIENT:
        raise node.error(f'invalid value "{arg}"')
    level.core[node.name] = arg.lower()


def _ssl_verify_depth(ctx: SetterContext, node: Node, level: Level) -> None:
    depth = atoi(node.args[0])
    if depth is None:
        raise invalid_value(node)
    level.core[node.name] = depth


def _core_file(ctx: SetterContext, node: Node, level: Level) -> None:
    level.core[node.name] = ctx.conf_relative(node.args[0])


SETTERS: Mapping[str, Setter] = {
    # proxy module
    "proxy_set_header": _proxy_set_header,
    "proxy_connect_timeout": _proxy_msec("connect_timeout"),
    "proxy_read_timeout": _proxy_msec("read_timeout"),
    "proxy_send_timeout": _proxy_msec("send_timeout"),
    "proxy_pass_request_headers": _proxy_flag("pass_request_headers"),
    "proxy_pass_request_body": _proxy_flag("pass_request_body"),
    "proxy_buffering": _proxy_flag("buffering"),
    "proxy_request_buffering": _proxy_flag("request_buffering"),
    "proxy_ssl_server_name": _proxy_flag("ssl_server_name"),
    "proxy_ssl_verify": _proxy_flag("ssl_verify"),
    "proxy_http_version": _proxy_http_version,
    "proxy_next_upstream": _proxy_next_upstream,
    "proxy_next_upstream_tries": _proxy_number("next_upstream_tries"),
    "proxy_method": _proxy_word("method"),
    "proxy_set_body": _proxy_word("set_body"),
    "proxy_redirect": _proxy_redirect,
    "proxy_cookie_domain": _proxy_cookie("cookie_domains"),
    "proxy_cookie_path": _proxy_cookie("cookie_paths"),
    "proxy_cookie_flags": _proxy_cookie_flags,
    "proxy_intercept_errors": _proxy_flag("intercept_errors"),
    "proxy_ignore_headers": set_ignore_headers,  # X-Accel-Redirect (config/ignore_headers.py)
    "proxy_hide_header": _proxy_header_list("hide_headers"),
    "proxy_pass_header": _proxy_header_list("pass_headers"),
    "proxy_ssl_protocols": _proxy_ssl_protocols,
    "proxy_ssl_name": _proxy_word("ssl_name"),
    "proxy_ssl_ciphers": _proxy_word("ssl_ciphers"),
    "proxy_ssl_verify_depth": _proxy_ssl_verify_depth,
    "proxy_ssl_trusted_certificate": _proxy_file("ssl_trusted_certificate"),
    "proxy_ssl_certificate": _proxy_file("ssl_certificate"),
    "proxy_ssl_certificate_key": _proxy_file("ssl_certificate_key"),
    # access, auth_basic, auth_request, realip
    "allow": _access_rule,
    "deny": _access_rule,
    "auth_basic": _auth_basic,
    "auth_basic_user_file": _auth_basic_user_file,
    "auth_request": _auth_request,
    "auth_request_set": _auth_request_set,
    "satisfy": _satisfy,
    "set_real_ip_from": _set_real_ip_from,
    "real_ip_header": _core_word("real_ip_header"),
    "real_ip_recursive": _core_flag("real_ip_recursive"),
    # core module
    "client_max_body_size": _core_size("client_max_body_size"),
    "default_type": _core_word("default_type"),
    "keepalive_timeout": _keepalive_timeout,
    "client_header_timeout": _core_msec("client_header_timeout"),
    "large_client_header_buffers": _large_client_header_buffers,
    "send_timeout": _core_msec("send_timeout"),
    "resolver": _resolver,  # read by proxy_pass with variables (ngxws.proxy.resolver)
    "resolver_timeout": _proxy_msec("resolver_timeout"),
    "client_body_timeout": _core_msec("client_body_timeout"),
    "client_body_buffer_size": _core_size("client_body_buffer_size"),
    "client_body_temp_path": _client_body_temp_path,
    # ssl and http2
    "ssl_certificate": _ssl_certificate,
    "ssl_certificate_key": _ssl_certificate_key,
    "ssl_protocols": _ssl_protocols,
    "ssl_ciphers": _core_word("ssl_ciphers"),
    "http2": _core_flag("http2"),
    "ssl": _ssl,
    "ssl_verify_client": _ssl_verify_client,
    "ssl_verify_depth": _ssl_verify_depth,
    "ssl_client_certificate": _core_file,
    "ssl_trusted_certificate": _core_file,
    "ssl_crl": _core_file,
    "ssl_reject_handshake": _core_flag("ssl_reject_handshake"),
    **HEADER_SETTERS,  # add_header, expires, charset...
    **GZIP_SETTERS,  # gzip, gzip_types... (config/gzip.py)
    "absolute_redirect": _core_flag("absolute_redirect"),
    "recursive_error_pages": _core_flag("recursive_error_pages"),
    "port_in_redirect": _core_flag("port_in_redirect"),
    "server_name_in_redirect": _core_flag("server_name_in_redirect"),
}
