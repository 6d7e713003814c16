"""``proxy_method`` and ``proxy_next_upstream_tries`` against nginx: the
method of the request line sent upstream (fixed, from a variable, HEAD --
then the upstream's answer has no body, whatever it declares), and the
bound on peers tried, for plain requests and upgrades alike."""

from __future__ import annotations

from cases import UPGRADE_LOC, case, each, group
from oracle import Group, get, req, upgrade

group(Group("methodtries", f"""
    # one upstream per location: a peer's failures are counted per upstream
    # (max_fails / fail_timeout), and each location must meet its dead peer
    upstream one {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream two {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream twoof3 {{ server 127.0.0.1:@DEAD@; server 127.0.0.2:@DEAD@; server 127.0.0.1:@B2@; }}
    upstream threeof3 {{ server 127.0.0.1:@DEAD@; server 127.0.0.2:@DEAD@; server 127.0.0.1:@B2@; }}
    upstream wsone {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream wstwo {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream srv {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    upstream more {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    server {{
        listen 127.0.0.1:@L0@;
        location /post/ {{ proxy_method POST; proxy_pass http://127.0.0.1:@B0@; }}
        location /var/ {{ proxy_method $arg_m; proxy_pass http://127.0.0.1:@B0@; }}
        location /head/ {{ proxy_method HEAD; proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_method OPTIONS; proxy_pass http://127.0.0.1:@B0@; }}
        location /one/ {{ proxy_next_upstream_tries 1; proxy_pass http://one; }}
        location /two/ {{ proxy_next_upstream_tries 2; proxy_pass http://two; }}
        location /twoof3/ {{ proxy_next_upstream_tries 2; proxy_pass http://twoof3; }}
        location /threeof3/ {{ proxy_next_upstream_tries 3; proxy_pass http://threeof3; }}
        location /wsone/ {{ {UPGRADE_LOC} proxy_next_upstream_tries 1; proxy_pass http://wsone; }}
        location /wstwo/ {{ {UPGRADE_LOC} proxy_next_upstream_tries 2; proxy_pass http://wstwo; }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        proxy_next_upstream_tries 1;
        location / {{ proxy_pass http://srv; }}
        location /more/ {{ proxy_next_upstream_tries 0; proxy_pass http://more; }}
    }}
"""))

case("proxy_method POST on a GET", "methodtries", get("/post/a"), expect=(200,))
case("proxy_method POST on a POST with a body", "methodtries",
     req("POST", "/post/b", headers="Content-Type: text/plain\r\n", body=b"hello"), expect=(200,))
case("proxy_method from a variable", "methodtries", get("/var/a?m=PUT"), expect=(200,))
case("proxy_method from an empty variable", "methodtries", get("/var/a"))
case("proxy_method HEAD: no body from upstream", "methodtries", get("/head/a"), expect=(200,))
case("proxy_method on an upgrade", "methodtries", upgrade("/ws/a"))
each("proxy_next_upstream_tries 1: the dead peer only", "methodtries", [get("/one/a"), get("/one/b")])
each("proxy_next_upstream_tries 2: the next peer answers", "methodtries", [get("/two/a"), get("/two/b")])
each("proxy_next_upstream_tries 2 of 3 peers", "methodtries", [get("/twoof3/a"), get("/twoof3/b")])
each("proxy_next_upstream_tries 3 of 3 peers", "methodtries", [get("/threeof3/a"), get("/threeof3/b")])
each("proxy_next_upstream_tries 1 on upgrades", "methodtries", [upgrade("/wsone/a"), upgrade("/wsone/b")])
each("proxy_next_upstream_tries 2 on upgrades", "methodtries", [upgrade("/wstwo/a"), upgrade("/wstwo/b")])
each("proxy_next_upstream_tries from the server, 0 below it", "methodtries",
     [get("/a", ), get("/b"), get("/more/a"), get("/more/b")], target="L1")
