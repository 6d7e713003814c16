"""``escape=`` of ``ws_log_format``: nginx's ``log_format ... escape=``.

Applied to the value of every variable in a line, never to the template's
own text, as nginx does (ngx_http_log_escape / ngx_escape_json):

- ``default``: ``"``, ``\\``, bytes below 0x20 and from 0x7f up become ``\\xXX``;
- ``json``: ``"`` and ``\\`` are backslashed, ``\\n \\r \\t \\b \\f`` written
  so, other bytes below 0x20 as ``\\u00XX`` (UTF-8 passes through);
- ``none``: values as they are.

A ``ws_log_format`` without ``escape=`` writes values as they are, as the
module does (it has no such parameter): that is ngxws's default, unlike
nginx's access log whose default is ``default``.
"""

from __future__ import annotations

MODES = ("default", "json", "none")

_JSON_SHORT = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x08: "\\b", 0x0C: "\\f"}


def escape(value: str, mode: str) -> str:
    """``value`` (a str that may hold surrogate-escaped raw bytes) escaped by ``mode``."""
    if not mode or mode == "none":
        return value
    if mode == "json":
        if value.isprintable() and '"' not in value and "\\" not in value:
            return value
        out = []
        for ch in value:
            o = ord(ch)
            if o in _JSON_SHORT:
                out.append(_JSON_SHORT[o])
            elif o < 0x20:
                out.append(f"\\u{o:04x}")
            else:
                out.append(ch)
        return "".join(out)
    raw = value.encode("utf-8", "surrogateescape")
    if all(0x20 <= b < 0x7F and b not in (0x22, 0x5C) for b in raw):
        return value
    return "".join(
        f"\\x{b:02X}" if b < 0x20 or b >= 0x7F or b in (0x22, 0x5C) else chr(b) for b in raw
    )
