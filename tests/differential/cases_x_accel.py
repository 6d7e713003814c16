"""An upstream's ``X-Accel-Redirect``: nginx redirects the request internally.

ngx_http_upstream_process_headers(): the upstream connection is finalized
(its body discarded), the headers whose ``redirect`` flag is set in
ngx_http_upstream_headers_in[] (Content-Type, Set-Cookie,
Content-Disposition, Cache-Control, Expires, Accept-Ranges) are copied to
the final answer, and the request goes to the URI (its args split off by
ngx_http_parse_unsafe_uri, which answers 404 for ``..``) or to ``@name``;
the method becomes GET unless it was HEAD.  ``proxy_ignore_headers
X-Accel-Redirect`` passes the answer on as it came.  The backend route
``/x-accel-redirect=VALUE`` ("!" for "/", "%3F" for "?") answers with the
header (oracle.py).
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, req, upgrade

_H = frozenset({"set-cookie", "content-disposition", "cache-control", "expires", "etag", "last-modified",
                "x-extra", "x-accel-redirect", "accept-ranges"})

group(Group("x_accel", """
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        root @ROOT@;
        location /app/ { proxy_pass http://127.0.0.1:@B0@; }
        location /ign/ { proxy_ignore_headers X-Accel-Redirect; proxy_pass http://127.0.0.1:@B0@; }
        location /both/ { proxy_ignore_headers X-Accel-Expires X-Accel-Redirect; proxy_pass http://127.0.0.1:@B0@; }
        location /protected/ { internal; alias @ROOT@/files/; }
        location /inner/ { internal; proxy_pass http://127.0.0.1:@B0@; }
        location = /loop { proxy_pass http://127.0.0.1:@B0@/x-accel-redirect=!loop; }
        location = /echo { internal; return 200 "echo $request_method $uri $args\\n"; }
        location @named { return 200 "named $request_method $uri $args\\n"; }
        location /wsapp/ { proxy_pass http://127.0.0.1:@B0@;@UP@}
    }
    server {
        listen 127.0.0.1:@L1@;
        server_name example.com;
        root @ROOT@;
        proxy_ignore_headers X-Accel-Redirect;
        error_page 500 /err500;
        location /app/ { proxy_pass http://127.0.0.1:@B0@; }
        location /redo/ { proxy_ignore_headers Expires; proxy_pass http://127.0.0.1:@B0@; }
        location = /loop { proxy_ignore_headers Vary; proxy_pass http://127.0.0.1:@B0@/x-accel-redirect=!loop; }
        location /protected/ { internal; alias @ROOT@/files/; expires epoch; add_header X-Prot p; }
        location = /err500 { return 200 "err500\\n"; }
    }
""".replace("@UP@", UPGRADE_LOC), docroot={"index.html": b"home\n", "files/a.html": b"<p>protected</p>\n", "files/b.bin": b"binary\n"}))

_F = "/x-accel-redirect=!protected!a.html"
_ALL = "/set-cookie=s=1/content-disposition=attachment/cache-control=no-store/expires=0/etag=%22e%22" \
       "/last-modified=Mon,%2001%20Jan%202001%2000~00~00%20GMT/x-extra=1"

for name, request, expect in [
    ("static file", get("/app" + _F), 200),
    ("static file, HEAD", req("HEAD", "/app" + _F), 200),
    ("static file, POST", req("POST", "/app" + _F, body=b"abc"), 200),
    ("internal location directly", get("/protected/a.html"), 404),
    ("missing file", get("/app/x-accel-redirect=!protected!nope.html"), 404),
    ("unsafe uri", get("/app/x-accel-redirect=!protected!..!index.html"), 404),
    ("proxied location", get("/app/x-accel-redirect=!inner!x"), 200),
    ("proxied location, POST", req("POST", "/app/x-accel-redirect=!inner!p", body=b"abc"), 200),
    ("proxied location, HEAD", req("HEAD", "/app/x-accel-redirect=!inner!h"), 200),
    ("args", get("/app/x-accel-redirect=!echo%3Fa=1&b=2"), 200),
    ("args, POST", req("POST", "/app/x-accel-redirect=!echo%3Fq", body=b"abc"), 200),
    ("named location", get("/app/x-accel-redirect=@named"), 200),
    ("named location with args", get("/app/x-accel-redirect=@named%3Fz=9"), 500),
    ("named location, POST", req("POST", "/app/x-accel-redirect=@named", body=b"abc"), 200),
    ("missing named location", get("/app/x-accel-redirect=@nowhere"), 500),
    ("copied headers", get("/app" + _ALL + _F), 200),
    ("copied headers, missing file", get("/app" + _ALL + "/x-accel-redirect=!protected!nope.html"), 404),
    ("copied headers, proxied", get("/app" + _ALL + "/x-accel-redirect=!inner!y"), 200),
    ("from a 404", get("/app/status/404" + _F), 200),
    ("loop", get("/loop"), 500),
    ("proxy_ignore_headers", get("/ign" + _F), 200),
    ("proxy_ignore_headers, two values", get("/both" + _F), 200),
]:
    # a page nginx makes is compared without its body (it names nginx's version)
    case(f"x_accel: {name}", "x_accel", request, expect=(expect,), fields=_H, body=expect == 200)

for name, request, expect in [
    ("inherited proxy_ignore_headers", get("/app" + _F), 200),
    ("proxy_ignore_headers replaced", get("/redo" + _F), 200),
    ("expires and add_header in the target", get("/redo" + _ALL + _F), 200),
    ("missing named location, error_page", get("/redo/x-accel-redirect=@nowhere"), 500),
    ("loop, no error_page", get("/loop"), 500),
]:
    case(f"x_accel on L1: {name}", "x_accel", request, expect=(expect,), fields=_H | {"x-prot"}, target="L1",
         body=expect == 200 or name.endswith(", error_page"))

for name, request, expect in [
    ("escaped uri", get("/app/x-accel-redirect=!protected!%2561.html"), 200),
    ("escaped unsafe uri", get("/app/x-accel-redirect=!protected!%252E%252E!index.html"), 404),
    ("chunked upstream body", get("/app/chunked" + _F), 200),
    ("status 302 with Location", get("/app/status/302/location=!elsewhere" + _F), 200),
    ("named location, HEAD", req("HEAD", "/app/x-accel-redirect=@named"), 200),
    ("an upgrade answered 200", upgrade("/wsapp/status/200" + _F), 200),
    ("an upgrade answered 200, proxied target", upgrade("/wsapp/status/200/x-accel-redirect=!inner!w"), 200),
    ("upstream Accept-Ranges", get("/app/accept-ranges=none" + _F), 200),
    ("upstream Accept-Ranges, a range", get("/app/accept-ranges=none" + _F, extra="Range: bytes=0-2\r\n"), 206),
]:
    case(f"x_accel: {name}", "x_accel", request, expect=(expect,), fields=_H, body=expect == 200)

# the upstream's body is discarded: the next request on the connection is answered
case("x_accel: keep-alive, two requests", "x_accel", req("GET", "/app" + _F, close=False),
     req("GET", "/app/x-accel-redirect=!inner!k", close=False), get("/app" + _F), expect=(200, 200, 200), fields=_H,
     body=True)
