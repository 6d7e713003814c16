"""Issue 10 item 4: limit_req / limit_conn, request by request (no timing).

Every case keys its zone with its own ``X-Key`` header value, so that cases
of one group never share a bucket.  Rates are ``1r/m``: between two requests
of a case the bucket leaks a few milli-requests at most, so how many pass
does not depend on the machine's speed.  Concurrency (held connections,
websocket tunnels, several workers) and delays are in ``test_limits_workers.py``.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, each, group
from oracle import Group, get, upgrade


def keyed(path: str, key: str, n: int, host: str = "example.com") -> list[bytes]:
    return [get(path, host, extra=f"X-Key: {key}\r\n") for _ in range(n)]


group(Group("ratelimits", """
    limit_req_zone $http_x_key zone=req:1m rate=1r/m;
    limit_req_zone $http_x_key zone=req2:64k rate=1r/m;
    limit_conn_zone $http_x_key zone=conn:1m;
    limit_req_zone $server_name zone=bysrv:64k rate=1r/m;
    limit_req_zone $binary_remote_addr zone=byaddr:64k rate=1r/m;
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        location /nodelay { limit_req zone=req burst=2 nodelay; proxy_pass http://127.0.0.1:@B0@; }
        location /noburst { limit_req zone=req; proxy_pass http://127.0.0.1:@B0@; }
        location /status { limit_req zone=req burst=1 nodelay; limit_req_status 429; proxy_pass http://127.0.0.1:@B0@; }
        location /dry { limit_req zone=req; limit_req_dry_run on; proxy_pass http://127.0.0.1:@B0@; }
        location /two {
            limit_req zone=req burst=3 nodelay;
            limit_req zone=req2 burst=1 nodelay;
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /conn { limit_conn conn 1; proxy_pass http://127.0.0.1:@B0@; }
        location /both { limit_req zone=req burst=1 nodelay; limit_conn conn 1; limit_conn_status 429; proxy_pass http://127.0.0.1:@B0@; }
        location /page { limit_req zone=req; error_page 503 = @limited; proxy_pass http://127.0.0.1:@B0@; }
        location @limited { return 200 "limited\\n"; }
        location /uripage { limit_req zone=req; error_page 503 /fallback; proxy_pass http://127.0.0.1:@B0@; }
        location /fallback { limit_req zone=req; proxy_pass http://127.0.0.1:@B1@; }
        location /ret { limit_req zone=req; return 200 "return runs before the limits\\n"; }
        location /deny { limit_req zone=req burst=1 nodelay; deny all; }
        location /ws { limit_req zone=req burst=1 nodelay; proxy_pass http://127.0.0.1:@B0@; """ + UPGRADE_LOC + """ }
        location /addr { limit_req zone=byaddr burst=1 nodelay; proxy_pass http://127.0.0.1:@B0@; }
        location /vars {
            limit_req zone=req;
            limit_req_dry_run on;
            limit_conn conn 5;
            proxy_set_header X-Limit-Req $limit_req_status;
            proxy_set_header X-Limit-Conn $limit_conn_status;
            proxy_pass http://127.0.0.1:@B0@;
        }
    }
    server {
        listen 127.0.0.1:@L1@;
        server_name srv.test;
        limit_req zone=bysrv burst=1 nodelay;
        limit_req_status 429;
        location / { proxy_pass http://127.0.0.1:@B0@; }
        location /own { limit_req zone=req; proxy_pass http://127.0.0.1:@B0@; }
    }
    server {
        listen 127.0.0.1:@L2@;
        limit_req zone=req burst=1 nodelay;
        location /only { proxy_pass http://127.0.0.1:@B0@; }
    }
"""))

each("burst=2 nodelay: three pass at once, the fourth gets 503", "ratelimits",
     keyed("/nodelay", "a1", 4), expect=(200, 200, 200, 503))
each("no burst: one passes, the next 503", "ratelimits", keyed("/noburst", "a2", 3), expect=(200, 503, 503))
each("limit_req_status 429", "ratelimits", keyed("/status", "a3", 3), expect=(200, 200, 429))
each("limit_req_dry_run: everything passes", "ratelimits", keyed("/dry", "a4", 4), expect=(200, 200, 200, 200))
each("empty key is not limited", "ratelimits", [get("/noburst") for _ in range(4)], expect=(200, 200, 200, 200))
each("two zones: the tighter one refuses", "ratelimits", keyed("/two", "a5", 4), expect=(200, 200, 503, 503))
each("limit_conn: sequential connections each get the slot back", "ratelimits",
     keyed("/conn", "a6", 3), expect=(200, 200, 200))
each("limit_req decides before limit_conn", "ratelimits", keyed("/both", "a7", 3), expect=(200, 200, 503))
each("error_page 503 = @named answers a limited request", "ratelimits",
     keyed("/page", "a8", 3), expect=(200, 200, 200))
each("error_page URI: the redirect is not limited again", "ratelimits",
     keyed("/uripage", "a9", 3), expect=(200, 503, 503))
each("return runs in the rewrite phase, before limits", "ratelimits", keyed("/ret", "a10", 3), expect=(200, 200, 200))
each("limits run before deny (preaccess before access)", "ratelimits",
     keyed("/deny", "a11", 3), expect=(403, 403, 503))
each("websocket upgrades count as requests", "ratelimits",
     [upgrade("/ws", extra="X-Key: a12\r\n") for _ in range(3)], expect=(101, 101, 503))
each("$binary_remote_addr keys by client address", "ratelimits", keyed("/addr", "any", 3), expect=(200, 200, 503))
each("server-level limit_req keyed by $server_name, inherited", "ratelimits",
     [get("/", "srv.test") for _ in range(3)], target="L1", expect=(200, 200, 429))
each("a location's own limit_req replaces the server's", "ratelimits",
     [get("/own", "srv.test", extra="X-Key: a14\r\n") for _ in range(2)], target="L1", expect=(200, 429))
case("HEAD of a limited request", "ratelimits",
     b"HEAD /noburst HTTP/1.1\r\nHost: example.com\r\nX-Key: a15\r\n\r\n",
     b"HEAD /noburst HTTP/1.1\r\nHost: example.com\r\nX-Key: a15\r\nConnection: close\r\n\r\n",
     expect=(200, 503))
case("keep-alive: the connection stays open after a 503", "ratelimits",
     b"GET /noburst HTTP/1.1\r\nHost: example.com\r\nX-Key: a16\r\n\r\n",
     b"GET /noburst HTTP/1.1\r\nHost: example.com\r\nX-Key: a16\r\n\r\n",
     b"GET /noburst HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
     expect=(200, 503, 200))
each("$limit_req_status / $limit_conn_status reach the backend", "ratelimits",
     keyed("/vars", "a17", 2) + [get("/vars")], expect=(200, 200, 200))
each("no location matches: the server's limits still run before the 404", "ratelimits",
     keyed("/elsewhere", "a18", 3), target="L2", expect=(404, 404, 503))
