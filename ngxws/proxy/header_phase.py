"""Where the client connection runs the headers filter (``add_header``,
``expires``): one call per response head, with the location's settings and
the request's variables (ngx_http_headers_filter runs for the main request's
every response: static, ``return``, error pages, redirects, proxied)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ngxws.config.headers import HeadersConf
from ngxws.http.headers_filter import apply_headers, labelled
from ngxws.http.proxy_redirect import refresh_url_at, rewrite_cookie, rewrite_redirect
from ngxws.http.request import RequestHead
from ngxws.proxy.upstream_response import hidden_headers

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.proxy.context import RequestIO

__all__ = ["ProxiedHeaders", "filtered", "typed"]


def filtered(
    client: RequestIO,
    loc: Location | None,
    server: Server,
    head: RequestHead,
    status: int,
    headers: Sequence[tuple[str, str]],
    *,
    proxied: bool = False,
) -> list[tuple[str, str]]:
    """``headers`` as the headers filter leaves them for ``status``
    (``proxied``: an upstream's, whose Last-Modified is a list line)."""
    if loc is None or not loc.headers.active:
        return list(headers)
    v = client.variables(head, server, ())
    v.status = status  # $status: the response being sent (ngx_http_variable_status)
    return apply_headers(loc.headers, status, headers, v.render, slot_last_modified=not proxied)


def typed(loc: Location | None, status: int, content_type: str | None) -> str | None:
    """The Content-Type of an answer ngxws writes itself, labelled by ``charset``."""
    return content_type if loc is None else labelled(loc.headers, status, content_type)


def charset_of(loc: Location | None, status: int) -> str | None:
    """The charset nginx's own error page (text/html) is labelled with."""
    label = typed(loc, status, "text/html")
    return None if label is None or label == "text/html" else label.rpartition("=")[2]


def redirect_location(
    client: RequestIO, head: RequestHead, server: Server, loc: Location | None, path: str
) -> str:
    """A Location nginx generates from a path (the directory slash, the
    auto-redirect, ``return 301 /x``), as ngx_http_header_filter() completes
    it: relative with ``absolute_redirect off``; else the Host (the first
    server_name with ``server_name_in_redirect on``) and, with
    ``port_in_redirect on``, the local port when it is not the scheme's."""
    conf = loc.headers if loc is not None else HeadersConf()
    if not conf.absolute_redirect:
        return path
    if conf.server_name_in_redirect:
        host = server.server_names[0] if server.server_names else ""
    else:
        # no Host (HTTP/1.0): the local address, not a server_name
        host = head.uri_host or head.host or client.server_addr
    if ":" in host and not host.endswith("]"):
        host = host.rsplit(":", 1)[0]
    default = 443 if client.scheme == "https" else 80
    port = "" if not conf.port_in_redirect or client.server_port == default else f":{client.server_port}"
    return f"{client.scheme}://{host}{port}{path}"


class ProxiedHeaders:
    """The filters a proxied answer's headers go through: ``proxy_redirect``
    (ngx_http_upstream_rewrite_location / _refresh), then the headers filter."""

    def __init__(self, client: RequestIO, loc: Location, server: Server, head: RequestHead) -> None:
        self.client, self.loc, self.server, self.head = client, loc, server, head

    def rewrite(self, headers: list[tuple[str, str]]) -> tuple[str, str] | None:
        """Rewrite Location and Refresh in place by the location's
        ``proxy_redirect`` rules, and Set-Cookie's domain, path and flags by
        its ``proxy_cookie_domain`` / ``_path`` / ``_flags``;
        returns the Location nginx's header filter completes (a rewritten
        path, ``absolute_redirect on``): it is written in its own slot."""
        proxy = self.loc.proxy
        rules = proxy.redirects
        if not (rules or proxy.cookie_domains or proxy.cookie_paths or proxy.cookie_flags):
            return None
        v = self.client.variables(self.head, self.server, ())

        def render(template: str, captures: tuple[str, ...]) -> str:
            saved, v.captures = v.captures, captures or v.captures
            try:
                return v.render(template)
            finally:
                v.captures = saved

        completed = None
        for i, (name, value) in enumerate(headers):
            low = name.lower()
            if low == "set-cookie":
                cookie = rewrite_cookie(value, proxy.cookie_domains, proxy.cookie_paths, render, proxy.cookie_flags)
                if cookie is not None:
                    headers[i] = (name, cookie)
                continue
            if not rules:
                continue
            if low == "location":
                new = rewrite_redirect(rules, value, render)
                if new is None:
                    continue
                if new.startswith("/"):
                    full = redirect_location(self.client, self.head, self.server, self.loc, new)
                    if full != new:
                        headers[i] = completed = (name, full)
                        continue
                headers[i] = (name, new)
            elif low == "refresh":
                at = refresh_url_at(value)
                new = rewrite_redirect(rules, value, render, at) if at is not None else None
                if new is not None:
                    headers[i] = (name, new)
        return completed

    def hidden(self) -> frozenset[str]:
        """The upstream headers not passed on (proxy_hide_header / proxy_pass_header)."""
        proxy = self.loc.proxy
        return hidden_headers(proxy.hide_headers, proxy.pass_headers)

    def filter(self, status: int, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return filtered(self.client, self.loc, self.server, self.head, status, headers, proxied=True)
