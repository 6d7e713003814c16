"""What a protocol upgrade becomes: a websocket tunnel, or a refusal.

nginx (``ngx_http_proxy_process_header``) enters upgraded mode whenever the
client's request carried an ``Upgrade`` header -- whatever ``Connection``
said -- and the upstream answered 101.  ngxws does the same for websocket:
a request naming ``websocket`` in its ``Upgrade`` header becomes a counted,
logged tunnel when the upstream switches to websocket, with or without
``Connection: upgrade``.  A 101 to anything else (``h2c`` ...) is where
ngxws deliberately differs: nginx tunnels it, which lets a client speak
HTTP/2 straight to the backend past the proxy's ``deny``/``auth_basic``
rules (h2c smuggling); ngxws answers 502 and closes both sides.

Pure functions on heads; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from websockets.utils import accept_key

from ngxws.http.request import RequestHead
from ngxws.http.responses import SERVER
from ngxws.proxy.upstream_response import HIDDEN_RESPONSE_HEADERS
from ngxws.sinks.timefmt import http_date_now
from ngxws.ws.frames import encode_close_frame

# What a client may send while its upgrade waits for the upstream's 101
# (nginx keeps such bytes in its header buffer and relays them once
# upgraded).  Past this much, reading stops until the upstream answers.
EARLY_DATA_LIMIT = 64 * 1024


def tokens(value: str | None) -> list[str]:
    """``Upgrade: websocket, h2c`` -> ``["websocket", "h2c"]`` (lower case,
    protocol versions dropped: ``websocket/13`` is ``websocket``)."""
    if value is None:
        return []
    out = []
    for part in value.split(","):
        name = part.strip().split("/", 1)[0].strip().lower()
        if name:
            out.append(name)
    return out


def carries_upgrade(head: RequestHead) -> bool:
    """nginx's ``r->headers_in.upgrade``: the request has an ``Upgrade`` header."""
    return head.header("upgrade") is not None


def asks_websocket(head: RequestHead) -> bool:
    """The client offers websocket (alone or among other protocols): the
    request is subject to ``ws_max_connections``."""
    return "websocket" in tokens(head.header("upgrade"))


def switched_to_websocket(head: RequestHead, response_headers: Sequence[tuple[str, str]]) -> bool:
    """After a 101: did the upstream switch this connection to websocket?

    The 101's own ``Upgrade`` names the protocol (RFC 9110 7.8); an upstream
    that omits it switched to what the client asked for, which must then be
    websocket alone.  Anything else is refused (h2c smuggling)."""
    if not asks_websocket(head):
        return False
    said = [v for n, v in response_headers if n.lower() == "upgrade"]
    chosen = tokens(", ".join(said)) if said else tokens(head.header("upgrade"))
    return chosen == ["websocket"]


def valid_key(key: str) -> bool:
    """A Sec-WebSocket-Key is base64 of 16 bytes (24 characters)."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


def refusal(head: RequestHead) -> bytes | None:
    """``ws_max_connections`` reached: the handshake completed by ngxws and
    close 1013 (the module's answer); None when the key is unusable (400)."""
    key = head.header("sec-websocket-key") or ""
    if not valid_key(key):
        return None
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        f"Server: {SERVER}\r\n"
        f"Date: {http_date_now()}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode("latin-1") + encode_close_frame(1013, "Try Again Later")


def switching_head(reason: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The upstream's 101 as nginx passes it: its own Server/Date, Connection: upgrade."""
    lines = [
        f"HTTP/1.1 101 {reason or 'Switching Protocols'}",
        f"Server: {SERVER}",
        f"Date: {http_date_now()}",
        "Connection: upgrade",
    ]
    for name, value in headers:
        low = name.lower()
        if low == "upgrade" or low not in HIDDEN_RESPONSE_HEADERS:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def masked_close_frame(code: int, reason: str, mask: bytes | None = None) -> bytes:
    """A close frame as a client sends it (masked, RFC 6455 5.3): what ngxws
    tells an upstream whose 101 came when the cap was already reached."""
    frame = encode_close_frame(code, reason)
    key = mask if mask is not None else os.urandom(4)
    payload = frame[2:]
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes((frame[0], 0x80 | len(payload))) + key + masked
