"""Issue 10 items 2 and 3: auth_request / auth_request_set, satisfy, internal.

Backend 1 is the auth service (``RecordingBackend._auth``: 200/202 with
``Remote-User``... for ``Cookie: session=good`` or ``Authorization: Bearer
good``, 401 with two ``WWW-Authenticate`` and a ``Location`` otherwise, 403
for ``session=forbidden``, 500 for ``session=broken``); backend 0 is the
application.  Both record what they were sent, so every case also compares
the auth subrequest nginx and ngxws sent and the headers the application got.

The confs follow the shapes the auth services publish:

- server L0: Authelia's NGINX integration, https://www.authelia.com/integration/proxies/nginx/
  (``authelia-location.conf`` and ``authelia-authrequest.conf``: an internal
  ``/internal/authelia/authz`` location proxying to ``/api/authz/auth-request``,
  ``auth_request_set $user $upstream_http_remote_user`` ... ->
  ``proxy_set_header Remote-User $user`` ..., and
  ``error_page 401 =302 $redirection_url``), minus its ``set`` of the upstream
  URL and the cache lines;
- server L1: oauth2-proxy's Nginx integration,
  https://oauth2-proxy.github.io/oauth2-proxy/configuration/integrations/nginx
  (``location = /oauth2/auth``, ``error_page 401 = @oauth2_signin``,
  ``X-User``/``X-Email`` from ``$upstream_http_x_auth_request_*``), minus its
  ``add_header Set-Cookie``;
- server L2: ``satisfy any|all`` over allow/deny, auth_basic and auth_request.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, basic, case, group
from oracle import Group, get, req, upgrade

_AUTHELIA_LOCATION = """
        location /internal/authelia/authz {
            internal;
            proxy_pass http://127.0.0.1:@B1@/api/authz/auth-request;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_next_upstream error timeout invalid_header http_500 http_502 http_503;
            proxy_http_version 1.1;
            proxy_buffers 4 32k;
            client_body_buffer_size 128k;
            send_timeout 5m;
            proxy_read_timeout 240;
            proxy_send_timeout 240;
            proxy_connect_timeout 240;
        }
"""

_AUTHELIA_REQUEST = """
            auth_request /internal/authelia/authz;
            auth_request_set $user $upstream_http_remote_user;
            auth_request_set $groups $upstream_http_remote_groups;
            auth_request_set $name $upstream_http_remote_name;
            auth_request_set $email $upstream_http_remote_email;
            proxy_set_header Remote-User $user;
            proxy_set_header Remote-Groups $groups;
            proxy_set_header Remote-Email $email;
            proxy_set_header Remote-Name $name;
            auth_request_set $redirection_url $upstream_http_location;
            error_page 401 =302 $redirection_url;
"""

_OAUTH2 = """
        location /oauth2/ {
            proxy_pass http://127.0.0.1:@B1@;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Auth-Request-Redirect $request_uri;
        }
        location = /oauth2/auth {
            proxy_pass http://127.0.0.1:@B1@;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header Content-Length "";
            proxy_pass_request_body off;
        }
        location @oauth2_signin {
            return 302 /oauth2/sign_in?rd=$scheme://$host$request_uri;
        }
"""

_OAUTH2_REQUEST = """
            auth_request /oauth2/auth;
            error_page 401 = @oauth2_signin;
            auth_request_set $user $upstream_http_x_auth_request_user;
            auth_request_set $email $upstream_http_x_auth_request_email;
            proxy_set_header X-User $user;
            proxy_set_header X-Email $email;
"""

_BASIC = """
            auth_basic "basic";
            auth_basic_user_file htpasswd;
