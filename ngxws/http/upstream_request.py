"""The request head nginx's proxy module sends upstream (ngx_http_proxy_create_request).

Order and content, as nginx builds them:

1. ``METHOD URI HTTP/1.0`` (or ``proxy_http_version``), where URI follows
   the proxy_pass replacement rules (``proxy_uri``).
2. The ``proxy_set_header`` list in effect, then nginx's defaults that the
   list did not name: ``Host: $proxy_host``, ``Connection: close``, and the
   body length.  A header whose value renders empty is not sent.
3. The client's headers, minus every name the list above mentions and minus
   what nginx never forwards (``Connection``, ``Keep-Alive``, ``Upgrade``,
   ``TE``, ``Expect``, ``Transfer-Encoding``, ``Content-Length``, ``Host``).

Request bodies are buffered (nginx's ``proxy_request_buffering on``) and
sent with ``Content-Length``.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from ngxws.client_certs import ConnectionTLS, ssl_variable
from ngxws.config.model import ProxyPass, ProxySettings
from ngxws.http.maps import CompiledMap
from ngxws.http.prepared_head import prepared
from ngxws.http.realip import ClientAddress
from ngxws.http.request import RequestHead
from ngxws.http.variables import other_variable
from ngxws.limits.state import RequestLimits
from ngxws.routing.servers import normalise_host


def _request_id() -> str:
    return secrets.token_hex(16)  # $request_id: 16 random bytes in hex


_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class RequestVariables:
    """What nginx variables in ``proxy_set_header`` and ``proxy_pass`` read."""

    head: RequestHead
    remote_addr: str
    remote_port: int
    server_addr: str
    server_port: int
    server_name: str
    scheme: str = "http"
    proxy_host: str = ""
    remote_user: str = ""
    body_length: int | None = None
    chunked: bool = False  # a streamed chunked body goes upstream chunked
    captures: tuple[str, ...] = ()
    maps: Mapping[str, CompiledMap] = field(default_factory=dict)
    named: Mapping[str, str] = field(default_factory=dict)  # (?<name>...) captures
    tls: ConnectionTLS | None = None  # $ssl_* (empty on a plain connection)
    # variables auth_request_set gave values (they survive internal redirects)
    auth_set: Mapping[str, str] = field(default_factory=dict)
    # the response of the upstream the (sub)request spoke to, for
    # $upstream_status and $upstream_http_NAME
    upstream_status: str = ""
    upstream_headers: tuple[tuple[str, str], ...] = ()
    upstream_addr: str = ""  # $upstream_addr: the peer the request reached
    # $status (ngx_http_variable_status): nginx's err_status, else the status
    # of the response being made; 0 ("000") before one is set
    status: int = 0
    limits: RequestLimits | None = None  # $limit_req_status, $limit_conn_status
    # $realip_remote_*, $proxy_protocol_* (the connection's peer and PROXY preface)
    client_address: ClientAddress | None = None
    # ``set $name`` values of this request (ngx_http_rewrite_module)
    variables: dict[str, str] = field(default_factory=dict)
    # connection facts and injected clock/randomness (ngxws.http.variables)
    connection: int = 0
    connection_requests: int = 0
    proxy_port: str = ""
    request_id: str = ""
    clock: Callable[[], float] = time.time
    random_hex: Callable[[], str] = _request_id
    # stub_status's counters, read when a $connections_* variable is
    # (SharedCounters.stub_totals: accepted ... waiting)
    stub: Callable[[], tuple[int, ...]] | None = None
    _depth: int = 0

    def get(self, name: str) -> str:
        """One variable's value; unknown variables render empty (as nginx
        would refuse them at start-up, the loader reports them)."""
        h = self.head
        if name.isdigit():
            i = int(name)
            if i == 0:
                return h.path
            return self.captures[i - 1] if i <= len(self.captures) else ""
        if name in self.variables:
            return self.variables[name]
        if name.startswith("http_"):
            return h.header(name[5:].replace("_", "-")) or ""
        if name == "host":
            host = h.uri_host or h.host
            if host:
                return normalise_host(host)
            return self.server_name
        if name in self.named:
            return self.named[name]
        if name in self.auth_set:
            return self.auth_set[name]
        if name.startswith("upstream_"):
            return self._upstream(name[9:])
        if name == "binary_remote_addr":
            return binary_addr(self.remote_addr)
        if name in ("limit_req_status", "limit_conn_status"):  # empty until the phase ran
            return "" if self.limits is None else str(getattr(self.limits, name[6:]))
        compiled = self.maps.get(name)
        if compiled is not None:
            return self._map(compiled)
        if name.startswith("ssl_"):
            return ssl_variable(self.tls, name)
        if name.startswith(("realip_", "proxy_protocol_")) and self.client_address is not None:
            return self.client_address.variable(name) or ""
        simple = _SIMPLE.get(name)
        if simple is not None:
            return simple(self)
        if name == "proxy_add_x_forwarded_for":
            # every X-Forwarded-For line, joined (nginx's headers_in.x_forwarded_for array)
            prior = [v for k, v in h.headers if k.lower() == "x-forwarded-for"]
            return ", ".join([*prior, self.remote_addr])
        if name.startswith("arg_"):
            for pair in (h.args or "").split("&"):
                k, _, v = pair.partition("=")
                if k.lower() == name[4:].lower():  # ngx_http_arg(): no regard to case
                    return v
            return ""
        return other_variable(self, name)

    def _upstream(self, name: str) -> str:
        if name == "status":
            return self.upstream_status
        if name == "addr":
            return self.upstream_addr
        if name.startswith("http_"):
            wanted = name[5:].replace("_", "-").lower()
            for key, value in self.upstream_headers:
                if key.lower() == wanted:
                    return value
        return ""

    def _map(self, compiled: CompiledMap) -> str:
        if self._depth > 8:  # a map whose value names itself: nginx logs a cycle
            return ""
        self._depth += 1
        try:
            value, captures, named = compiled.lookup(self.render(compiled.expression))
            if "$" not in value:
                return value
            if not captures:
                return self.render(value)
            saved, saved_named = self.captures, self.named
            self.captures, self.named = captures, {**saved_named, **named}
            try:
                return self.render(value)
            finally:
                self.captures, self.named = saved, saved_named
        finally:
            self._depth -= 1

    def render(self, template: str) -> str:
        if "$" not in template:
            return template
        return _VAR.sub(lambda m: self.get(m.group(1) or m.group(2)), template)


# Variables that are one field of the request or its head, by name (looked up
# after the ones above, as nginx's own variables come after set/map ones).
# A table of functions, not a dict built per call: ``get`` runs for every
# variable of every upstream head.
_SIMPLE: dict[str, Callable[[RequestVariables], str]] = {
    "proxy_host": lambda v: v.proxy_host,
    "remote_addr": lambda v: v.remote_addr,
    "remote_port": lambda v: str(v.remote_port) if v.remote_port else "",  # unix:, realip
    "server_addr": lambda v: v.server_addr,
    "server_port": lambda v: str(v.server_port),
    "server_name": lambda v: v.server_name,
    "scheme": lambda v: v.scheme,
    "request_uri": lambda v: v.head.request_uri if v.head.client_uri is None else v.head.client_uri,
    "uri": lambda v: v.head.path,
    "document_uri": lambda v: v.head.path,
    "args": lambda v: v.head.args or "",
    "query_string": lambda v: v.head.args or "",
    "is_args": lambda v: "?" if v.head.args else "",
    "request_method": lambda v: v.head.method,
    "server_protocol": lambda v: f"HTTP/{v.head.version}",
    "remote_user": lambda v: v.remote_user,
    "proxy_internal_body_length": lambda v: "" if v.body_length is None else str(v.body_length),
    "proxy_internal_chunked": lambda v: "chunked" if v.chunked else "",
    # ngx_http_stub_status_variable()
    "connections_active": lambda v: _stub(v, 3),
    "connections_reading": lambda v: _stub(v, 4),
    "connections_writing": lambda v: _stub(v, 5),
    "connections_waiting": lambda v: _stub(v, 6),
}


def _stub(v: RequestVariables, field: int) -> str:
    return "0" if v.stub is None else str(v.stub()[field])


def binary_addr(addr: str) -> str:
    """``$binary_remote_addr``: the address's 4 or 16 bytes (one character
    per byte); for a unix socket, its text (``unix:``), as nginx gives."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        return socket.inet_pton(family, addr.split("%", 1)[0]).decode("latin-1")
    except OSError:
        return addr


