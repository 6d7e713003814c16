"""The ``ws_stat`` location's live dashboard: one self-contained HTML page
(``dashboard.html``: inline CSS, hand-written canvas JS, no CDN, nothing
fetched but the same location's ``?format=json``) for a browser.

Who gets it (pure, so the rule has table tests): ``?format=html``, or no
``format=`` argument and an ``Accept`` header naming ``text/html`` with a
non-zero quality -- what browsers send for a navigation.  ``Accept: */*``
(curl, wget, the module's users' scripts, Prometheus' scraper) names no
``text/html`` and keeps the module's v1 text page byte for byte, as does a
request with no ``Accept`` at all.  An explicit ``format=`` always wins
over ``Accept`` (``?format=json`` from the page itself, whatever the
browser adds).
"""

from __future__ import annotations

from importlib.resources import files

HTML_CONTENT_TYPE = "text/html; charset=utf-8"

# read once at import: the page is static, the numbers come from the JSON it polls
PAGE: bytes = files("ngxws.sinks").joinpath("dashboard.html").read_bytes()


def format_arg(args: str | None) -> str | None:
    """The first ``format=`` argument's value (nginx's ``$arg_format``), None without one."""
    for arg in (args or "").split("&"):
        name, _, value = arg.partition("=")
        if name == "format":
            return value
    return None


def accepts_html(accept: str | None) -> bool:
    """Whether ``accept`` names ``text/html`` itself (not through ``*/*`` or
    ``text/*``) with a quality above 0 (RFC 9110 12.5.1)."""
    for media_range in (accept or "").split(","):
        kind, *params = (p.strip() for p in media_range.split(";"))
        if kind.lower() != "text/html":
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a malformed q: not a request for HTML
        if quality > 0:
            return True
    return False


def wants_html(args: str | None, accept: str | None) -> bool:
    """The dashboard rather than another format of the page."""
    fmt = format_arg(args)
    if fmt is not None:
        return fmt == "html"
    return accepts_html(accept)