"""

group(Group("auth_request", f"""
    server {{
        listen 127.0.0.1:@L0@;
        {_AUTHELIA_LOCATION}
        location = /internal/dead {{ internal; proxy_pass http://127.0.0.1:@DEAD@; }}
        location = /internal/ret403 {{ internal; return 403; }}
        location = /internal/ret204 {{ internal; return 204; }}
        location = /internal/teapot {{ internal; return 418; }}
        location / {{
            {_AUTHELIA_REQUEST}
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /ws/ {{
            {_AUTHELIA_REQUEST}
            {UPGRADE_LOC}
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /plain/ {{
            auth_request /internal/authelia/authz;
            auth_request_set $user $upstream_http_remote_user;
            auth_request_set $st $upstream_status;
            proxy_set_header X-User $user;
            proxy_set_header X-Auth-Status $st;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /dead/ {{ auth_request /internal/dead; proxy_pass http://127.0.0.1:@B0@; }}
        location /wsdead/ {{ auth_request /internal/dead; {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@; }}
        location /ret403/ {{ auth_request /internal/ret403; proxy_pass http://127.0.0.1:@B0@; }}
        location /ret204/ {{ auth_request /internal/ret204; proxy_pass http://127.0.0.1:@B0@; }}
        location /teapot/ {{ auth_request /internal/teapot; proxy_pass http://127.0.0.1:@B0@; }}
        location /nowhere/ {{ auth_request /no/such/location; proxy_pass http://127.0.0.1:@B0@; }}
        location /off/ {{ auth_request off; proxy_pass http://127.0.0.1:@B0@; }}
        location /nobody/ {{
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://127.0.0.1:@B0@;
        }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        {_OAUTH2}
        location / {{
            {_OAUTH2_REQUEST}
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /ws/ {{
            {_OAUTH2_REQUEST}
            {UPGRADE_LOC}
            proxy_pass http://127.0.0.1:@B0@;
        }}
    }}
    server {{
        listen 127.0.0.1:@L2@;
        {_AUTHELIA_LOCATION}
        location /any-ip/ {{ satisfy any; allow 127.0.0.1; deny all; {_BASIC} proxy_pass http://127.0.0.1:@B0@; }}
        location /any-basic/ {{ satisfy any; deny all; {_BASIC} proxy_pass http://127.0.0.1:@B0@; }}
        location /any-req/ {{
            satisfy any;
            deny all;
            auth_request /internal/authelia/authz;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /any-three/ {{
            satisfy any;
            deny all;
            {_BASIC}
            auth_request /internal/authelia/authz;
            auth_request_set $user $upstream_http_remote_user;
            proxy_set_header X-User $user;
            proxy_set_header X-Remote-User $remote_user;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /any-ws/ {{
            satisfy any;
            deny all;
            auth_request /internal/authelia/authz;
            {UPGRADE_LOC}
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /all-three/ {{
            satisfy all;
            allow 127.0.0.1;
            deny all;
            {_BASIC}
            auth_request /internal/authelia/authz;
            proxy_pass http://127.0.0.1:@B0@;
        }}
        location /nowhere/ {{ auth_request /no/such/location; proxy_pass http://127.0.0.1:@B0@; }}
        location /all-deny/ {{ deny all; auth_request /internal/authelia/authz; proxy_pass http://127.0.0.1:@B0@; }}
        location /all-basic-first/ {{ {_BASIC} auth_request /internal/authelia/authz; proxy_pass http://127.0.0.1:@B0@; }}
    }}
    server {{
        listen 127.0.0.1:@L3@;
        {_AUTHELIA_LOCATION}
        auth_request /internal/authelia/authz;
        auth_request_set $user $upstream_http_remote_user;
        proxy_set_header X-User $user;
        error_page 401 = /login/;
        location / {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /login/ {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /public/ {{ auth_request off; proxy_pass http://127.0.0.1:@B0@; }}
    }}
""", files={"htpasswd": "alice:{PLAIN}secret\n"}))

_GOOD = "Cookie: session=good\r\n"
_FORBIDDEN = "Cookie: session=forbidden\r\n"
_BROKEN = "Cookie: session=broken\r\n"

# Authelia's shape
case("authelia: good session, Remote-* headers reach the backend", "auth_request",
     get("/app?x=1", extra=_GOOD), expect=(200,))
case("authelia: a client's own Remote_User / X.Dot headers are dropped (ignore_invalid_headers)",
     "auth_request", get("/app", extra=_GOOD + "Remote_User: admin\r\nX.Dot: 1\r\nX-Fine: 2\r\n"),
     expect=(200,))
case("authelia: bearer token", "auth_request", get("/app", extra="Authorization: Bearer good\r\n"), expect=(200,))
case("authelia: no session: error_page 401 =302 $redirection_url", "auth_request", get("/app?x=1"), expect=(302,))
case("authelia: forbidden: 403", "auth_request", get("/app", extra=_FORBIDDEN), expect=(403,))
case("authelia: auth service error: 500", "auth_request", get("/app", extra=_BROKEN), expect=(500,))
case("authelia: POST body goes to the backend, not the auth service", "auth_request",
     req("POST", "/form", headers=_GOOD, body=b"a=1&b=2"), expect=(200,))
case("authelia: keep-alive, two requests", "auth_request",
     req("GET", "/one", headers=_GOOD, close=False), req("GET", "/two", headers=_GOOD), expect=(200, 200))
case("authelia: a client cannot reach the internal location", "auth_request",
     get("/internal/authelia/authz"), expect=(404,))
case("authelia: websocket with a good session", "auth_request",
     upgrade("/ws/chat", extra=_GOOD), ws=True, expect=(101,))
case("authelia: websocket without a session: 302 to the portal", "auth_request",
     upgrade("/ws/chat"), expect=(302,))
case("authelia: websocket forbidden", "auth_request", upgrade("/ws/chat", extra=_FORBIDDEN), expect=(403,))
case("authelia: websocket, auth service error", "auth_request", upgrade("/ws/chat", extra=_BROKEN), expect=(500,))
case("401 without error_page: the auth service's WWW-Authenticate", "auth_request",
     get("/plain/x"), expect=(401,), fields=frozenset({"www-authenticate"}))
case("auth_request_set $upstream_status", "auth_request", get("/plain/x", extra=_GOOD), expect=(200,))
case("auth service unreachable: 500", "auth_request", get("/dead/x", extra=_GOOD), expect=(500,))
case("auth service unreachable, websocket: 500", "auth_request", upgrade("/wsdead/x", extra=_GOOD), expect=(500,))
case("auth location returns 403", "auth_request", get("/ret403/x"), expect=(403,))
case("auth location returns 204: allowed", "auth_request", get("/ret204/x"), expect=(200,))
case("auth location returns 418: 500", "auth_request", get("/teapot/x"), expect=(500,))
case("auth_request to a URI the catch-all location proxies (no access phase there)", "auth_request",
     get("/nowhere/x"), expect=(200,))
case("auth_request to no location: 404, so 500", "auth_request", get("/nowhere/x"), target="L2", expect=(500,))
case("auth_request off", "auth_request", get("/off/x"), expect=(200,))
case("proxy_pass_request_body off, Content-Length blanked", "auth_request",
     req("POST", "/nobody/", body=b"a=1"), expect=(200,))

# oauth2-proxy's shape
case("oauth2-proxy: good session (202), X-User/X-Email", "auth_request",
     get("/app", extra=_GOOD), target="L1", expect=(200,))
case("oauth2-proxy: no session: error_page 401 = @oauth2_signin", "auth_request",
     get("/app?next=1"), target="L1", expect=(302,))
case("oauth2-proxy: the sign-in page is proxied", "auth_request",
     get("/oauth2/sign_in?rd=x"), target="L1", expect=(200,))
case("oauth2-proxy: forbidden", "auth_request", get("/app", extra=_FORBIDDEN), target="L1", expect=(403,))
case("oauth2-proxy: websocket with a good session", "auth_request",
     upgrade("/ws/x", extra=_GOOD), target="L1", ws=True, expect=(101,))
case("oauth2-proxy: websocket without a session", "auth_request", upgrade("/ws/x"), target="L1", expect=(302,))

# server-level auth_request, inherited
case("server level: good session", "auth_request", get("/x", extra=_GOOD), target="L3", expect=(200,))
case("server level: auth_request off in a location", "auth_request", get("/public/x"), target="L3", expect=(200,))
case("server level: error_page to a location that asks again: one error_page only", "auth_request",
     get("/x"), target="L3", expect=(401,))

# satisfy
case("satisfy any: allowed address, no credentials", "auth_request", get("/any-ip/"), target="L2", expect=(200,))
case("satisfy any: denied address, no credentials: 401", "auth_request", get("/any-basic/"), target="L2",
     expect=(401,))
case("satisfy any: denied address, good credentials", "auth_request",
     get("/any-basic/", extra=basic("alice", "secret")), target="L2", expect=(200,))
case("satisfy any: denied address, good session", "auth_request", get("/any-req/", extra=_GOOD), target="L2",
     expect=(200,))
case("satisfy any: denied address, no session: 401 with the challenges", "auth_request", get("/any-req/"),
     target="L2", expect=(401,))
case("satisfy any: denied address, forbidden session: 403", "auth_request", get("/any-req/", extra=_FORBIDDEN),
     target="L2", expect=(403,))
case("satisfy any: auth service error is 500", "auth_request", get("/any-req/", extra=_BROKEN),
     target="L2", expect=(500,))
case("satisfy any: basic credentials alone, no subrequest", "auth_request",
     get("/any-three/", extra=basic("alice", "secret")), target="L2", expect=(200,))
case("satisfy any: session alone", "auth_request", get("/any-three/", extra=_GOOD), target="L2", expect=(200,))
case("satisfy any: neither: 401, Basic and the service's challenges", "auth_request", get("/any-three/"),
     target="L2", expect=(401,))
case("satisfy any: wrong password, forbidden session: 401 wins", "auth_request",
     get("/any-three/", extra=basic("alice", "nope") + _FORBIDDEN), target="L2", expect=(401,))
case("satisfy any: websocket with a good session", "auth_request", upgrade("/any-ws/x", extra=_GOOD),
     target="L2", ws=True, expect=(101,))
case("satisfy any: websocket without: 401", "auth_request", upgrade("/any-ws/x"), target="L2", expect=(401,))
case("satisfy all: address, password and session", "auth_request",
     get("/all-three/", extra=basic("alice", "secret") + _GOOD), target="L2", expect=(200,))
case("satisfy all: session missing: 401", "auth_request",
     get("/all-three/", extra=basic("alice", "secret")), target="L2", expect=(401,))
case("satisfy all: password missing: 401, no subrequest", "auth_request",
     get("/all-three/", extra=_GOOD), target="L2", expect=(401,))
case("satisfy all: deny first, no subrequest", "auth_request", get("/all-deny/", extra=_GOOD),
     target="L2", expect=(403,))
case("satisfy all: auth_basic runs before auth_request", "auth_request",
     get("/all-basic-first/", extra=_FORBIDDEN), target="L2", expect=(401,))
