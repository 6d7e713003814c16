"""Heads at the edge of the whole-head fast read (issue 13, W5: ngxws/http/fast_head.py).

A head of the common shape is read in one call, anything else by the line
walk; these cases put heads on both sides of that line -- spaces, tabs and
Latin-1 bytes in values, names in any case, a name twice, Connection
values that decide keep-alive, pipelined heads in one write, Expect and
Content-Length: 0 without a body, paths that need normalising -- and
compare the answers, what the backend received, and whether the
connection stays open, with nginx.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group

group(Group("fast_head", f"""
    server {{
        listen 127.0.0.1:@L0@;
        location / {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@; }}
        location /ret/ {{ return 200 "ret $uri $args $http_x_a\\n"; }}
    }}
"""))

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def head(first: str, *lines: str | bytes) -> bytes:
    out = first.encode() + b"\r\n"
    for line in lines:
        out += (line.encode("latin-1") if isinstance(line, str) else line) + b"\r\n"
    return out + b"\r\n"


case("two bodyless heads in one write: both answered, in order", "fast_head",
     head("GET /a HTTP/1.1", "Host: example.com") + head("GET /b HTTP/1.1", "Host: example.com", "Connection: close"),
     b"", expect=(200, 200))
case("pipelined: a return answer, then a proxied one", "fast_head",
     head("GET /ret/x?q=1 HTTP/1.1", "Host: example.com", "X-A: 1")
     + head("GET /p HTTP/1.1", "Host: example.com", "Connection: close"), b"", expect=(200, 200))
case("HTTP/1.0 with Connection: keep-alive stays open", "fast_head",
     head("GET /ret/ HTTP/1.0", "Connection: keep-alive"), idle=1.0, expect=(200,))
case("HTTP/1.0 without Connection closes", "fast_head", head("GET /ret/ HTTP/1.0"), idle=1.0, expect=(200,))
case("HTTP/1.1 Connection: Keep-Alive, close: close wins", "fast_head",
     head("GET /ret/ HTTP/1.1", "Host: example.com", "Connection: Keep-Alive, close"), idle=1.0, expect=(200,))
case("HTTP/1.1 Connection: CLOSE in capitals", "fast_head",
     head("GET /ret/ HTTP/1.1", "Host: example.com", "Connection: CLOSE"), idle=1.0, expect=(200,))
case("HTTP/1.1 keep-alive by default", "fast_head",
     head("GET /ret/ HTTP/1.1", "Host: example.com"), idle=1.0, expect=(200,))
case("values: spaces around, tabs, Latin-1 bytes, colons, empty", "fast_head",
     head("GET /v HTTP/1.1", "Host: example.com", "X-Sp:    both    ", "X-Tab: \tv\t", b"X-Latin: caf\xe9 \xff",
          "X-Colon: a:b: c", "X-Empty:", "X-Blank:     ", "Connection: close"), expect=(200,))
case("names in any case: host, CONTENT-LENGTH, x-a", "fast_head",
     head("POST /c HTTP/1.1", "host: example.com", "CONTENT-LENGTH: 5", "x-a: 1", "Connection: close") + b"hello",
     expect=(200,))
case("a name twice (Cookie): both lines go upstream", "fast_head",
     head("GET /k HTTP/1.1", "Host: example.com", "Cookie: a=1", "cookie: b=2", "Connection: close"),
     expect=(200,))
case("Host twice: 400", "fast_head",
     head("GET /k HTTP/1.1", "Host: example.com", "HOST: example.com"), expect=(400,))
case("no Host on HTTP/1.1: 400", "fast_head", head("GET /k HTTP/1.1", "X-A: 1"), expect=(400,))
case("a name with _ is dropped, the rest goes on", "fast_head",
     head("GET /u HTTP/1.1", "Host: example.com", "X_Under: 1", "X-Ok: 2", "Connection: close"), expect=(200,))
case("Content-Length: 0, then a pipelined GET", "fast_head",
     head("POST /z HTTP/1.1", "Host: example.com", "Content-Length: 0")
     + head("GET /after HTTP/1.1", "Host: example.com", "Connection: close"), b"", expect=(200, 200))
case("Content-Length with leading zeros", "fast_head",
     head("POST /z HTTP/1.1", "Host: example.com", "Content-Length: 003", "Connection: close") + b"abc",
     expect=(200,))
case("Content-Length not a number: 400", "fast_head",
     head("POST /z HTTP/1.1", "Host: example.com", "Content-Length: 3x") + b"abc", expect=(400,))
case("paths normalised: dot segments, %XX, double slashes", "fast_head",
     head("GET /ret//a/./b/../%63?x=1 HTTP/1.1", "Host: example.com", "Connection: close"), expect=(200,))
case("a path above the root: 400", "fast_head", head("GET /../x HTTP/1.1", "Host: example.com"), expect=(400,))
case("TRACE: 405", "fast_head", head("TRACE / HTTP/1.1", "Host: example.com"), expect=(405,))
case("Host with port and trailing dot", "fast_head",
     head("GET /h HTTP/1.1", "Host: example.com.:80", "Connection: close"), expect=(200,))
case("upgrade with names in lower case and Connection: keep-alive, Upgrade", "fast_head",
     head("GET /ws/l HTTP/1.1", "host: example.com", "upgrade: websocket", "connection: keep-alive, Upgrade",
          f"sec-websocket-key: {KEY}", "sec-websocket-version: 13"), ws=True, expect=(101,))
case("upgrade on HTTP/1.0: no tunnel", "fast_head",
     head("GET /ws/o HTTP/1.0", "Host: example.com", "Upgrade: websocket", "Connection: Upgrade",
          f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13"))
