"""The file system as the pure rewrite engine sees it (ngxws.http.rewrite's
injected ``Stat``): what ``if (-f ...)`` and its kin ask."""

from __future__ import annotations

import os


def stat_file(path: str) -> os.stat_result | None:
    """nginx stats without a cache (no open_file_cache in ngxws)."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None
