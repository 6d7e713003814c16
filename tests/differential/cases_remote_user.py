"""``$remote_user`` is nginx's variable: the user name of an ``Authorization:
Basic`` header whether or not the location uses auth_basic (issue 9, item 2),
parsed as ngx_http_auth_basic_user() does.  The backend shows what it got."""

from __future__ import annotations

import base64

from cases import case, group
from oracle import Group, get

group(Group("remote_user", """
    server {
        listen 127.0.0.1:@L0@;
        location / {
            proxy_set_header X-User "[$remote_user]";
            proxy_pass http://127.0.0.1:@B0@;
        }
    }
"""))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


for name, value in [
    ("no Authorization header", None),
    ("Basic user:password", "Basic " + _b64(b"alice:secret")),
    ("lower-case scheme, extra spaces", "basic    " + _b64(b"bob:pw")),
    ("password with colons", "Basic " + _b64(b"carol:a:b")),
    ("empty password", "Basic " + _b64(b"dave:")),
    ("empty user name", "Basic " + _b64(b":pw")),
    ("no colon", "Basic " + _b64(b"nocolon")),
    ("no padding", "Basic " + _b64(b"eve:pw1").rstrip("=")),
    ("garbage after the padding", "Basic " + _b64(b"fay:p") + "=!!"),
    ("invalid base64", "Basic !!!"),
    ("Bearer token", "Bearer abc.def"),
    ("scheme only", "Basic"),
    ("UTF-8 user name", "Basic " + _b64("zoë:pw".encode())),
]:
    extra = "" if value is None else f"Authorization: {value}\r\n"
    case(f"$remote_user: {name}", "remote_user", get("/", extra=extra), expect=(200,))
