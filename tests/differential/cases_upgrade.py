"""Issue 8 items 1 and 5: every spelling of an upgrade request against nginx.

nginx tunnels whenever the client's request carried an ``Upgrade`` header
and the upstream answered 101 (``ngx_http_proxy_process_header`` sets
``u->upgrade`` from ``r->headers_in.upgrade``, whatever ``Connection``
said).  With the docs' ``proxy_set_header Connection "upgrade"`` the
backend switches for ``Connection: close``, ``keep-alive`` or none at all,
and nginx relays frames both ways (``ws=True`` checks the echo).  Without
the recipe the backend sees no ``Upgrade`` and answers 200: the request is
plain, and a keep-alive connection goes on after it.

A 101 to anything but websocket is where ngxws deliberately differs (502,
both sides closed): tests/test_upgrade.py, not here.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get

KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"


def spelled(path: str, upgrade: str | None, connection: str | None, version: str = "1.1", extra: str = "") -> bytes:
    lines = f"GET {path} HTTP/{version}\r\nHost: example.com\r\n"
    if upgrade is not None:
        lines += f"Upgrade: {upgrade}\r\n"
    if connection is not None:
        lines += f"Connection: {connection}\r\n"
    return (lines + KEY + extra + "\r\n").encode("latin-1")


group(Group("upgrade", f"""
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:@L0@;
        location /ws/ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@; }}
        location /mapped/ {{
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /plain/ {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /forced/ {{
            proxy_http_version 1.1;
            proxy_set_header Upgrade websocket;
            proxy_set_header Connection upgrade;
            proxy_pass http://127.0.0.1:@B0@;
        }}
    }}
"""))

for conn in ("close", "keep-alive", None, "Upgrade", "keep-alive, Upgrade", "UPGRADE"):
    label = "no Connection" if conn is None else f"Connection: {conn}"
    case(f"Upgrade: websocket, {label}: tunnelled", "upgrade", spelled("/ws/a", "websocket", conn),
         ws=True, expect=(101,))
    case(f"Upgrade: websocket, {label}, map recipe: tunnelled", "upgrade", spelled("/mapped/a", "websocket", conn),
         ws=True, expect=(101,))
case("Upgrade: WebSocket (any case), Connection: close", "upgrade", spelled("/ws/a", "WebSocket", "close"),
     ws=True, expect=(101,))
case("Upgrade: websocket over HTTP/1.0", "upgrade", spelled("/ws/a", "websocket", None, version="1.0"),
     ws=True, expect=(101,))
# the backend only switches for exactly "websocket": these are answered 200
case("Upgrade: websocket, h2c: the backend declines", "upgrade", spelled("/ws/a", "websocket, h2c", "Upgrade"),
     expect=(200,))
case("Upgrade: h2c: the backend declines", "upgrade",
     spelled("/ws/a", "h2c", "Upgrade, HTTP2-Settings", extra="HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
     expect=(200,))
# the backend told "websocket" switches to it: a tunnel, whatever else the client offered
case("Upgrade: websocket, h2c, the upstream switches to websocket", "upgrade",
     spelled("/forced/a", "websocket, h2c", "Upgrade"), ws=True, expect=(101,))
case("Upgrade: websocket/13 token, Connection: close", "upgrade",
     spelled("/forced/a", "websocket/13", "close"), ws=True, expect=(101,))
# not switched: answered like any request, and the connection goes on
for conn in ("keep-alive", None, "Upgrade"):
    label = "no Connection" if conn is None else f"Connection: {conn}"
    case(f"plain location, Upgrade: websocket, {label}, then another request", "upgrade",
         spelled("/plain/a", "websocket", conn) + get("/plain/after"), b"", expect=(200, 200))
case("declined h2c, then another request on the connection", "upgrade",
     spelled("/ws/h2c", "h2c", "Upgrade") + get("/ws/after"), b"", expect=(200, 200))
case("Upgrade: websocket, Connection: close, plain location", "upgrade", spelled("/plain/a", "websocket", "close"),
     expect=(200,))
# a tunnel from a Connection: close upgrade is a tunnel: it ends with its peer
case("a tunnel from Connection: close stays open while idle", "upgrade",
     spelled("/ws/a", "websocket", "close"), ws=True, idle=1.5, expect=(101,))
