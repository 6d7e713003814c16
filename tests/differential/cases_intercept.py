"""``proxy_intercept_errors`` (ngx_http_upstream_intercept_errors): an
upstream answer of 300 or more that an ``error_page`` of the location names
is replaced by that error page (the upstream's body dropped, a 401's
WWW-Authenticate kept); a status no error_page names, and everything with
the directive off, is passed on.  Shapes of public configs: a custom 404
page in front of an app, a named fallback for the app's 5xx, ``=200`` to a
SPA shell.
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

group(Group("intercept", """
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        root @ROOT@;
        location / { }
        location = /custom404.html { internal; }
        location @down { return 503 "app is down\\n"; }
        location /app/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_intercept_errors on;
            error_page 404 /custom404.html;
            error_page 500 502 @down;
            error_page 418 =200 /spa.html;
        }
        location /passthrough/ {
            proxy_pass http://127.0.0.1:@B0@;
            error_page 404 /custom404.html;
        }
        location /nopage/ { proxy_pass http://127.0.0.1:@B0@; proxy_intercept_errors on; }
    }
""", docroot={"custom404.html": b"<p>not here</p>\\n", "spa.html": b"spa shell\\n"}))

for id, path, expect in [
    ("404 replaced by the custom page", "/app/status/404", 404),
    ("500 to a named location (its return text keeps the 500)", "/app/status/500", 500),
    ("502 to a named location", "/app/status/502", 502),
    ("=200 to a file", "/app/status/418", 200),
    ("a status no error_page names is passed on", "/app/status/403", 403),
    ("a redirect no error_page names is passed on", "/app/status/302", 302),
    ("a 200 is passed on", "/app/plain", 200),
    ("off: the upstream's 404 is passed on", "/passthrough/status/404", 404),
    ("on without error_page: passed on", "/nopage/status/500", 500),
]:
    case(f"intercept: {id}", "intercept", get(path), expect=(expect,), body=True)
