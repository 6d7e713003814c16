"""Divergences the second batch of real-world corpus cases found
(tests/configs/realworld/, SOURCES.md), each reduced to a small conf.

- ``named_index``: a named location whose ``rewrite ... break`` leaves
  a URI ending in "/" (Jitsi Meet's ``@root_path`` rewriting rooms to
  ``/$custom_index`` with the variable empty): nginx's static handler
  runs the index module there, as in any location.
- ``named_rewrite``: the same rewrite in a named location that proxies
  (from try_files and from ``error_page ... = @name``), and a rewrite
  without a flag there, which finds the location again.
- ``forced_upgrade``: a location that sends ``Upgrade: websocket`` on
  every request (a Jupyter sub-directory note's literal ``proxy_set_header
  Upgrade "websocket"``), so the backend switches protocols on a plain
  GET the client never asked to upgrade: nginx passes the 101 on as an
  ordinary answer.
- ``auth_switch``: nginx-proxy's http-level upgrade headers reach an
  ``auth_request`` subrequest, whose upstream switches protocols.
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, get, req, upgrade

group(Group("named_index", docroot={"index.html": b"<p>room</p>\n", "sub/": b"", "sub/index.html": b"s\n"}, http="""
    server {
        listen 127.0.0.1:@L0@;
        root @ROOT@;
        index index.html;
        set $custom_index "";
        location ~ ^/([^/]+)$ { try_files $uri @root_path; }
        location @root_path { rewrite ^/(.*)$ /$custom_index break; }
        location /sub/ { try_files $uri @sub; }
        location @sub { rewrite ^ /sub/ break; }
        location = /idx { try_files $uri @noindex; }
        location @noindex { rewrite ^ /nodir/ break; }
    }
"""))

case("named_index_room", "named_index", get("/standup"), expect=(200,))
case("named_index_file", "named_index", get("/index.html"), expect=(200,))
case("named_index_sub", "named_index", get("/sub/missing"), expect=(200,))
case("named_index_missing_dir", "named_index", get("/idx"), expect=(404,))

group(Group("forced_upgrade", """
    server {
        listen 127.0.0.1:@L0@;
        location /lab/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade "websocket";
            proxy_set_header Connection "Upgrade";
        }
    }
"""))

case("forced_upgrade_plain_get", "forced_upgrade", get("/lab/tree"))
case("forced_upgrade_head", "forced_upgrade", req("HEAD", "/lab/tree"), expect=(101,))

# the same in a named location that proxies (its proxy_pass can have no
# URI part): "break" leaves the URI the rewrite made, which is what goes
# upstream; a rewrite without a flag finds the location again (nginx's
# post-rewrite phase)
group(Group("named_rewrite", """
    server {
        listen 127.0.0.1:@L0@;
        location /p/ { try_files /nonexistent @p; }
        location @p { rewrite ^/p/(.*)$ /new/$1 break; proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Uri $uri; }
        location /e/ { error_page 404 = @e; return 404; }
        location @e { rewrite ^/e/(.*)$ /err/$1?from=e break; proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Uri $uri; }
        location /f/ { try_files /nonexistent @f; }
        location @f { rewrite ^/f/(.*)$ /target/$1; }
        location /target/ { proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Uri $uri; }
    }
"""))

case("named_rewrite_break_proxy", "named_rewrite", get("/p/a/b?q=1"), expect=(200,))
case("named_rewrite_error_page", "named_rewrite", get("/e/x"), expect=(200,))
case("named_rewrite_refind", "named_rewrite", get("/f/c?k=v"))

# nginx-proxy's http-level "proxy_set_header Upgrade $http_upgrade" reaches
# an auth_request subrequest too: a websocket upgrade's auth request goes
# upstream with the upgrade, and an upstream that switches there makes
# nginx terminate the client's request ("connection upgrade in
# subrequest": no answer, the connection closed); a plain request whose
# auth location forces Upgrade gets the 101 as an unexpected status (500)
group(Group("auth_switch", """
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    server {
        listen 127.0.0.1:@L0@;
        location = /auth { internal; proxy_pass http://127.0.0.1:@B0@; }
        location = /auth-forced { internal; proxy_pass http://127.0.0.1:@B0@; proxy_set_header Upgrade websocket; }
        location /app/ { auth_request /auth; proxy_pass http://127.0.0.1:@B1@; }
        location /forced/ { auth_request /auth-forced; proxy_pass http://127.0.0.1:@B1@; }
    }
"""))

case("auth_switch_upgrade", "auth_switch", upgrade("/app/ws"))
case("auth_switch_plain", "auth_switch", get("/app/x"), expect=(200,))
case("auth_switch_forced_plain", "auth_switch", get("/forced/x"), expect=(500,))
