"""nginx's regexes (PCRE) read by Python's ``re``: one converter for every
regex a config holds (locations, server names, map keys, if/rewrite,
proxy_redirect and proxy_cookie_* rules)."""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["compile_pcre"]

_PCRE_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")


@lru_cache(maxsize=1024)
def compile_pcre(pattern: str, caseless: bool = False) -> re.Pattern[str]:
    """nginx regexes are PCRE; Python's ``re`` reads real configs' ones once
    PCRE's ``(?<name>...)`` is spelled ``(?P<name>...)``."""
    return re.compile(_PCRE_NAMED_GROUP.sub("(?P<", pattern), re.IGNORECASE if caseless else 0)
