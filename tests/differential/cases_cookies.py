"""``proxy_cookie_domain`` / ``proxy_cookie_path`` (ngx_http_proxy_rewrite_cookie):
the Domain and Path of an upstream's Set-Cookie rewritten by the first
rule that matches -- a domain compared whole in any case (a leading dot
kept), a path by prefix, a regex (caseless for domains) replacing the whole
value with its captures -- and the cookie then written back as nginx does
("; " between attributes); a cookie no rule touches passes unchanged, as
does everything under ``off``.  Shape of public configs that put an app
under a subpath or behind another host name.
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

_C = frozenset({"set-cookie"})

group(Group("cookies", """
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        location /app/ {
            proxy_pass http://127.0.0.1:@B0@/;
            proxy_cookie_domain backend.internal example.com;
            proxy_cookie_path / /app/;
        }
        location /vars/ {
            proxy_pass http://127.0.0.1:@B0@/;
            proxy_cookie_domain .backend.internal $host;
            proxy_cookie_path ~^/(.*)$ /vars/$1;
        }
        location /re/ { proxy_pass http://127.0.0.1:@B0@/; proxy_cookie_domain ~^(.+)\\.internal$ $1.test; }
        location /off/ { proxy_pass http://127.0.0.1:@B0@/; proxy_cookie_path off; }
    }
"""))

_SC = "/set-cookie="
for id, path in [
    ("domain and path rewritten", f"/app{_SC}sid=1%3B%20Domain=backend.internal%3B%20Path=!%3B%20HttpOnly"),
    ("a leading dot and another case", f"/app{_SC}sid=1%3B%20domain=.Backend.Internal%3B%20path=!x"),
    ("blanks normalised when rewritten", f"/app{_SC}a%20=%20b%20;%20Path%20=%20!p%20;Secure"),
    ("an untouched cookie passes as it came", f"/app{_SC}sid=1%3B%20Domain=other.test%3B%20Path=%20odd"),
    ("two cookies", f"/app{_SC}a=1%3B%20Path=!/set-cookie=b=2%3B%20Domain=backend.internal"),
    ("variables and a regex path", f"/vars{_SC}sid=1%3B%20Domain=backend.internal%3B%20Path=!deep!er"),
    ("a caseless regex domain", f"/re{_SC}sid=1%3B%20Domain=API.internal"),
    ("off", f"/off{_SC}sid=1%3B%20Path=!"),
]:
    case(f"cookies: {id}", "cookies", get(path), expect=(200,), fields=_C)