def proxy_uri(pp: ProxyPass, location_pattern: str, location_modifier: str, v: RequestVariables) -> str:
    """The URI nginx puts on the upstream request line (ngx_http_proxy_create_request).

    - ``proxy_pass`` without a URI part: the client's URI unchanged (as it
      came, i.e. ``$request_uri``, when nothing rewrote it);
    - with a URI part: the part of the normalised URI that matched a prefix
      location is replaced by it (and the query string kept);
    - with variables and a URI part: the rendered URI as is (no args added);
      with variables and no URI part: as without a URI part.
    """
    h = v.head
    if pp.has_variables:
        target = split_proxy_url(v.render(pp.url))
        return target[3] if target is not None and target[3] else h.request_uri
    return proxy_uri_of(pp, location_pattern, location_modifier, h)


def proxy_uri_of(pp: ProxyPass, location_pattern: str, location_modifier: str, h: RequestHead) -> str:
    """``proxy_uri`` of a ``proxy_pass`` without variables: the head alone decides."""
    if pp.uri is None:
        return h.request_uri
    if location_modifier in ("", "^~", "=") and h.path.startswith(location_pattern):
        tail = h.path[len(location_pattern) :]
        uri = pp.uri + escape_uri(tail)
    else:
        uri = pp.uri
    if h.args is not None:
        uri += "?" + h.args
    return uri


