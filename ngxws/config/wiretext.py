"""Config text that goes on the wire, as the bytes in the file.

nginx never decodes its config: a ``return 200 "…"`` body, an ``auth_basic``
realm, a ``proxy_set_header`` value or a redirect URL reaches the client or
the backend as exactly the bytes written in nginx.conf.  crossplane hands
ngxws ``str`` (the file decoded as UTF-8), while ngxws keeps everything that
crosses the wire as *byte text*: one character per byte (latin-1), the form
request heads are decoded to and encoded back from.  So the loader turns the
arguments of those directives into byte text once (``wire``), and variables
rendered into them, which come from request heads, are byte text already.
``shown`` turns byte text back into readable text (``ngxws check``).

crossplane reads a file that is not UTF-8 with ``errors="replace"``: such
bytes are lost before ngxws sees them (U+FFFD, sent as its UTF-8 bytes).
"""

from __future__ import annotations

__all__ = ["shown", "wire"]


def wire(text: str) -> str:
    """Config text -> byte text: its UTF-8 bytes, one character per byte."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def shown(text: str) -> str:
    """Byte text -> readable text (bytes that are not UTF-8 stay escaped)."""
    if text.isascii():
        return text
    return text.encode("latin-1").decode("utf-8", "backslashreplace")
