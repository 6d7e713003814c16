"""The upstream's 101, read without the general response reader (pure).

An upstream answers a websocket upgrade with a short head:
``HTTP/1.1 101 Switching Protocols`` and a few plain ``Name: value`` lines.
``parse_101`` reads exactly that shape (``py_parse_101``: one regular
expression; the extension's ``parse_101`` the same in C); anything
else -- another status or version, a folded or empty header value, spaces
around a value, a control or non-ASCII byte, framing headers, no
``Upgrade`` header or no ``upgrade`` token in a plain ``Connection`` list
(llhttp reads such a 101 as no upgrade: "upstream sent invalid response"),
a head not whole in the first read -- returns None and the caller feeds the bytes to
``UpstreamResponse`` (httptools/llhttp, what every response went through
before), so both give the same status, reason, headers and leftover bytes
wherever this one answers (tests/test_head101.py compares them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from ngxws.ws import frames

# status line and header lines, each value without surrounding blanks
# (llhttp trims those: such heads go to it instead)
_VALUE = rb"[!-~](?:[ -~]*[!-~])?"
_HEAD = re.compile(
    rb"HTTP/1\.1 101 (" + _VALUE + rb")\r\n((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+: ?" + _VALUE + rb"\r\n)*)\r\n"
)
# a Connection value read the same by any tokenizer: ``a, b,c``
_TOKENS = re.compile(r"[0-9A-Za-z-]+(?:, ?[0-9A-Za-z-]+)*")
# within a block ``_HEAD`` matched: its lines as (name, value), the one
# optional blank after the colon dropped (a value starts with no blank);
# the values of its Connection lines, in the lower-cased block
_LINE = re.compile(r"([^:]+): ?([^\r]*)\r\n")
_CONNECTION = re.compile(r"^connection: ?([^\r]*)", re.M)


class Head101:
    """A 101 read by ``parse_101`` (the ``SwitchHead`` an ``UpstreamResponse`` also is)."""

    __slots__ = ("reason", "headers", "leftover")

    status = 101
    version = "1.1"

    def __init__(self, reason: str, headers: list[tuple[str, str]], leftover: bytes) -> None:
        self.reason = reason
        self.headers = headers
        self.leftover = leftover


def py_parse_101(data: bytes) -> Head101 | None:
    """``data`` (the first read from the upstream) as a simple 101, or None."""
    m = _HEAD.match(data)
    if m is None:
        return None
    block = m.group(2).decode("ascii")  # the pattern admits only ASCII: decoded once, not per line
    low = block.lower()
    if "content-length" in low or "transfer-encoding" in low:
        return None  # llhttp checks the framing headers even on a 101: leave them to it
    # llhttp's upgrade needs both (llhttp__before_headers_complete): an
    # Upgrade header, and an ``upgrade`` token in a plain Connection list
    if not (low.startswith("upgrade:") or "\nupgrade:" in low):
        return None
    connection_upgrade = False
    for value in _CONNECTION.findall(low):
        if _TOKENS.fullmatch(value) is None:
            return None
        if "upgrade" in value.replace(" ", "").split(","):
            connection_upgrade = True
    if not connection_upgrade:
        return None
    return Head101(m.group(1).decode("ascii"), _LINE.findall(block), data[m.end() :])


parse_101: Callable[[bytes], Head101 | None] = py_parse_101
"""``py_parse_101``, in C (``_head101.c``: the same grammar, a tenth of the
time) when the extension is built and not switched off."""
if frames.CRelay is not None:
    from ngxws.ws._speedups import parse_101 as _c_parse_101

    parse_101 = partial(_c_parse_101, Head101)
