"""The differential case table: confs (groups) and the requests sent to both servers.

Each group is one nginx.conf both Debian's nginx 1.22 and ngxws run; each
case names its group, the bytes to send, and (as a sanity check that the
case tests what it says) the status codes nginx is expected to answer.
Item numbers refer to issue 4.
"""

from __future__ import annotations

import base64
from pathlib import Path

from oracle import Case, Exchange, Group, get, req, upgrade

G: dict[str, Group] = {}
CASES: list[Case] = []


def group(g: Group) -> Group:
    G[g.name] = g
    return g


def case(
    id: str,
    grp: str,
    *requests: bytes,
    expect: tuple[int, ...] = (),
    target: str = "L0",
    ws: bool = False,
    idle: float | None = None,
    pings: int = 0,
    xfail: str | None = None,
    fields: frozenset[str] = frozenset(),
    raw_tail: bytes = b"",
    body: bool = False,
    tls: bool = False,
    flood: bool = False,
) -> None:
    CASES.append(
        Case(
            id,
            grp,
            [Exchange(list(requests), target=target, ws=ws, idle=idle, keepalive_pings=pings, raw_tail=raw_tail,
                      tls=tls, flood=flood)],
            expect=expect,
            xfail=xfail,
            fields=fields,
            body=body,
        )
    )


def each(id: str, grp: str, requests: list[bytes], expect: tuple[int, ...] = (), target: str = "L0") -> None:
    """One connection per request (balancing sequences)."""
    CASES.append(Case(id, grp, [Exchange([r], target=target) for r in requests], expect=expect))


