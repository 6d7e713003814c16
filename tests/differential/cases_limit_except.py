"""``limit_except`` (ngx_http_core_limit_except, ngx_http_update_location_config):
a request whose method the block does not name runs under the block's
configuration -- its ``allow``/``deny``, ``auth_basic`` -- and the rest of
the location's, inherited (proxy_pass, root); GET allows HEAD; an unknown
method is limited; a named method goes on as if the block were not there.
Shapes of public configs: a read-only WebDAV / API location
(``limit_except GET { deny all; }``), a static site that only takes
GET/HEAD, a write API open to one network.
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, req

group(Group("limit_except", """
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        root @ROOT@;
        location /ro/ {
            limit_except GET { deny all; }
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /net/ {
            proxy_pass http://127.0.0.1:@B0@;
            limit_except GET POST { allow 10.0.0.0/8; deny all; }
        }
        location /local/ {
            limit_except GET { allow 127.0.0.1; deny all; }
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /static/ { alias @ROOT@/; limit_except GET { deny all; } }
        location /ret/ { limit_except GET { deny all; } return 200 "returned"; }
        location /retok/ { limit_except GET { allow all; } return 200 "returned"; }
        location /outer/ { deny 127.0.0.1; limit_except GET { allow all; } proxy_pass http://127.0.0.1:@B0@; }
    }
""", docroot={"index.html": b"home\\n", "a.txt": b"abc"}))

for id, method, path, expect in [
    ("GET passes", "GET", "/ro/x", 200),
    ("HEAD passes with GET", "HEAD", "/ro/x", 200),
    ("POST is denied", "POST", "/ro/x", 403),
    ("DELETE is denied", "DELETE", "/ro/x", 403),
    ("an unknown method is limited", "FOO", "/ro/x", 403),
    ("a named POST passes", "POST", "/net/x", 200),
    ("PUT outside the network is denied", "PUT", "/net/x", 403),
    ("PUT from the allowed address", "PUT", "/local/x", 200),
    ("static: GET", "GET", "/static/a.txt", 200),
    ("static: POST denied", "POST", "/static/a.txt", 403),
    ("the location's return does not run for a limited method", "POST", "/ret/x", 403),
    ("the location's return for GET", "GET", "/ret/x", 200),
    ("a limited method allowed by the block: no return either", "POST", "/retok/x", 404),
    ("the block's rules replace the location's", "POST", "/outer/x", 200),
    ("the location's rules for a named method", "GET", "/outer/x", 403),
]:
    body = b"x" if method in ("POST", "PUT") else b""
    case(f"limit_except: {id}", "limit_except", req(method, path, body=body), expect=(expect,), body=expect < 300)
