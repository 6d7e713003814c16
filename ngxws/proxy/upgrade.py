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

``ws_max_connections`` counts established tunnels, as the module does (it
counts a connection when the 101 passes): an upgrade waiting for its 101
is not one.  The cap is checked before the upstream is contacted (the
module's answer: ngxws's own 101 and close 1013), and again, atomically
(``SharedCounters.try_open``), when the 101 comes -- tunnels completed
meanwhile refuse it, with a close 1013 to both sides.

The rules on heads are pure functions; ``proxy_upgrade`` is the asyncio
flow ``ClientConnection`` runs for a request ``http.parser`` reported as
an upgrade (the bytes and message framing stay ``proxy.handshake``'s).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ngxws.accounting.breakdown import record_upgrade
from ngxws.accounting.connstats import CLOSED
from ngxws.config.model import Location, Server
from ngxws.http.request import RequestHead
from ngxws.proxy.dial import Dial
from ngxws.proxy.handshake import conn_info, refusal, switching_head
from ngxws.proxy.header_phase import ProxiedHeaders, filtered
from ngxws.proxy.response_pass import intercepted, pass_response
from ngxws.proxy.switch101 import plain_hidden
from ngxws.proxy.tunnel import Tunnel
from ngxws.proxy.upstream import UpstreamUnavailable
from ngxws.proxy.upstream_response import SwitchHead, UpstreamResponse, hidden_headers
from ngxws.proxy.x_accel import accel_redirect
from ngxws.ws.frames import encode_close_frame

if TYPE_CHECKING:
    from ngxws.proxy.context import RequestIO
    from ngxws.proxy.pending import Pending

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


def asks_websocket(head: RequestHead) -> bool:
    """The client offers websocket (alone or among other protocols): the
    request is subject to ``ws_max_connections``."""
    return "websocket" in tokens(head.header("upgrade"))


def switched_to_websocket(head: RequestHead, response_headers: Sequence[tuple[str, str]]) -> bool:
    """After a 101: did the upstream switch this connection to websocket?

    The 101's own ``Upgrade`` names the protocol (RFC 9110 7.8); an upstream
    that omits it switched to what the client asked for, which must then be
    websocket alone.  Anything else is refused (h2c smuggling)."""
    offered = head.header("upgrade")
    said = []
    for name, value in response_headers:
        if name.lower() == "upgrade":
            said.append(value)
    if offered is not None and len(said) == 1 and offered.lower() == "websocket" == said[0].lower():
        return True  # the usual pair (tokens() reads it so), without the tokenizing
    if "websocket" not in tokens(offered):  # asks_websocket
        return False
    chosen = tokens(", ".join(said)) if said else tokens(offered)
    return chosen == ["websocket"]


def masked_close_frame(code: int, reason: str, mask: bytes | None = None) -> bytes:
    """A close frame as a client sends it (masked, RFC 6455 5.3): what ngxws
    tells an upstream whose 101 came when the cap was already reached."""
    frame = encode_close_frame(code, reason)
    key = mask if mask is not None else os.urandom(4)
    payload = frame[2:]
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes((frame[0], 0x80 | len(payload))) + key + masked


async def proxy_upgrade(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, captures: tuple[str, ...]
) -> bool:
    """A request with an ``Upgrade`` header on a ``proxy_pass`` location.
    Returns whether the connection stays open (not switched: the answer is
    passed on like any other, and reading goes on after the request)."""
    head = pending.head
    assert head is not None
    worker = conn.worker
    ws = server.ws
    key = head.header("sec-websocket-key") or ""
    # this location's row of the shared counters (accounting/breakdown.py)
    row, counts = worker.keys.base(server, loc), worker.counters.array
    if asks_websocket(head) and worker.counters.at_limit(ws.max_connections):
        record_upgrade(counts, row, 1013)
        conn.write(refusal(key))  # the upstream is never contacted
        return False
    try:
        response, upstream_addr = await conn.open_upstream(pending, server, loc, captures)
    except UpstreamUnavailable as exc:
        return await upstream_failed(conn, pending, server, loc, exc)
    return await upgrade_answered(conn, pending, server, loc, response, upstream_addr)


async def upstream_failed(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, exc: UpstreamUnavailable
) -> bool:
    """No upstream could be reached (or it timed out): 502/504, counted and logged."""
    head = pending.head
    assert head is not None
    record_upgrade(conn.worker.counters.array, conn.worker.keys.base(server, loc), exc.status, unavailable=True)
    conn.worker.log_upstream_failure(exc, head.request_line)
    # nginx finalizes the request with the error: the connection stays
    # open when the request asked for it (ngx_http_finalize_request)
    return await conn.answer_error(exc.status, pending, server, loc, head.keep_alive)


async def upgrade_answered(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, response: SwitchHead, upstream_addr: str
) -> bool:
    """The upstream's answer to the upgrade: a tunnel, or the answer passed on."""
    head = pending.head
    assert head is not None
    keep = tunnel_now(conn, pending, server, loc, response, upstream_addr)
    if keep is not None:
        return keep
    if response.status != 101:
        assert isinstance(response, UpstreamResponse)  # a simple 101 is all head101 reads
        record_upgrade(conn.worker.counters.array, conn.worker.keys.base(server, loc), response.status)
        kept = intercepted(conn, loc, response)
        if kept is not None:  # proxy_intercept_errors: the location's error_page answers
            return await conn.answer_error(response.status, pending, server, loc, head.keep_alive, kept)
        followed = await accel_redirect(conn, pending, server, loc, response)
        if followed is not None:  # X-Accel-Redirect (proxy/x_accel.py)
            return followed
        conn.send_timer.seconds = loc.send_timeout
        return await pass_response(conn, head, pending.status_override, response, head.keep_alive,
                                   ProxiedHeaders(conn, loc, server, head))
    record_upgrade(conn.worker.counters.array, conn.worker.keys.base(server, loc), 502)  # a refused switch
    return await refuse_switch(conn, pending, server, loc, response)


def tunnel_now(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, response: SwitchHead, upstream_addr: str
) -> bool | None:
    """A 101 to websocket, synchronously: the tunnel opens (or, the cap
    reached meanwhile, both sides get 1013); returns False then (the
    connection is not kept for HTTP).  None: not such a 101 (the caller
    passes the answer on or refuses the switch)."""
    head = pending.head
    assert head is not None
    if response.status != 101 or not switched_to_websocket(head, response.headers):
        return None
    worker = conn.worker
    ws = server.ws
    # this location's row of the shared counters (accounting/breakdown.py)
    row, counts = worker.keys.base(server, loc), worker.counters.array
    if not worker.counters.try_open(row, ws.max_connections):
        # tunnels completed while this one waited: over the cap after all
        record_upgrade(counts, row, 1013)
        drop_upstream(conn, masked_close_frame(1013, "Try Again Later"))
        conn.write(refusal(head.header("sec-websocket-key") or ""))
        return False
    record_upgrade(counts, row, 101)
    opened = False
    try:
        plain = plain_hidden(loc)  # no headers filter to run (switch101.py)
        if plain is not None:
            answer = switching_head(response, None, plain)
        else:
            answer = switching_head(response, lambda status, h: filtered(conn, loc, server, head, status, h, proxied=True),
                                    hidden_headers(loc.proxy.hide_headers, loc.proxy.pass_headers))  # fmt: skip
        assert conn.transport is not None and conn.upstream_transport is not None
        born = isinstance(conn.upstream_transport, Dial)  # relayed in C from the start: it sends the 101
        if born:  # a server that logs no tunnel (fast_upgrade.born_spliced)
            logger, logfile = None, None
        else:
            conn.write(answer)
            logger, logfile = worker.ws_logger(server, lambda: conn_info(conn.variables(head, server, ()), upstream_addr))
        tunnel = Tunnel(
            worker,
            row,
            conn.transport,
            conn.upstream_transport,
            logger,
            logfile,
            loc.proxy.read_timeout,
            ws.conn_age,
            send_timeout=loc.proxy.send_timeout,
            client_send_timeout=loc.send_timeout,
        )
        tunnel.on_close = pending.limits.release
        # the request lasts as long as its tunnel (stub_status's "writing")
        tunnel.stat_state, conn.stat_state = conn.stat_state, CLOSED
        conn.handed_over = True
        opened = True
        conn.cancel_timer()
        worker.connections.discard(conn)
        # what the client sent after the request while it waited (an
        # error_page hop runs a copy of the request: the bytes are the held one's)
        held = conn.held if conn.held is not None else pending
        if born:
            tunnel.start_born(answer, held.leftover, response.leftover)
        else:
            tunnel.start(held.leftover, response.leftover)
        return False
    finally:
        if not opened:
            worker.counters.close(row)


async def refuse_switch(
    conn: RequestIO, pending: Pending, server: Server, loc: Location, response: SwitchHead
) -> bool:
    """A 101 ngxws does not tunnel (see the module docstring): 502, and both
    connections closed.  nginx would tunnel it (h2c smuggling)."""
    head = pending.head
    assert head is not None
    said = ", ".join(v for n, v in response.headers if n.lower() == "upgrade") or "-"
    conn.worker.log_error(
        f'upstream switched protocols to "{said}", which is not tunnelled, '
        f'while reading response header from upstream, request: "{head.request_line}"'
    )
    drop_upstream(conn)
    return await conn.answer_error(502, pending, server, loc, False)


def drop_upstream(conn: RequestIO, last_words: bytes = b"") -> None:
    upstream, conn.upstream_transport = conn.upstream_transport, None
    if upstream is not None:
        if last_words:
            upstream.write(last_words)
        upstream.close()