def basic(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Authorization: Basic {token}\r\n"


UPGRADE_LOC = """
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
"""

# --- item 1: server selection ------------------------------------------------------

group(Group("servers", """
    server {
        listen 127.0.0.1:@L0@;
        server_name exact.example.com;
        location / { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Srv exact; }
    }
    server {
        listen 127.0.0.1:@L0@;
        server_name *.example.com;
        location / { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Srv leading; }
    }
    server {
        listen 127.0.0.1:@L0@;
        server_name www.example.*;
        location / { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Srv trailing; }
    }
    server {
        listen 127.0.0.1:@L0@;
        server_name ~^api(\\d+)\\.test$ .dotted.org;
        location / { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Srv regex; }
    }
    server {
        listen 127.0.0.1:@L0@ default_server;
        server_name default.test;
        location / { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Srv default; }
    }
    server {
        listen @L1@;
        server_name _;
        location / { return 200 "bare port\\n"; }
    }
    server {
        listen [::]:@L2@;
        location / { return 200 "v6 $server_port\\n"; }
    }
    server {
        listen unix:@DIR@/front.sock;
        location / { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Srv unix; proxy_set_header X-Addr $remote_addr; }
    }
    server {
        listen 127.0.0.1:@L3@;
        server_name first.test;
        location / { return 200 "first is default\\n"; }
    }
    server {
        listen 127.0.0.1:@L3@;
        server_name second.test;
        location / { return 200 "second\\n"; }
    }
"""))
case("exact name", "servers", get("/", "exact.example.com"), expect=(200,))
case("exact name wins over wildcard, any case, port and dot", "servers", get("/", "EXACT.Example.com.:80"), expect=(200,))
case("leading wildcard", "servers", get("/", "a.b.example.com"), expect=(200,))
case("trailing wildcard", "servers", get("/", "www.example.net"), expect=(200,))
case("regex name", "servers", get("/", "api42.test"), expect=(200,))
case("dot name matches bare domain", "servers", get("/", "dotted.org"), expect=(200,))
case("dot name matches subdomain", "servers", get("/", "x.dotted.org"), expect=(200,))
case("no match: default_server", "servers", get("/", "nothing.test"), expect=(200,))
case("no Host (HTTP/1.0): default_server", "servers", b"GET / HTTP/1.0\r\n\r\n", expect=(200,))
case("bare port listen", "servers", get("/", "whatever"), target="L1", expect=(200,))
case("[::] listen over IPv6", "servers", get("/", "whatever"), target="V6:2", expect=(200,))
case("unix: listen", "servers", get("/", "whatever"), target="UNIX:front.sock", expect=(200,))
case("first server of a socket is its default", "servers", get("/", "other.test"), target="L3", expect=(200,))
case("second server by name", "servers", get("/", "second.test"), target="L3", expect=(200,))

# --- item 2: location matching ----------------------------------------------------

group(Group("locations", """
    server {
        listen 127.0.0.1:@L0@;
        location = /exact { return 200 "exact\\n"; }
        location / { return 200 "root\\n"; }
        location /docs/ { return 200 "docs\\n"; }
        location /docs/old/ { return 200 "docs-old\\n"; }
        location ^~ /static/ { return 200 "static\\n"; }
        location ~ \\.php$ { return 200 "php\\n"; }
        location ~* \\.(gif|jpg)$ { return 200 "image\\n"; }
        location /nest/ {
            location ~ ^/nest/deep/(\\w+) { return 200 "nested $1\\n"; }
            location /nest/inner/ { return 200 "nest-inner\\n"; }
            return 200 "nest\\n";
        }
        location ~ ^/cap/(\\w+)/(\\d+)$ { proxy_pass http://127.0.0.1:@B0@/got/$1?id=$2; }
        location /ws/ { proxy_pass http://127.0.0.1:@B0@; }
        location @named { return 200 "named\\n"; }
    }
"""))
case("= exact", "locations", get("/exact"), expect=(200,))
case("= exact does not match longer", "locations", get("/exact/"), expect=(200,))
case("longest prefix", "locations", get("/docs/old/a"), expect=(200,))
case("regex beats prefix", "locations", get("/docs/old/a.php"), expect=(200,))
case("^~ stops regexes", "locations", get("/static/a.php"), expect=(200,))
case("~* caseless", "locations", get("/docs/a.JPG"), expect=(200,))
case("nested regex with capture", "locations", get("/nest/deep/abc"), expect=(200,))
case("nested prefix", "locations", get("/nest/inner/x"), expect=(200,))
case("regex captures in proxy_pass", "locations", get("/cap/foo/42?x=1"), expect=(200,))
case("/ws auto-redirect 301", "locations", get("/ws"), expect=(301,))
case("/ws auto-redirect keeps args", "locations", get("/ws?a=1&b=2"), expect=(301,))
case("/ws/ proxied", "locations", get("/ws/"), expect=(200,))
case("matching on the normalised URI", "locations", get("/%64ocs/./x/../old//y"), expect=(200,))
case("@named is not a URI", "locations", get("/@named"), expect=(200,))
case("URI above root is 400", "locations", get("/../x"), expect=(400,))

# --- item 3: proxy_pass and upstreams -----------------------------------------------

group(Group("upstreams", f"""
    upstream rr {{ server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; }}
    upstream weighted {{ server 127.0.0.1:@B0@ weight=3; server 127.0.0.1:@B1@; }}
    upstream withdead {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; server 127.0.0.1:@B2@; }}
    upstream alldead {{ server 127.0.0.1:@DEAD@; server 127.0.0.2:@DEAD@; }}
    upstream backup {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B2@ backup; }}
    upstream down {{ server 127.0.0.1:@B0@ down; server 127.0.0.1:@B1@; }}
    upstream lc {{ least_conn; server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; }}
    upstream iph {{ ip_hash; server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; server 127.0.0.1:@B2@; }}
    upstream hashed {{ hash $remote_addr; server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; server 127.0.0.1:@B2@; }}
    upstream hashuri {{ hash $request_uri; server 127.0.0.1:@B0@; server 127.0.0.1:@B1@; server 127.0.0.1:@B2@; }}
    upstream noretry {{ server 127.0.0.1:@DEAD@; server 127.0.0.1:@B1@; }}
    server {{
        listen 127.0.0.1:@L0@;
        location /rr/ {{ proxy_pass http://rr; }}
        location /w/ {{ proxy_pass http://weighted; }}
        location /withdead/ {{ proxy_pass http://withdead; }}
        location /alldead/ {{ proxy_pass http://alldead; }}
        location /backup/ {{ proxy_pass http://backup; }}
        location /down/ {{ proxy_pass http://down; }}
        location /lc/ {{ proxy_pass http://lc; }}
        location /iph/ {{ proxy_pass http://iph; }}
        location /hashed/ {{ proxy_pass http://hashed; }}
        location /hashuri/ {{ proxy_pass http://hashuri; }}
        location /noretry/ {{ proxy_next_upstream off; proxy_pass http://noretry; }}
        location /uri/ {{ proxy_pass http://127.0.0.1:@B0@/new/; }}
        location /nouri/ {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /root/ {{ proxy_pass http://127.0.0.1:@B0@/; }}
        location = /exactpass {{ proxy_pass http://127.0.0.1:@B0@/other; }}
        location /var/ {{ proxy_pass http://127.0.0.1:@B0@$request_uri; }}
        location /varuri/ {{ proxy_pass http://127.0.0.1:@B0@/fixed$is_args$args; }}
        location /unixup/ {{ proxy_pass http://unix:@BSOCK@:/u/; }}
        location /rt/ {{ proxy_read_timeout 1s; proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_pass http://rr; }}
    }}
"""))
each("round robin", "upstreams", [get("/rr/1"), get("/rr/2"), get("/rr/3"), get("/rr/4")], expect=(200,) * 4)
each("weight", "upstreams", [get(f"/w/{i}") for i in range(8)], expect=(200,) * 8)
each("dead peer skipped (next_upstream error)", "upstreams", [get(f"/withdead/{i}") for i in range(4)], expect=(200,) * 4)
each("every peer fails: 502", "upstreams", [get("/alldead/1"), get("/alldead/2")], expect=(502, 502))
each("backup used when primaries fail", "upstreams", [get("/backup/1"), get("/backup/2")], expect=(200, 200))
each("down peer never used", "upstreams", [get(f"/down/{i}") for i in range(3)], expect=(200,) * 3)
each("least_conn", "upstreams", [get(f"/lc/{i}") for i in range(4)], expect=(200,) * 4)
each("ip_hash stable choice", "upstreams", [get(f"/iph/{i}") for i in range(3)], expect=(200,) * 3)
each("hash $remote_addr stable choice", "upstreams", [get(f"/hashed/{i}") for i in range(3)], expect=(200,) * 3)
each("hash $request_uri", "upstreams", [get(f"/hashuri/{i}") for i in range(6)], expect=(200,) * 6)
each("proxy_next_upstream off", "upstreams", [get("/noretry/1"), get("/noretry/2")], expect=(502, 200))
case("URI part replaces the location prefix", "upstreams", get("/uri/a/b?q=1"), expect=(200,))
case("no URI part: request URI as sent", "upstreams", get("/nouri/a%20b/../c?q=%41"), expect=(200,))
case("URI part / with encoded chars", "upstreams", get("/root/a%20b/c%3F?x"), expect=(200,))
case("= location with URI part", "upstreams", get("/exactpass?a=1"), expect=(200,))
case("proxy_pass with $request_uri", "upstreams", get("/var/x/../y?z=1"), expect=(200,))
case("proxy_pass with URI and variables", "upstreams", get("/varuri/anything?k=v"), expect=(200,))
case("unix: upstream", "upstreams", get("/unixup/p?q"), expect=(200,))
case("upstream read timeout: 504", "upstreams", get("/rt/hang"), expect=(504,))
case("websocket through an upstream block", "upstreams", upgrade("/ws/chat"), expect=(101,), ws=True)
case("chunked upstream answer", "upstreams", get("/nouri/chunked"), expect=(200,))
case("close-delimited upstream answer to HTTP/1.1", "upstreams", get("/nouri/eof"), expect=(200,))
case("close-delimited upstream answer to HTTP/1.0", "upstreams", get("/nouri/eof", version="1.0"), expect=(200,))
case("upstream error status passed", "upstreams", get("/nouri/status/503"), expect=(503,))
case("HEAD passed", "upstreams", req("HEAD", "/nouri/h"), expect=(200,))

# --- item 4: headers -------------------------------------------------------------------

group(Group("headers", """
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    proxy_set_header X-From-Http http-level;
    server {
        listen 127.0.0.1:@L0@;
        server_name headers.test alias.test;
        location /inherit/ { proxy_pass http://127.0.0.1:@B0@; }
        location /set/ {
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Req $request_uri;
            proxy_set_header X-Server $server_name;
            proxy_set_header X-UA $http_user_agent;
            proxy_set_header X-Missing $http_x_not_there;
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /empty/ {
            proxy_set_header Accept-Encoding "";
            proxy_set_header User-Agent "";
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /v11/ {
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /nohdrs/ { proxy_pass_request_headers off; proxy_pass http://127.0.0.1:@B0@; }
        location /hostport/ { proxy_set_header Host $http_host; proxy_pass http://127.0.0.1:@B0@; }
    }
    server {
        listen 127.0.0.1:@L1@;
        proxy_set_header X-Server-Level s;
        location / { proxy_pass http://127.0.0.1:@B0@; }
        location /loc/ { proxy_set_header X-Loc l; proxy_pass http://127.0.0.1:@B0@; }
    }
"""))
UA = "User-Agent: diff/1\r\n"
case("defaults plus http-level header", "headers", get("/inherit/a"), expect=(200,))
case("server level replaces http level", "headers", get("/a"), target="L1", expect=(200,))
case("location level replaces server level", "headers", get("/loc/a"), target="L1", expect=(200,))
case("real-config variables", "headers",
     req("GET", "/set/p?q=1", host="Headers.Test:8080", headers=UA + "X-Forwarded-For: 10.0.0.1\r\n"), expect=(200,))
case("$server_name is the first name", "headers", get("/set/x", host="alias.test"), expect=(200,))
case("empty value hides the client header", "headers",
     req("GET", "/empty/", headers=UA + "Accept-Encoding: gzip\r\nAccept: */*\r\n"), expect=(200,))
case("hop-by-hop headers dropped", "headers",
     req("GET", "/inherit/h", headers="Keep-Alive: 300\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nX-Dup: 1\r\nX-Dup: 2\r\n"),
     expect=(200,))
case("HTTP/1.1 upstream with map $connection_upgrade (plain)", "headers", get("/v11/x"), expect=(200,))
case("websocket with map $connection_upgrade", "headers", upgrade("/v11/ws", extra="Origin: http://x\r\n"), expect=(101,), ws=True)
case("proxy_pass_request_headers off", "headers", req("GET", "/nohdrs/", headers=UA + "Cookie: a=b\r\n"), expect=(200,))
case("$http_host keeps the port", "headers", get("/hostport/", host="h.test:81"), expect=(200,))
case("POST body with Content-Length", "headers", req("POST", "/inherit/post", body=b"a=1&b=2"), expect=(200,))
case("chunked request body is buffered and sent with Content-Length", "headers",
     req("POST", "/inherit/chunk", headers="Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
     expect=(200,))
case("absolute-form request target", "headers",
     b"GET http://abs.test/inherit/abs?x HTTP/1.1\r\nHost: ignored.test\r\nConnection: close\r\n\r\n", expect=(200,))
case("HTTP/1.0 keep-alive request", "headers",
     b"GET /inherit/k HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", b"GET /inherit/k2 HTTP/1.0\r\nHost: a\r\n\r\n",
     expect=(200, 200))
case("two keep-alive requests on one connection", "headers",
     req("GET", "/inherit/1", close=False), req("GET", "/inherit/2"), expect=(200, 200))

# --- item 5: timeouts and sizes --------------------------------------------------------

group(Group("limits", f"""
    server {{
        listen 127.0.0.1:@L0@;
        client_max_body_size 10;
        large_client_header_buffers 2 1k;
        client_header_timeout 1s;
        keepalive_timeout 1s;
        location / {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /big/ {{ client_max_body_size 1m; proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_read_timeout 1s; proxy_pass http://127.0.0.1:@B0@; }}
        location /ws3600/ {{ {UPGRADE_LOC} proxy_read_timeout 3600s; proxy_pass http://127.0.0.1:@B0@; }}
        location /ct/ {{ proxy_connect_timeout 1s; proxy_pass http://127.0.0.1:@DEAD@; }}
    }}
"""))
case("body within client_max_body_size", "limits", req("POST", "/a", body=b"0123456789"), expect=(200,))
case("body over client_max_body_size: 413", "limits", req("POST", "/a", body=b"0123456789A"), expect=(413,))
case("location raises client_max_body_size", "limits", req("POST", "/big/a", body=b"x" * 5000), expect=(200,))
case("declared length over the limit: 413 before the body", "limits",
     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", expect=(413,))
case("URI over large_client_header_buffers: 414", "limits", get("/" + "u" * 1100), expect=(414,))
case("header line over large_client_header_buffers: 400", "limits",
     req("GET", "/", headers="X-Long: " + "h" * 1100 + "\r\n"), expect=(400,))
case("head spread over both large buffers", "limits",
     req("GET", "/", headers="".join(f"X-H{i}: {'h' * 900}\r\n" for i in range(3))), expect=(200,))
case("head needing a third large buffer: 400", "limits",
     req("GET", "/", headers="".join(f"X-H{i}: {'h' * 900}\r\n" for i in range(4))), expect=(400,))
case("head within buffers", "limits", req("GET", "/", headers="X-Long: " + "h" * 900 + "\r\n"), expect=(200,))
case("keepalive_timeout closes an idle connection", "limits",
     req("GET", "/ka", close=False), idle=3.0, expect=(200,))
case("client_header_timeout closes a slow head", "limits", idle=3.0, raw_tail=b"GET / HTTP/1.1\r\nHost: x\r\n")
case("connect refused: 502", "limits", get("/ct/"), expect=(502,))
case("idle websocket closed after proxy_read_timeout", "limits", upgrade("/ws/idle"), ws=True, idle=3.0, expect=(101,))
case("websocket traffic keeps the tunnel open", "limits", upgrade("/ws/busy"), ws=True, idle=2.5, pings=5, expect=(101,))
case("client-only traffic to a silent upstream", "limits", upgrade("/ws/mute"), idle=3.0, pings=6, expect=(101,))
case("proxy_read_timeout 3600s idiom keeps the tunnel", "limits", upgrade("/ws3600/x"), ws=True, idle=2.0, expect=(101,))

# --- item 7: access control -----------------------------------------------------------

HTPASSWD = "\n".join([
    "apr:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/",
    "md5:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1",
    "sha256:$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.",
    "sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
    "ssha:{SSHA}gVK8WC9YyFT1gMsQHTGCgT3sSv5zYWx0",
    "plain:{PLAIN}secret",
    "# a comment",
    "des:abNANd1rDfiNc",
    "",
])

group(Group("access", f"""
    server {{
        listen 127.0.0.1:@L0@;
        location /allow/ {{ allow 127.0.0.1; deny all; proxy_pass http://127.0.0.1:@B0@; }}
        location /deny/ {{ deny 127.0.0.0/8; allow all; proxy_pass http://127.0.0.1:@B0@; }}
        location /v6only/ {{ allow ::1; deny all; proxy_pass http://127.0.0.1:@B0@; }}
        location /return-first/ {{ deny all; return 200 "return runs before access\\n"; }}
        location /ret403/ {{ return 403; }}
        location /text/ {{ return 200 "hello $remote_addr $request_uri\\n"; }}
        location /rel/ {{ return 301 /elsewhere?x=$arg_a; }}
        location /abs/ {{ return https://example.org/x; }}
        location /teapot/ {{ return 418; }}
        location /auth/ {{
            auth_basic "Restricted Area";
            auth_basic_user_file htpasswd;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /wsauth/ {{
            auth_basic "ws";
            auth_basic_user_file htpasswd;
            {UPGRADE_LOC}
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /authoff/ {{
            auth_basic off;
            proxy_pass http://127.0.0.1:@B0@;
        }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        auth_basic "server";
        auth_basic_user_file htpasswd;
        location / {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /open/ {{ auth_basic off; proxy_pass http://127.0.0.1:@B0@; }}
    }}
    server {{
        listen 127.0.0.1:@L2@;
        return 301 https://$host$request_uri;
    }}
"""), )
G["access"].files["htpasswd"] = HTPASSWD
case("allow 127.0.0.1", "access", get("/allow/"), expect=(200,))
case("deny CIDR: 403", "access", get("/deny/"), expect=(403,))
case("allow ::1 only, from IPv4: 403", "access", get("/v6only/"), expect=(403,))
case("return runs before deny", "access", get("/return-first/"), expect=(200,))
case("return 403", "access", get("/ret403/"), expect=(403,))
case("return text with variables", "access", get("/text/p?q"), expect=(200,))
case("return 301 relative URL", "access", get("/rel/?a=5"), expect=(301,))
case("return URL is a 302", "access", get("/abs/"), expect=(302,))
case("return 418", "access", get("/teapot/"), expect=(418,), body=True)
case("auth_basic without credentials: 401", "access", get("/auth/"), expect=(401,))
case("auth_basic wrong password: 401", "access", get("/auth/", extra=basic("plain", "nope")), expect=(401,))
case("auth_basic unknown user: 401", "access", get("/auth/", extra=basic("nobody", "secret")), expect=(401,))
for user in ("apr", "md5", "sha256", "sha", "ssha", "plain", "des"):
    case(f"auth_basic {user} hash", "access", get("/auth/", extra=basic(user, "secret")), expect=(200,))
case("auth_basic garbage header: 401", "access", get("/auth/", extra="Authorization: Basic !!!\r\n"), expect=(401,))
case("auth_basic on a websocket", "access", upgrade("/wsauth/x", extra=basic("apr", "secret")), ws=True, expect=(101,))
case("auth_basic websocket refused", "access", upgrade("/wsauth/x"), expect=(401,))
case("auth_basic off", "access", get("/authoff/"), expect=(200,))
case("server-level auth_basic", "access", get("/x"), target="L1", expect=(401,))
case("server-level auth_basic, location off", "access", get("/open/"), target="L1", expect=(200,))
case("server-level return 301 to https", "access", get("/p?q=1", host="site.test"), target="L2", expect=(301,))

# --- item 9: lines real files carry --------------------------------------------------

group(Group("realworld", f"""
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    map $host $backend {{
        default 127.0.0.1:@B1@;
        b0.test 127.0.0.1:@B0@;
    }}
    include mime.types.conf;
    default_type application/octet-stream;
    resolver 127.0.0.1 valid=30s;
    sendfile on;
    server {{
        listen 127.0.0.1:@L0@;
        server_name _;
        error_page 418 = @websocket;
        location / {{
            if ($http_upgrade = "websocket") {{
                return 418;
            }}
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location @websocket {{
            {UPGRADE_LOC}
            proxy_pass http://127.0.0.1:@B1@;
        }}
        location /dyn/ {{ proxy_pass http://$backend; }}
        location /text/ {{ return 200 "typed\\n"; }}
    }}
""", main="user root;\nload_module /usr/lib/nginx/modules/ngx_http_echo_module.so;\nworker_processes 1;\n",
    files={"mime.types.conf": "types { text/html html; }\n"}))
case("if ($http_upgrade) return 418 -> error_page @named: plain", "realworld", get("/plain"), expect=(200,))
case("if ($http_upgrade) return 418 -> error_page @named: websocket", "realworld", upgrade("/sock"), ws=True, expect=(101,))
case("proxy_pass $variable from map (default)", "realworld", get("/dyn/x?y"), expect=(200,))
case("proxy_pass $variable from map (by host)", "realworld", get("/dyn/x", host="b0.test"), expect=(200,))
case("default_type applies to return text", "realworld", get("/text/"), expect=(200,))

# --- error_page targets (item 9) and combinations -----------------------------------

group(Group("errorpages", f"""
    upstream gone {{ server 127.0.0.1:@DEAD@; }}
    server {{
        listen 127.0.0.1:@L0@;
        error_page 404 = @fallback;
        location /api/ {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /down/ {{
            error_page 502 504 = @maintenance;
            proxy_pass http://gone;
        }}
        location /denied/ {{
            deny all;
            error_page 403 /sorry/;
        }}
        location /sorry/ {{ return 200 "sorry page\\n"; }}
        location /moved/ {{
            error_page 404 https://elsewhere.test/;
            return 404;
        }}
        location /recode/ {{
            error_page 403 =404 /sorry/;
            deny all;
        }}
        location /both/ {{
            deny all;
            auth_basic "x";
            auth_basic_user_file htpasswd;
            return 200 "never\\n";
        }}
        location /both2/ {{
            allow all;
            auth_basic "x";
            auth_basic_user_file missing.htpasswd;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location ~ ^/wsre/(\\w+)$ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@/sock/$1; }}
        location @fallback {{ proxy_pass http://127.0.0.1:@B1@; }}
        location @maintenance {{ return 503 "maintenance\\n"; }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        if ($http_x_block) {{ return 403; }}
        if ($request_uri ~* "^/(CAP)/(\\d+)") {{ return 200 "cap $1 $2\\n"; }}
        location / {{ proxy_pass http://127.0.0.1:@B0@; }}
    }}
""", files={"htpasswd": HTPASSWD}))
case("error_page 404 = @named proxies", "errorpages", get("/nothing/here?x=1"), expect=(200,))
case("error_page 502 = @named on a dead upstream", "errorpages", get("/down/x"), expect=(503,), body=True)
case("error_page 403 /uri: internal redirect", "errorpages", get("/denied/x"), expect=(403,), body=True)
case("error_page to a URL is a 302", "errorpages", get("/moved/x"), expect=(302,))
case("error_page 403 =404 /uri", "errorpages", get("/recode/x"), expect=(404,), body=True)
case("return runs before deny and auth_basic", "errorpages", get("/both/"), expect=(200,))
case("auth_basic with a missing user file: 403", "errorpages", get("/both2/", extra=basic("a", "b")), expect=(403,))
case("websocket to a regex location with captures", "errorpages", upgrade("/wsre/room1"), ws=True, expect=(101,))
case("server-level if: return 403", "errorpages", get("/x", extra="X-Block: 1\r\n"), target="L1", expect=(403,))
case("server-level if: empty variable is false", "errorpages", get("/x", extra="X-Block: \r\n"), target="L1", expect=(200,))
case("server-level if with regex captures", "errorpages", get("/cap/42"), target="L1", expect=(200,))

# --- request-line and head edge cases (items 1, 4, 5) ----------------------------------

case("absolute-form target selects the server by its host", "servers",
     b"GET http://exact.example.com/p HTTP/1.1\r\nHost: nothing.test\r\nConnection: close\r\n\r\n", expect=(200,))
case("duplicate Host: 400", "servers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", expect=(400,))
case("invalid Host: 400", "servers", get("/", "bad/host"), expect=(400,))
case("HTTP/2.0 request line: 505", "servers", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", expect=(505,))
case("HEAD to return text: no body", "locations", req("HEAD", "/exact"), expect=(200,))
case("websocket without the upgrade headers is a plain request", "upstreams", upgrade("/nouri/plainws"),
     get("/nouri/after"), expect=(200, 200))
case("websocket through an upstream with a dead peer", "upstreams", upgrade("/ws/again"), ws=True, expect=(101,))
case("websocket with a body-less POST is not upgraded", "headers",
     b"POST /v11/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
     ws=True)
case("pipelined requests answered in order", "headers",
     req("GET", "/inherit/p1", close=False) + req("POST", "/inherit/p2", body=b"xy", close=False) + req("GET", "/inherit/p3"),
     b"", b"", expect=(200, 200, 200))
case("Expect: 100-continue", "headers",
     req("POST", "/inherit/expect", headers="Expect: 100-continue\r\n", body=b"data"), expect=(200,))

# --- nginx 1.22 forms: "ssl on;", listen ... ipv6only=off; tunnel send timeouts ---------

_SSL = Path(__file__).resolve().parent.parent / "configs" / "ssl"

group(Group("legacy", f"""
    server {{
        listen 127.0.0.1:@L0@;
        ssl on;
        ssl_certificate cert.pem;
        ssl_certificate_key key.pem;
        location / {{ return 200 "ssl on $scheme\\n"; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@; }}
    }}
    server {{
        listen 127.0.0.1:@L3@;
        server_name plain.test;
        location / {{ return 200 "plain default $scheme\\n"; }}
    }}
    server {{
        listen 127.0.0.1:@L3@;
        server_name tls.test;
        ssl on;
        ssl_certificate cert.pem;
        ssl_certificate_key key.pem;
        location / {{ return 200 "not the default $scheme\\n"; }}
    }}
    server {{
        listen [::]:@L1@ ipv6only=off;
        location / {{ return 200 "dual stack $server_port\\n"; }}
    }}
    server {{
        listen 127.0.0.1:@L2@;
        location /ws/ {{ {UPGRADE_LOC} proxy_send_timeout 1s; proxy_pass http://127.0.0.1:@B0@; }}
    }}
""", files={"cert.pem": (_SSL / "cert.pem").read_text(), "key.pem": (_SSL / "key.pem").read_text()}))
case("ssl on: TLS on the server's listen", "legacy", get("/"), tls=True, expect=(200,), body=True)
case("ssl on: plain HTTP to it is a 400", "legacy", get("/"), expect=(400,))
case("ssl on: a websocket over TLS", "legacy", upgrade("/ws/x"), tls=True, ws=True, expect=(101,))
case("ssl on in a server that is not the socket's default: plain", "legacy",
     get("/", host="tls.test"), target="L3", expect=(200,), body=True)
case("ipv6only=off: an IPv4 client", "legacy", get("/"), target="L1", expect=(200,), body=True)
case("ipv6only=off: an IPv6 client", "legacy", get("/"), target="V6:1", expect=(200,), body=True)
case("proxy_send_timeout closes a tunnel whose upstream stopped reading", "legacy", upgrade("/ws/deaf"),
     target="L2", flood=True, expect=(101,))


# --- more tables: every ``cases_*.py`` beside this file adds its groups and
# cases through group()/case() above (one file per topic, so topics grow
# without touching this one).
def _load_more() -> None:
    import importlib

    for extra in sorted(Path(__file__).parent.glob("cases_*.py")):
        importlib.import_module(extra.stem)


_load_more()
