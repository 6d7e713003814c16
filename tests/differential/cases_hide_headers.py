"""``proxy_hide_header`` / ``proxy_pass_header``: which of an upstream's
headers reach the client (ngx_http_upstream_hide_headers_hash).

By default nginx hides Date, Server, X-Pad and X-Accel-*; ``proxy_hide_header``
hides more, ``proxy_pass_header`` lets a default one through (an
upstream's Server or Date then replaces nginx's own, where it stood in the
upstream's head).  A level's list replaces the inherited one, each of the
two on its own.  On a websocket's 101 too.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, upgrade

_H = frozenset({"x-powered-by", "x-pad", "x-secret"})
_PASSED = _H | {"server", "date"}

group(Group("hide_headers", f"""
    server {{
        listen 127.0.0.1:@L0@;
        server_name example.com;
        proxy_hide_header X-Secret;
        location /plain/ {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /hide/ {{ proxy_hide_header X-Powered-By; proxy_pass http://127.0.0.1:@B0@; }}
        location /pass/ {{ proxy_pass_header Server; proxy_pass_header Date; proxy_pass_header X-Pad;
                          proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ proxy_hide_header X-Backend; proxy_pass http://127.0.0.1:@B0@; {UPGRADE_LOC} }}
    }}
"""))

case("hide: the defaults and a server's proxy_hide_header", "hide_headers", get("/plain/hdrs"), expect=(200,), fields=_H)
case("hide: a location's list replaces the server's", "hide_headers", get("/hide/hdrs"), expect=(200,), fields=_H)
case("hide: proxy_pass_header Server, Date, X-Pad", "hide_headers", get("/pass/hdrs"), expect=(200,), fields=_PASSED)
case("hide: on a websocket's 101", "hide_headers", upgrade("/ws/x"), expect=(101,), fields=frozenset({"x-backend"}),
     ws=True)
