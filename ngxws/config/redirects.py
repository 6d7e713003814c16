"""``proxy_redirect`` as configured: its rules (ngx_http_proxy_redirect);
ngxws.http.proxy_redirect applies them to an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RedirectRule", "default_rule"]


@dataclass(frozen=True)
class RedirectRule:
    """One ``proxy_redirect`` line: ``pattern`` (``regex`` for ``~``/``~*``)
    and ``replacement``, both with their ``$variables`` kept."""

    pattern: str
    replacement: str
    regex: re.Pattern[str] | None = None


def default_rule(url: str, has_uri: bool, location: str) -> RedirectRule:
    """``proxy_redirect default`` (also the implicit one): the proxy_pass URL
    as written for the location's name, or URL + ``/`` for ``/`` when the
    URL has no URI part (ngx_http_proxy_redirect / _merge_loc_conf)."""
    if has_uri:
        return RedirectRule(url, location)
    return RedirectRule(url + "/", "/")
