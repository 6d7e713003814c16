"""``proxy_redirect``, ``proxy_cookie_domain`` and ``proxy_cookie_path`` as
configured: their rules (ngx_http_proxy_redirect, _cookie_domain,
_cookie_path); ngxws.http.proxy_redirect applies them to an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CookieFlags", "RedirectRule", "default_rule"]


@dataclass(frozen=True)
class RedirectRule:
    """One ``proxy_redirect`` line: ``pattern`` (``regex`` for ``~``/``~*``)
    and ``replacement``, both with their ``$variables`` kept."""

    pattern: str
    replacement: str
    regex: re.Pattern[str] | None = None
    # proxy_cookie_domain's plain rule (ngx_http_proxy_rewrite_domain_handler):
    # the whole value, a leading "." aside, equal to the pattern in any case
    domain: bool = False


@dataclass(frozen=True)
class CookieFlags:
    """One ``proxy_cookie_flags`` line: the cookie's name (``regex`` for
    ``~``, always caseless; else compared whole in any case, ``$variables``
    kept) and its flags as written (rendered per answer:
    ngx_http_proxy_cookie_flags)."""

    cookie: str
    flags: tuple[str, ...]
    regex: re.Pattern[str] | None = None


def default_rule(url: str, has_uri: bool, location: str) -> RedirectRule:
    """``proxy_redirect default`` (also the implicit one): the proxy_pass URL
    as written for the location's name, or URL + ``/`` for ``/`` when the
    URL has no URI part (ngx_http_proxy_redirect / _merge_loc_conf)."""
    if has_uri:
        return RedirectRule(url, location)
    return RedirectRule(url + "/", "/")
