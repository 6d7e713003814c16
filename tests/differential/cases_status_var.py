"""Issue 11 item 2: ``$status`` where nginx defines it
(ngx_http_variable_status): nginx's err_status first, else the status of
the response being made, ``000`` before one is set.  So ``000`` in the
rewrite phase (``set``, ``if``, ``map`` read there) and in
``proxy_set_header``; the answer's code in ``return``'s text and URL
(ngx_http_send_response sets it before rendering) and in ``add_header``;
the error's code after an ``error_page`` hop (``=CODE``: that code).
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, upgrade

_S = frozenset({"x-s", "x-m"})

group(Group("status_var", f"""
    map $status $status_kind {{
        default other;
        201     created;
        404     missing;
        "000"   unset;
    }}
    server {{
        listen 127.0.0.1:@L0@;
        server_name example.com;
        location = /ret {{ return 200 "s=$status"; }}
        location = /ret404 {{ return 404 "s=$status"; }}
        location = /ret204 {{ add_header X-S $status; return 204; }}
        location = /redir {{ return 302 http://example.com/to/$status; }}
        location = /moved {{ return 301 /moved/$status; }}
        location = /hdr {{ add_header X-S $status; return 200 "ok"; }}
        location = /hdr404 {{ add_header X-S $status always; return 404; }}
        location = /hdr404-plain {{ add_header X-S $status; return 404; }}
        location = /if {{ if ($status = "000") {{ return 200 "unset before the answer"; }} return 500 "s=$status"; }}
        location = /set {{ set $s $status; return 200 "set=$s now=$status"; }}
        location = /map {{ add_header X-M $status_kind; return 201 "created"; }}
        location = /maptext {{ return 200 "kind=$status_kind"; }}
        location /proxied {{
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Status-Upstream $status;
            add_header X-S $status;
        }}
        location /ws/ {{
            proxy_pass http://127.0.0.1:@B0@; {UPGRADE_LOC}
            proxy_set_header X-Status-Upstream $status;
            add_header X-S $status always;
        }}
        location = /missing {{ error_page 404 /err; return 404; }}
        location = /missing-200 {{ error_page 404 =200 /err; return 404; }}
        location = /missing-proxied {{ error_page 404 /perr; return 404; }}
        location = /missing-if {{ error_page 404 /errif; return 404; }}
        location = /missing-hdr {{ error_page 404 =200 /errhdr; return 404; }}
        location = /missing-named {{ error_page 404 @named; return 404; }}
        location = /missing-named-200 {{ error_page 404 =200 @named; return 404; }}
        location @named {{ add_header X-S $status always; return 200 "named s=$status"; }}
        location = /err {{ return 200 "err s=$status"; }}
        location = /errif {{ if ($status = 404) {{ return 200 "seen 404"; }} return 200 "not seen s=$status"; }}
        location = /errhdr {{ add_header X-S $status; return 200 "e"; }}
        location = /perr {{ proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Status-Upstream $status; }}
    }}
"""))

case("status-return-text", "status_var", get("/ret"), expect=(200,))
case("status-return-404-text", "status_var", get("/ret404"), expect=(404,))
case("status-return-204-header", "status_var", get("/ret204"), expect=(204,), fields=_S)
case("status-return-redirect-url", "status_var", get("/redir"), expect=(302,))
case("status-return-relative-redirect", "status_var", get("/moved"), expect=(301,))
case("status-add-header", "status_var", get("/hdr"), expect=(200,), fields=_S)
case("status-add-header-always-error", "status_var", get("/hdr404"), expect=(404,), fields=_S)
case("status-add-header-error-not-always", "status_var", get("/hdr404-plain"), expect=(404,), fields=_S)
case("status-if-before-answer", "status_var", get("/if"), expect=(200,))
case("status-set-before-answer", "status_var", get("/set"), expect=(200,))
case("status-map-in-add-header", "status_var", get("/map"), expect=(201,), fields=_S)
case("status-map-in-return-text", "status_var", get("/maptext"), expect=(200,))
case("status-proxied", "status_var", get("/proxied/x"), expect=(200,), fields=_S)
case("status-upgrade-101", "status_var", upgrade("/ws/x"), ws=True, fields=_S)
case("status-error-page", "status_var", get("/missing"), expect=(404,))
case("status-error-page-overridden", "status_var", get("/missing-200"), expect=(200,))
case("status-error-page-proxied", "status_var", get("/missing-proxied"), expect=(404,))
case("status-error-page-if", "status_var", get("/missing-if"), expect=(404,))
case("status-error-page-add-header", "status_var", get("/missing-hdr"), expect=(200,), fields=_S)
case("status-error-page-named", "status_var", get("/missing-named"), fields=_S, body=True)
case("status-error-page-named-overridden", "status_var", get("/missing-named-200"), fields=_S)
