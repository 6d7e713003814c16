"""Config text is bytes: non-ASCII text in a directive reaches the wire as the
bytes written in nginx.conf (issue 9, item 4).

nginx never decodes its config; every directive whose argument is sent to a
client or a backend is exercised here with UTF-8 text: the ``return`` body
and redirect URL, an ``error_page`` URL, the ``auth_basic`` realm (today's
500), ``proxy_set_header`` values (plain and websocket), and ``map`` values
and keys.  ``add_header`` is not implemented by ngxws, so it has no case.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, basic, case, group
from oracle import Group, get, upgrade

group(Group("bytes", f"""
    map $http_x_lang $greeting {{
        default "¡hola!";
        "é" "accent “é”";
    }}
    server {{
        listen 127.0.0.1:@L0@;
        location /text/ {{ return 200 "héllo “quoted” ✓ $request_uri\\n"; }}
        location /rel/ {{ return 301 /caf\u00e9/“x”; }}
        location /abs/ {{ return 302 https://example.org/naïve?q=“1”; }}
        location /bare/ {{ return https://example.org/ß; }}
        location /missing/ {{ error_page 404 https://example.org/404/“none”; return 404; }}
        location /auth/ {{
            auth_basic "“stats” – ünïcode";
            auth_basic_user_file htpasswd;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /header/ {{
            proxy_set_header X-Name "café “x” ✓";
            proxy_set_header X-Greeting $greeting;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /ws/ {{
            {UPGRADE_LOC}
            proxy_set_header X-Name "wébsocket “ws”";
            proxy_pass http://127.0.0.1:@B0@;
        }}
    }}
""", files={"htpasswd": "user:{PLAIN}secret\n"}))

case("return text: UTF-8 body as written", "bytes", get("/text/p?q"), expect=(200,))
case("return 301 relative URL with UTF-8", "bytes", get("/rel/"), expect=(301,))
case("return 302 URL with UTF-8", "bytes", get("/abs/"), expect=(302,))
case("return URL alone with UTF-8", "bytes", get("/bare/"), expect=(302,))
case("error_page URL with UTF-8", "bytes", get("/missing/"), expect=(302,))
case("auth_basic UTF-8 realm: the 401 challenge", "bytes", get("/auth/"), expect=(401,))
case("auth_basic UTF-8 realm: the right password", "bytes", get("/auth/", extra=basic("user", "secret")),
     expect=(200,))
case("proxy_set_header UTF-8 values seen by the backend", "bytes", get("/header/"), expect=(200,))
case("map key and value in UTF-8", "bytes", get("/header/", extra="X-Lang: \u00c3\u00a9\r\n"), expect=(200,))
case("proxy_set_header UTF-8 on a websocket upgrade", "bytes", upgrade("/ws/x"), ws=True, expect=(101,))
