"""The upstream request head, prepared once per ``ProxySettings``.

``ngx_http_proxy_create_request`` sends, after the request line, the
``proxy_set_header`` list in effect merged with nginx's defaults, then the
client's headers minus every name that list mentions.  nginx compiles that
list per location at configuration time (``ngx_http_proxy_init_headers``:
constant lines are copied, only the variables run per request).  Here the
same split is made the first time a settings object is used: lines whose
value has no ``$`` are one constant text, a value that is exactly one
``$variable`` is looked up directly, and anything else is rendered as
before.  The output is the very bytes the whole-head rendering gave
(tests/test_prepared_head.py compares them over many configs and requests).
"""

from __future__ import annotations

import re

from ngxws.config.memo import PerObject
from ngxws.config.model import ProxySettings

# nginx's ngx_http_proxy_headers: defaults, empty ones only hide the client's.
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Host", "$proxy_host"),
    ("Connection", "close"),
    ("Content-Length", "$proxy_internal_body_length"),
    ("Transfer-Encoding", "$proxy_internal_chunked"),
    ("TE", ""),
    ("Keep-Alive", ""),
    ("Expect", ""),
    ("Upgrade", ""),
)

# the variable syntax RequestVariables.render reads
_ONE_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

# a line to fill per request: (text before the value, template, variable name or "")
_Slot = tuple[str, str, str]


class PreparedHead:
    """One settings object's header list, split into constant text and slots."""

    __slots__ = ("http_version", "steps", "hidden", "pass_headers", "passing", "dropped")

    def __init__(self, settings: ProxySettings) -> None:
        self.http_version = settings.http_version
        named: set[str] = set()
        merged = list(settings.set_headers)
        for name, _ in merged:
            named.add(name.lower())
        for name, value in DEFAULT_HEADERS:
            if name.lower() not in named:
                merged.append((name, value))
                named.add(name.lower())
        # constant lines run together into one text between the slots
        steps: list[str | _Slot] = []
        const = ""
        for name, value in merged:
            if "$" not in value:
                if value:  # an empty value sends no line
                    const += f"\r\n{name}: {value}"
                continue
            if const:
                steps.append(const)
                const = ""
            whole = _ONE_VAR.fullmatch(value)
            var = (whole.group(1) or whole.group(2)) if whole is not None else ""
            steps.append((f"\r\n{name}: ", value, var))
        if const:
            steps.append(const)
        self.steps = tuple(steps)
        self.hidden = frozenset(named)
        self.pass_headers = settings.pass_request_headers
        # exact spellings of client header names seen passed / hidden, so
        # that most lines need no lower() (bounded: a name in neither is
        # lower-cased and looked up, as every name would be)
        self.passing: set[str] = set()
        self.dropped: set[str] = set()

    def client_lines(self, headers: list[tuple[str, str]], out: list[str]) -> None:
        """The client's header lines the list does not name, in their order
        (ngx_http_proxy_create_request), appended to ``out``; none when
        ``proxy_pass_request_headers off``."""
        if not self.pass_headers:
            return
        passing, dropped, hidden = self.passing, self.dropped, self.hidden
        for name, value in headers:
            if name in passing:
                out.append(f"\r\n{name}: {value}")
            elif name not in dropped:
                if name.lower() in hidden:
                    if len(dropped) < 64:
                        dropped.add(name)
                else:
                    if len(passing) < 64:
                        passing.add(name)
                    out.append(f"\r\n{name}: {value}")


prepared: PerObject[ProxySettings, PreparedHead] = PerObject(PreparedHead)
"""The ``PreparedHead`` of a location's settings (made on first use, kept while they live)."""
