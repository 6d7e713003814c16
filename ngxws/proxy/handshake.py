"""The websocket handshake's own answers, and what a tunnel logs about it.

``switching_head`` passes the upstream's 101 on as nginx does;
``refusal`` is ngxws's own answer when ``ws_max_connections`` is reached
(the module's behaviour: complete the handshake, then close 1013);
``conn_info`` is what ws_log templates read about the connection.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from typing import TYPE_CHECKING

from websockets.utils import accept_key

from ngxws.http.request import RequestHead
from ngxws.http.responses import SERVER, error_response
from ngxws.proxy.upstream_response import HIDDEN_RESPONSE_HEADERS, UpstreamResponse
from ngxws.sinks.timefmt import http_date_now
from ngxws.sinks.wslog import ConnInfo
from ngxws.ws.frames import encode_close_frame

if TYPE_CHECKING:
    from ngxws.proxy.client import ClientConnection


def switching_head(response: UpstreamResponse) -> bytes:
    """The upstream's 101 as nginx passes it: its own Server/Date, Connection: upgrade."""
    lines = [
        f"HTTP/1.1 101 {response.reason or 'Switching Protocols'}",
        f"Server: {SERVER}",
        f"Date: {http_date_now()}",
        "Connection: upgrade",
    ]
    for name, value in response.headers:
        low = name.lower()
        if low == "upgrade":
            lines.append(f"{name}: {value}")
        elif low not in HIDDEN_RESPONSE_HEADERS:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def refusal(head: RequestHead) -> bytes:
    """ws_max_connections reached: complete the handshake ourselves, close 1013."""
    key = head.header("sec-websocket-key") or ""
    if not _valid_key(key):
        return error_response(400)
    return (
        (
            "HTTP/1.1 101 Switching Protocols\r\n"
            f"Server: {SERVER}\r\n"
            f"Date: {http_date_now()}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode("latin-1")
        + encode_close_frame(1013, "Try Again Later")
    )


def conn_info(conn: ClientConnection, head: RequestHead, upstream_addr: str) -> ConnInfo:
    return ConnInfo(
        request=_log_text(head.request_line),
        uri=_log_text(head.path),
        request_id=secrets.token_hex(16),
        remote_user=_log_text(conn.remote_user),
        remote_addr=conn.remote_addr,
        remote_port=str(conn.remote_port),
        server_addr=conn.server_addr,
        server_port=str(conn.server_port),
        upstream_addr=upstream_addr,
        headers={k: _log_text(v) for k, v in head.header_map.items()},
        opened_at=time.time(),
    )


def _log_text(value: str) -> str:
    """Heads are decoded as latin-1 (bytes kept 1:1 for forwarding); log files
    are written as UTF-8 with surrogateescape, so re-decode to get the very
    bytes the client sent into the log."""
    if value.isascii():
        return value
    return value.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


def _valid_key(key: str) -> bool:
    """A Sec-WebSocket-Key is base64 of 16 bytes (24 characters)."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False