def escape_uri(path: str) -> str:
    """ngx_escape_uri(NGX_ESCAPE_URI): what nginx re-escapes in a decoded URI."""
    return quote(path, safe="/:@!$&'()*+,;=-._~%")


def split_proxy_url(url: str) -> tuple[str, str, int, str | None] | None:
    """A rendered ``proxy_pass`` URL -> (scheme, host, port, uri or None);
    None when it is not ``http(s)://``.  ``host`` may be an upstream's name."""
    lower = url.lower()
    if lower.startswith("http://"):
        scheme, rest, port = "http", url[7:], 80
    elif lower.startswith("https://"):
        scheme, rest, port = "https", url[8:], 443
    else:
        return None
    slash = rest.find("/")
    hostport, uri = (rest[:slash], rest[slash:]) if slash >= 0 else (rest, None)
    host = hostport
    if hostport.startswith("["):
        end = hostport.find("]")
        host = hostport[1:end]
        if hostport[end + 1 : end + 2] == ":" and hostport[end + 2 :].isdigit():
            port = int(hostport[end + 2 :])
    elif ":" in hostport:
        name, _, digits = hostport.rpartition(":")
        if digits.isdigit():
            host, port = name, int(digits)
    return scheme, host, port, uri


def upstream_method(settings: ProxySettings, v: RequestVariables) -> str:
    """The upstream request's method: ``proxy_method`` rendered, else the
    client's (ngx_http_proxy_create_request)."""
    return v.head.method if settings.method is None else v.render(settings.method)


def expects_no_body(settings: ProxySettings, v: RequestVariables) -> bool:
    """The upstream answers a HEAD (any case: ngx_http_proxy_create_request's
    ctx->head), so its response has no body whatever it declares."""
    return upstream_method(settings, v).upper() == "HEAD"


def build_upstream_head(
    uri: str,
    settings: ProxySettings,
    v: RequestVariables,
) -> bytes:
    """Serialise the upstream request head: the settings' lines prepared
    once (ngxws.http.prepared_head), the variables filled in.  With
    ``proxy_set_body`` its rendered text follows the head, in the same
    buffer, and is the body's length ($proxy_internal_body_length, never
    chunked: ngx_http_proxy_create_request evaluates it first); the
    client's body is not sent (``sends_client_body``)."""
    p = prepared(settings)
    h = v.head
    body = b""
    if settings.set_body is not None:
        body = v.render(settings.set_body).encode("latin-1", "replace")
        v.body_length, v.chunked = len(body), False
    out = [f"{upstream_method(settings, v)} {uri} HTTP/{p.http_version}"]
    for step in p.steps:
        if isinstance(step, str):
            out.append(step)  # constant lines
            continue
        prefix, template, var = step
        rendered = v.get(var) if var else v.render(template)
        if rendered:  # a header whose value renders empty is not sent
            out.append(prefix)
            out.append(rendered)
    p.client_lines(h.headers, out)
    out.append("\r\n\r\n")
    return "".join(out).encode("latin-1", "replace") + body


def sends_client_body(settings: ProxySettings) -> bool:
    """Whether the client's body goes upstream after the head: not with
    ``proxy_pass_request_body off`` nor with ``proxy_set_body`` (its text
    replaces it; the client's is still read, and nginx then reads it whole
    first, whatever ``proxy_request_buffering`` says)."""
    return settings.pass_request_body and settings.set_body is None


def proxy_host_of(pp: ProxyPass) -> str:
    """``$proxy_host``: the upstream block's name, or host[:port] with the port
    omitted when it is the scheme's default."""
    if pp.unix is not None:
        return "localhost"  # nginx's name for a unix: upstream
    if pp.upstream is not None:
        return pp.host
    default = 443 if pp.scheme == "https" else 80
    return pp.host if pp.port == default else f"{pp.host}:{pp.port}"
