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
from dataclasses import dataclass

from ngxws.config.model import ProxyPass, ProxySettings
from ngxws.http.request import RequestHead

# nginx's ngx_http_proxy_headers: defaults, empty ones only hide the client's.
_DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Host", "$proxy_host"),
    ("Connection", "close"),
    ("Content-Length", "$proxy_internal_body_length"),
    ("Transfer-Encoding", "$proxy_internal_chunked"),
    ("TE", ""),
    ("Keep-Alive", ""),
    ("Expect", ""),
    ("Upgrade", ""),
)

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
    captures: tuple[str, ...] = ()

    def get(self, name: str) -> str:
        """One variable's value; unknown variables render empty (as nginx
        would refuse them at start-up, the loader reports them)."""
        h = self.head
        if name.isdigit():
            i = int(name)
            if i == 0:
                return h.path
            return self.captures[i - 1] if i <= len(self.captures) else ""
        if name.startswith("http_"):
            return h.header(name[5:].replace("_", "-")) or ""
        if name == "host":
            host = h.host
            if host:
                from ngxws.routing.servers import normalise_host

                return normalise_host(host)
            return self.server_name
        simple = {
            "proxy_host": self.proxy_host,
            "remote_addr": self.remote_addr,
            "remote_port": str(self.remote_port),
            "server_addr": self.server_addr,
            "server_port": str(self.server_port),
            "server_name": self.server_name,
            "scheme": self.scheme,
            "request_uri": h.target,
            "uri": h.path,
            "document_uri": h.path,
            "args": h.args or "",
            "query_string": h.args or "",
            "is_args": "?" if h.args is not None else "",
            "request_method": h.method,
            "server_protocol": f"HTTP/{h.version}",
            "remote_user": self.remote_user,
            "proxy_internal_body_length": ""
            if self.body_length is None
            else str(self.body_length),
            "proxy_internal_chunked": "",
        }
        if name in simple:
            return simple[name]
        if name == "proxy_add_x_forwarded_for":
            prior = h.header("x-forwarded-for")
            return f"{prior}, {self.remote_addr}" if prior else self.remote_addr
        if name.startswith("arg_"):
            for pair in (h.args or "").split("&"):
                k, _, v = pair.partition("=")
                if k == name[4:]:
                    return v
            return ""
        return ""

    def render(self, template: str) -> str:
        if "$" not in template:
            return template
        return _VAR.sub(lambda m: self.get(m.group(1) or m.group(2)), template)


def proxy_uri(pp: ProxyPass, location_pattern: str, location_modifier: str, v: RequestVariables) -> str:
    """The URI nginx puts on the upstream request line.

    - ``proxy_pass`` without a URI part: the client's URI unchanged (as it
      came, i.e. ``$request_uri``, when nothing rewrote it);
    - with a URI part: the part of the normalised URI that matched a prefix
      location is replaced by it (and the query string kept);
    - with variables: the URL as rendered is used as is.
    """
    h = v.head
    if pp.has_variables:
        rendered = v.render(pp.url)
        rest = rendered.split("://", 1)[-1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else h.target
    if pp.uri is None:
        return h.target
    if location_modifier in ("", "^~", "=") and h.path.startswith(location_pattern):
        from urllib.parse import quote

        tail = h.path[len(location_pattern) :]
        uri = pp.uri + quote(tail, safe="/:@!$&'()*+,;=-._~%")
    else:
        uri = pp.uri
    if h.args is not None:
        uri += "?" + h.args
    return uri


def build_upstream_head(
    uri: str,
    settings: ProxySettings,
    v: RequestVariables,
) -> bytes:
    """Serialise the upstream request head (no body)."""
    h = v.head
    lines = [f"{h.method} {uri} HTTP/{settings.http_version}"]
    named: set[str] = set()
    merged = list(settings.set_headers)
    for name, _ in merged:
        named.add(name.lower())
    for name, value in _DEFAULT_HEADERS:
        if name.lower() not in named:
            merged.append((name, value))
            named.add(name.lower())
    for name, value in merged:
        rendered = v.render(value)
        if rendered:
            lines.append(f"{name}: {rendered}")
    if settings.pass_request_headers:
        for name, value in h.headers:
            if name.lower() not in named:
                lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def proxy_host_of(pp: ProxyPass) -> str:
    """``$proxy_host``: the upstream block's name, or host[:port] with the port
    omitted when it is the scheme's default."""
    if pp.upstream is not None:
        return pp.host
    default = 443 if pp.scheme == "https" else 80
    return pp.host if pp.port == default else f"{pp.host}:{pp.port}"
