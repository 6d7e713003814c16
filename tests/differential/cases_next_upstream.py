"""``proxy_next_upstream`` once the request was sent, against nginx: an
answer it names (``http_502``, ``http_404``...) or a response header that
times out or never comes sends the request to the next peer -- not a POST
without ``non_idempotent``, not past ``proxy_next_upstream_tries``, not a
body already streamed -- and the last peer's answer stands as it came; for
plain requests and websocket upgrades alike (the backends answer an upgrade
to ``/status/NNN`` or ``/hang`` as any request)."""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, req, upgrade

_UPSTREAMS = "".join(
    f"    upstream {name} {{ server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; server 127.0.0.1:@B2@; }}\n"
    for name in ("s502", "s404", "s500", "hang", "post", "postni", "tries", "ws502", "wshang", "wsoff", "off")
)

group(Group("nextup", _UPSTREAMS + f"""
    server {{
        listen 127.0.0.1:@L0@;
        proxy_read_timeout 1s;
        location /s502/ {{ proxy_next_upstream error timeout http_502; proxy_pass http://s502; }}
        location /s404/ {{ proxy_next_upstream http_404; proxy_pass http://s404; }}
        location /s500/ {{ proxy_next_upstream error http_502; proxy_pass http://s500; }}
        location /hang/ {{ proxy_pass http://hang; }}
        location /post/ {{ proxy_next_upstream error timeout http_502; proxy_pass http://post; }}
        location /postni/ {{ proxy_next_upstream error timeout http_502 non_idempotent; proxy_pass http://postni; }}
        location /tries/ {{ proxy_next_upstream http_502; proxy_next_upstream_tries 2; proxy_pass http://tries; }}
        location /off/ {{ proxy_next_upstream off; proxy_pass http://off; }}
        location /ws502/ {{ {UPGRADE_LOC} proxy_next_upstream error timeout http_502; proxy_pass http://ws502; }}
        location /wshang/ {{ {UPGRADE_LOC} proxy_pass http://wshang; }}
        location /wsoff/ {{ {UPGRADE_LOC} proxy_next_upstream off; proxy_pass http://wsoff; }}
    }}
"""))

_POST = {"headers": "Content-Type: text/plain\r\n", "body": b"a=1"}

case("next upstream: http_502 walks every peer, the last answer stands", "nextup", get("/s502/status/502"))
case("next upstream: http_404", "nextup", get("/s404/status/404"))
case("next upstream: a 500 it does not name stands", "nextup", get("/s500/status/500"))
case("next upstream: a 200 is not retried", "nextup", get("/s502/ok"), expect=(200,))
case("next upstream: header timeout, every peer, then 504", "nextup", get("/hang/x"), expect=(504,))
case("next upstream: a POST is not retried", "nextup", req("POST", "/post/status/502", **_POST))
case("next upstream: a POST with non_idempotent is", "nextup", req("POST", "/postni/status/502", **_POST))
case("next upstream: bounded by proxy_next_upstream_tries", "nextup", get("/tries/status/502"))
case("next upstream: off", "nextup", get("/off/status/502"))
case("next upstream: an upgrade answered 502", "nextup", upgrade("/ws502/status/502"))
case("next upstream: an upgrade whose head times out", "nextup", upgrade("/wshang/hang"), expect=(504,))
case("next upstream: an upgrade, off", "nextup", upgrade("/wsoff/status/502"))
