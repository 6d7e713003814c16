"""Issue 13 item 1: the upgrades ngxws answers by callbacks (proxy.fast_upgrade)
against nginx -- peer rotation, dead upstreams, error_page after a failed
connect, realip, variables in the head sent upstream, captures, early bytes,
and the locations that keep the general path beside them."""

from __future__ import annotations

from cases import UPGRADE_LOC, case, each, group
from cases_upgrade import spelled
from oracle import Group, upgrade


def closing(path: str) -> bytes:
    """An upgrade that says ``Connection: close``: nginx closes after an
    error answer to it, as ngxws does after any failed upgrade."""
    return spelled(path, "websocket", "close")


group(Group("fastupgrade", f"""
    upstream withdead {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream alldead {{ server 127.0.0.1:@DEAD@; server 127.0.0.2:@DEAD@; }}
    upstream noretry {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream backup {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B2@ backup; }}
    upstream rr {{ server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; }}
    upstream unixup {{ server unix:@BSOCK@; }}
    upstream hashed {{ hash $request_uri; server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; server 127.0.0.1:@B2@; }}
    server {{
        listen 127.0.0.1:@L0@;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
        location /withdead/ {{ {UPGRADE_LOC} proxy_pass http://withdead; }}
        location /alldead/ {{ {UPGRADE_LOC} proxy_pass http://alldead; }}
        location /noretry/ {{ {UPGRADE_LOC} proxy_next_upstream off; proxy_pass http://noretry; }}
        location /backup/ {{ {UPGRADE_LOC} proxy_pass http://backup; }}
        location /rr/ {{ {UPGRADE_LOC} proxy_pass http://rr; }}
        location /unixup/ {{ {UPGRADE_LOC} proxy_pass http://unixup; }}
        location /hashed/ {{ {UPGRADE_LOC} proxy_pass http://hashed; }}
        location /maint/ {{
            {UPGRADE_LOC}
            error_page 502 504 = @maintenance;
            proxy_pass http://alldead;
        }}
        location @maintenance {{ return 503 "down for maintenance\\n"; }}
        location /uri/ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@/new/; }}
        location ~ ^/re/(?<tail>.*)$ {{
            {UPGRADE_LOC}
            proxy_set_header X-Tail $tail;
            proxy_set_header X-One $1;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /vars/ {{
            {UPGRADE_LOC}
            proxy_set_header X-Real $remote_addr;
            proxy_set_header X-Fwd $proxy_add_x_forwarded_for;
            proxy_set_header X-Host $host;
            proxy_set_header X-Proxy $proxy_host;
            proxy_set_header X-Empty "";
            proxy_set_header Host $http_host;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /nohdrs/ {{ {UPGRADE_LOC} proxy_pass_request_headers off; proxy_pass http://127.0.0.1:@B0@; }}
        location /limited/ {{
            {UPGRADE_LOC}
            allow 127.0.0.1;
            deny all;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /status/ {{ proxy_pass http://127.0.0.1:@B0@; }}
    }}
"""))

case("upgrade: a dead peer, the next one answers", "fastupgrade", upgrade("/withdead/a"), ws=True, expect=(101,))
each("upgrade: round robin", "fastupgrade", [upgrade("/rr/1"), upgrade("/rr/2"), upgrade("/rr/3")],
     expect=(101, 101, 101))
case("upgrade: every peer dead: 502", "fastupgrade", closing("/alldead/a"), expect=(502,))
case("upgrade: proxy_next_upstream off: 502", "fastupgrade", closing("/noretry/a"), expect=(502,))
case("upgrade: the backup peer answers", "fastupgrade", upgrade("/backup/a"), ws=True, expect=(101,))
case("upgrade: a unix: server in an upstream", "fastupgrade", upgrade("/unixup/a"), ws=True, expect=(101,))
each("upgrade: hash $request_uri", "fastupgrade", [upgrade("/hashed/a"), upgrade("/hashed/b"), upgrade("/hashed/c")],
     expect=(101, 101, 101))
case("upgrade: 502 -> error_page @named", "fastupgrade", closing("/maint/a"), expect=(503,))
case("upgrade: proxy_pass with a URI", "fastupgrade", upgrade("/uri/a/b?x=1"), ws=True, expect=(101,))
case("upgrade: regex location, named and numbered captures", "fastupgrade", upgrade("/re/x/y"), ws=True,
     expect=(101,))
case("upgrade: variables in proxy_set_header, realip", "fastupgrade",
     upgrade("/vars/a", extra="X-Real-IP: 10.1.2.3\r\nX-Forwarded-For: 10.9.9.9\r\n"), ws=True, expect=(101,))
case("upgrade: Host with a port", "fastupgrade", upgrade("/vars/a", host="example.com:8080"), ws=True, expect=(101,))
case("upgrade: proxy_pass_request_headers off", "fastupgrade",
     upgrade("/nohdrs/a", extra="X-Custom: 1\r\n"), ws=True, expect=(101,))
case("upgrade: access rules (the general path)", "fastupgrade", upgrade("/limited/a"), ws=True, expect=(101,))
case("upgrade: the upstream answers 404, not 101", "fastupgrade", upgrade("/status/404"), expect=(404,))
