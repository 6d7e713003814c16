"""The bytes of a websocket handshake's answer that ngxws writes itself (pure).

- ``switching_head``: the upstream's 101 as nginx passes it on;
- ``refusal``: ``ws_max_connections`` reached -- the module completes the
  handshake itself and closes with 1013 "Try Again Later";
- ``conn_info``: what ws_log templates read about the connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.utils import accept_key

from ngxws.http.request import valid_websocket_key
from ngxws.http.responses import error_response, response_head
from ngxws.proxy.upstream_response import HIDDEN_RESPONSE_HEADERS, OWN_HEADERS, SwitchHead
from ngxws.sinks.wslog import ConnInfo
from ngxws.ws.frames import encode_close_frame

if TYPE_CHECKING:
    from ngxws.http.upstream_request import RequestVariables

__all__ = ["switching_head", "refusal", "conn_info"]


def switching_head(
    response: SwitchHead,
    headers_filter: Callable[[int, list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
    hidden: frozenset[str] = HIDDEN_RESPONSE_HEADERS,
) -> bytes:
    """The upstream's 101 as nginx passes it: its own Server/Date, Connection:
    upgrade; ``headers_filter``: add_header's ``always`` lines (the headers
    filter runs on a 101 too); ``hidden``: what it does not pass on."""
    headers = [(n, v) for n, v in response.headers if (low := n.lower()) == "upgrade" or low not in hidden]
    if headers_filter is not None:
        headers = headers_filter(101, headers)
    # fixed=0: no slot header leads (Connection comes first)
    return response_head(f"HTTP/1.1 101 {response.reason or 'Switching Protocols'}", [("Connection", "upgrade"), *headers],
                         own=OWN_HEADERS <= hidden, fixed=0)  # fmt: skip


def refusal(key: str) -> bytes:
    """ws_max_connections reached: our own 101 and close 1013 (a 400 when the
    client's Sec-WebSocket-Key cannot be answered)."""
    if not valid_websocket_key(key):
        return error_response(400)
    accept = [("Upgrade", "websocket"), ("Connection", "upgrade"), ("Sec-WebSocket-Accept", accept_key(key))]
    return response_head("HTTP/1.1 101 Switching Protocols", accept) + encode_close_frame(1013, "Try Again Later")


def conn_info(v: RequestVariables, upstream_addr: str) -> ConnInfo:
    """What ws_log templates read: the request's evaluator, with the peer the
    tunnel reached as ``$upstream_addr``."""
    v.upstream_addr = upstream_addr
    return ConnInfo(v, opened_at=time.time())
