"""``proxy_cookie_flags`` (nginx 1.19.3+, ngx_http_proxy_edit_cookie_flags)
against nginx: Secure, HttpOnly and SameSite added, kept, rewritten or
dropped on an upstream's Set-Cookie, for a cookie named (any case), matched
by a caseless regex, or by a name from a variable; flags from variables,
unknown words skipped; the first matching line wins; ``off`` below an
inherited line; combined with proxy_cookie_path.  The shape of configs that
harden an app's session cookie at the proxy (``proxy_cookie_flags ~ secure
httponly samesite=strict``)."""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

_C = frozenset({"set-cookie"})

group(Group("cookieflags", """
    proxy_cookie_flags legacy secure;
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        location /all/ { proxy_pass http://127.0.0.1:@B0@/; proxy_cookie_flags ~ secure httponly samesite=strict; }
        location /named/ {
            proxy_pass http://127.0.0.1:@B0@/;
            proxy_cookie_flags SID secure httponly;
            proxy_cookie_flags ~^tr nosecure nohttponly nosamesite;
            proxy_cookie_flags $arg_c samesite=lax;
        }
        location /vars/ { proxy_pass http://127.0.0.1:@B0@/; proxy_cookie_flags sid $arg_f bogus ""; }
        location /both/ { proxy_pass http://127.0.0.1:@B0@/; proxy_cookie_flags sid secure nosecure samesite=lax; }
        location /path/ {
            proxy_pass http://127.0.0.1:@B0@/;
            proxy_cookie_path / /path/;
            proxy_cookie_flags sid httponly;
        }
        location /inherit/ { proxy_pass http://127.0.0.1:@B0@/; }
        location /off/ { proxy_pass http://127.0.0.1:@B0@/; proxy_cookie_flags off; }
    }
"""))

_SC = "/set-cookie="
for id, path in [
    ("every cookie: all three added", f"/all{_SC}sid=1%3B%20Path=!"),
    ("every cookie: kept and rewritten", f"/all{_SC}sid=1%3B%20secure%3B%20SameSite=lax%3B%20HTTPONLY"),
    ("samesite in another case is kept", f"/all{_SC}sid=1%3B%20samesite=STRICT"),
    ("a valueless SameSite", f"/all{_SC}sid=1%3B%20SameSite"),
    ("blanks normalised", f"/all{_SC}a%20=%20b%20;%20Path%20=%20!p%20;Secure"),
    ("a named cookie, any case", f"/named{_SC}sid=1%3B%20Path=!"),
    ("a regex line removes flags", f"/named{_SC}track=1%3B%20Secure%3B%20HttpOnly%3B%20SameSite=None%3B%20Secure"),
    ("a name from a variable", f"/named{_SC}pref=1?c=PREF"),
    ("no line matches: unchanged", f"/named{_SC}other=1%3B%20%20Path=!"),
    ("flags from a variable", f"/vars{_SC}sid=1?f=httponly"),
    ("an unknown flag only: unchanged", f"/vars{_SC}sid=1%3B%20%20Path=!?f=unknown"),
    ("on and off together", f"/both{_SC}sid=1%3B%20Secure%3B%20Secure%3B%20SameSite=Strict%3B%20SameSite=x"),
    ("with proxy_cookie_path", f"/path{_SC}sid=1%3B%20Path=!"),
    ("inherited from http", f"/inherit{_SC}legacy=1"),
    ("off below an inherited line", f"/off{_SC}legacy=1"),
    ("two cookies", f"/all{_SC}a=1/set-cookie=b=2%3B%20HttpOnly"),
    ("not a cookie (no name=value)", f"/all{_SC}justaword"),
]:
    case(f"cookie flags: {id}", "cookieflags", get(path), expect=(200,), fields=_C)
