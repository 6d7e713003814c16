"""``proxy_redirect`` and where a proxied answer's Location goes (issue:
real configs -- nginx rewrites an upstream's Location by default).

nginx 1.22 rewrites the Location (and Refresh ``url=``) of a proxied answer
by the location's ``proxy_redirect`` rules, the first that matches: a plain
prefix (variables rendered), a regex (``~``, ``~*``) whose match replaces
the whole value, and -- when no level sets any -- ``default``, the
proxy_pass URL for the location's name (URL + ``/`` for ``/`` without a URI
part).  A rewritten path is completed by the header filter (scheme, Host,
port; not with ``absolute_redirect off``) and written before Connection;
one no rule matched is passed as it came, relative or not.  Every
differential case also compares the order of the header names.
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

_H = frozenset({"location", "refresh", "x-loc"})

group(Group("locations_out", """
    upstream backend { server 127.0.0.1:@B0@; }
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        location /p/ { add_header X-Loc l; proxy_pass http://127.0.0.1:@B0@; }
        location /one/ { proxy_pass http://backend/two/; }
        location /bare/ { proxy_pass http://backend; }
        location /off/ { proxy_pass http://backend/two/; proxy_redirect off; }
        location /rule/ { proxy_pass http://backend/; proxy_redirect http://backend/ /r/; }
        location /rules/ {
            proxy_pass http://backend/;
            proxy_redirect http://nowhere/ /n/;
            proxy_redirect ~^http://[^/]+(/.*)$ https://front.test$1;
        }
        location /ci/ { proxy_pass http://backend/; proxy_redirect ~*^HTTP://BACKEND/(.*)$ /ci-$1; }
        location /vars/ { proxy_pass http://backend/; proxy_redirect http://backend/ $scheme://$host:81/v/; }
        location /relative-off/ { absolute_redirect off; proxy_pass http://backend/two/; }
        location /noport/ { port_in_redirect off; proxy_pass http://backend/two/; }
        location /outer/ {
            proxy_pass http://backend/o/;
            location /outer/inner/ { proxy_pass http://backend/i/; }
        }
        location /dflt/ { proxy_pass http://backend/d/; proxy_redirect default; proxy_redirect http://x/ /y/; }
    }
    server {
        listen 127.0.0.1:@L1@;
        server_name example.com;
        proxy_redirect http://backend/ /from-server/;
        location /s/ { proxy_pass http://backend/two/; }
    }
"""))

L = "/status/302/location="
for id, path, expect, target in [
    ("an upstream's relative Location stays as it came", f"/p{L}!landing", 302, "L0"),
    ("an absolute Location no rule matches", f"/p{L}http~!!other.test!x", 302, "L0"),
    ("default: the proxy_pass URL for the location", f"/one{L}http~!!backend!two!next", 302, "L0"),
    ("default: a Location on a 201", "/one/status/201/location=http~!!backend!two!made", 201, "L0"),
    ("default without a URI part: URL/ for /", f"/bare{L}http~!!backend!bare!x", 302, "L0"),
    ("default: another host is left alone", f"/one{L}http~!!elsewhere!two!x", 302, "L0"),
    ("off", f"/off{L}http~!!backend!two!next", 302, "L0"),
    ("a plain rule", f"/rule{L}http~!!backend!a!b", 302, "L0"),
    ("the first rule that matches: a regex", f"/rules{L}http~!!backend!q", 302, "L0"),
    ("a case-insensitive regex", f"/ci{L}http~!!backend!z", 302, "L0"),
    ("variables in the replacement", f"/vars{L}http~!!backend!w", 302, "L0"),
    ("absolute_redirect off: the rewritten path as it is", f"/relative-off{L}http~!!backend!two!r", 302, "L0"),
    ("port_in_redirect off", f"/noport{L}http~!!backend!two!p", 302, "L0"),
    ("a nested location without proxy_redirect: the outer default", f"/outer/inner{L}http~!!backend!o!k", 302, "L0"),
    ("a nested location's own URL is not its default", f"/outer/inner{L}http~!!backend!i!k", 302, "L0"),
    ("default among explicit rules", f"/dflt{L}http~!!backend!d!k", 302, "L0"),
    ("Refresh url= rewritten too", "/one/status/200/refresh=5;%20url=http~!!backend!two!t", 200, "L0"),
    ("a server-level rule for its locations", f"/s{L}http~!!backend!two!s", 302, "L1"),
    ("a 200 with the headers filter's line", "/p/plain", 200, "L0"),
]:
    case(f"location out: {id}", "locations_out", get(path, host="example.com"), expect=(expect,), fields=_H,
         target=target)
