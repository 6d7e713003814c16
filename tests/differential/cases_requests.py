"""Request validation (issue 8, items 2 and 8): smuggling-shaped bodies,
Transfer-Encoding variants, and heads llhttp and nginx read differently.

Every case also compares what the backend received: where nginx refuses a
request, the backend must see nothing from ngxws either.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, req

group(Group("requests", f"""
    server {{
        listen 127.0.0.1:@L0@;
        location / {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@; }}
        location /ret/ {{ return 200 "ret\\n"; }}
    }}
"""))

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def chunked(body: bytes, path: str = "/p", te: str = "chunked", version: str = "1.1", extra: str = "") -> bytes:
    return req("POST", path, headers=f"Transfer-Encoding: {te}\r\n{extra}", version=version) + body


def ws(path: str = "/ws/chat", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


# --- chunked bodies: nothing reaches the backend unless the whole body is valid
case("chunked body: forwarded with Content-Length", "requests", chunked(b"5\r\nhello\r\n0\r\n\r\n"), expect=(200,))
case("chunked body: bad chunk size", "requests", chunked(b"3\r\nabc\r\nzz\r\n\r\n"), expect=(400,))
case("chunked body: negative chunk size", "requests", chunked(b"-5\r\nhello\r\n0\r\n\r\n"), expect=(400,))
case("chunked body: chunk size overflows", "requests", chunked(b"fffffffffffffffff\r\nx\r\n0\r\n\r\n"), expect=(400,))
case("chunked body: 0x prefix", "requests", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), expect=(400,))
case("chunked body: data longer than its size", "requests", chunked(b"3\r\nabcdef\r\n0\r\n\r\n"), expect=(400,))
case("chunked body: extensions and spaces after the size", "requests",
     chunked(b"5;name=value\r\nhello\r\n3 \r\nabc\r\n0\r\n\r\n"), expect=(200,))
case("chunked body: LF line ends", "requests", chunked(b"5\nhello\n0\n\n"), expect=(200,))
case("chunked body: trailers are read and dropped", "requests",
     chunked(b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), expect=(200,))
case("chunked body: Chunked in capitals", "requests", chunked(b"5\r\nhello\r\n0\r\n\r\n", te="Chunked"), expect=(200,))
case("chunked body: bad chunk, then a pipelined request", "requests",
     chunked(b"3\r\nabc\r\nzz\r\n\r\n", extra="Connection: keep-alive\r\n") + req("GET", "/second"), expect=(400,))
case("chunked body on a return location: bad chunk with the head", "requests",
     chunked(b"zz\r\nhello\r\n0\r\n\r\n", path="/ret/x"), expect=(400,))

# --- Transfer-Encoding and Content-Length as nginx reads them
case("Transfer-Encoding: identity, chunked: 501", "requests",
     chunked(b"3\r\nabc\r\n0\r\n\r\n", te="identity, chunked"), expect=(501,))
case("Transfer-Encoding: chunked, identity: 501", "requests",
     chunked(b"3\r\nabc\r\n0\r\n\r\n", te="chunked, identity"), expect=(501,))
case("Transfer-Encoding: xchunked: 501", "requests", chunked(b"3\r\nabc\r\n0\r\n\r\n", te="xchunked"), expect=(501,))
case("Transfer-Encoding: identity: 501", "requests", chunked(b"", te="identity"), expect=(501,))
case("Transfer-Encoding on HTTP/1.0: 400", "requests",
     chunked(b"3\r\nabc\r\n0\r\n\r\n", version="1.0"), expect=(400,))
case("Transfer-Encoding with Content-Length: 400", "requests",
     chunked(b"3\r\nabc\r\n0\r\n\r\n", extra="Content-Length: 10\r\n"), expect=(400,))
case("two Transfer-Encoding lines: 400", "requests",
     chunked(b"3\r\nabc\r\n0\r\n\r\n", extra="Transfer-Encoding: chunked\r\n"), expect=(400,))
case("duplicate Content-Length: 400", "requests",
     req("POST", "/p", headers="Content-Length: 5\r\nContent-Length: 5\r\n") + b"hello", expect=(400,))
case("Content-Length -1: 400", "requests", req("POST", "/p", headers="Content-Length: -1\r\n"), expect=(400,))
case("Content-Length +5: 400", "requests", req("POST", "/p", headers="Content-Length: +5\r\n") + b"hello", expect=(400,))
case("Content-Length empty: 400", "requests", req("POST", "/p", headers="Content-Length: \r\n"), expect=(400,))
case("Content-Length over off_t: 400", "requests",
     req("POST", "/p", headers="Content-Length: 99999999999999999999\r\n"), expect=(400,))
case("Content-Length with spaces around is trimmed", "requests",
     req("POST", "/p", headers="Content-Length:   5   \r\n") + b"hello", expect=(200,))
case("duplicate Expect: 400", "requests",
     req("GET", "/p", headers="Expect: a\r\nExpect: b\r\n"), expect=(400,))

# --- upgrades carry their body as a body, then tunnel
case("upgrade with a Content-Length body: the body goes upstream as a body", "requests",
     ws(extra="Content-Length: 5\r\n") + b"hello", expect=(101,))
case("upgrade with a body, then frames through the tunnel", "requests",
     ws(extra="Content-Length: 5\r\n") + b"hello", ws=True, expect=(101,))
case("upgrade with a chunked body", "requests",
     ws(extra="Transfer-Encoding: chunked\r\n") + b"5\r\nhello\r\n0\r\n\r\n", expect=(101,))
case("upgrade with a bad chunked body: 400, nothing tunnelled", "requests",
     ws(extra="Transfer-Encoding: chunked\r\n") + b"zz\r\nhello\r\n0\r\n\r\n", expect=(400,))
case("Upgrade without Connection: upgrade still tunnels", "requests",
     f"GET /ws/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {KEY}\r\n"
     "Sec-WebSocket-Version: 13\r\n\r\n".encode(), ws=True, expect=(101,))

# --- methods
case("CONNECT: 405", "requests", b"CONNECT /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", expect=(405,))
case("CONNECT host:port: 400", "requests", b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", expect=(400,))
case("TRACE: 405", "requests", req("TRACE", "/p"), expect=(405,))
case("unknown method is proxied", "requests", req("M-SEARCH", "/p"), expect=(200,))
case("lower-case method: 400", "requests", req("get", "/p"), expect=(400,))

# --- the request line
case("HTTP/2.0 request line: 505", "requests", req("GET", "/p", version="2.0"), expect=(505,))
case("HTTP/1.2 is served as 1.1", "requests", req("GET", "/p", version="1.2"), expect=(200,))
case("HTTP/1.10 is served as 1.1", "requests", req("GET", "/p", version="1.10"), expect=(200,))
case("HTTP/01.1: 400", "requests", req("GET", "/p", version="01.1"), expect=(400,))
case("spaces around the target", "requests", b"GET   /p   HTTP/1.1  \r\nHost: a\r\nConnection: close\r\n\r\n", expect=(200,))
case("userinfo in absolute-form: 400", "requests",
     b"GET http://user@a.test/p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", expect=(400,))
case("absolute-form with another scheme", "requests",
     b"GET ftp://a.test/p?x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", expect=(200,))
case("absolute-form with an IP literal", "requests",
     b"GET http://[::1]:80/p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", expect=(200,))
case("absolute-form with an empty host: 400", "requests",
     b"GET http:///p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", expect=(400,))
case("invalid %-escape in the path: 400", "requests", req("GET", "/p/%zz"), expect=(400,))
case("invalid %-escape in the args is passed", "requests", req("GET", "/p?x=%zz"), expect=(200,))
case("control byte in the target: 400", "requests", req("GET", "/p/\x01"), expect=(400,))

# --- header lines
case("bare LF line ends", "requests", b"GET /p HTTP/1.1\nHost: a\nConnection: close\n\n", expect=(200,))
case("bare LF on one line", "requests", b"GET /p HTTP/1.1\r\nHost: a\nConnection: close\r\n\r\n", expect=(200,))
case("CR inside a value: 400", "requests", req("GET", "/p", headers="X-A: a\rb\r\n"), expect=(400,))
case("header name with a non-token byte is dropped", "requests",
     req("GET", "/p", headers="X{y}: 1\r\nX\xe9: 2\r\nX-Kept: 3\r\n"), expect=(200,))
case("header name with an underscore is dropped", "requests",
     req("GET", "/p", headers="X_Under: 1\r\nX-Kept: 3\r\n"), expect=(200,))
case("space in a header name: 400", "requests", req("GET", "/p", headers="X Y: 1\r\n"), expect=(400,))
case("space before the colon: 400", "requests", req("GET", "/p", headers="X-Y : 1\r\n"), expect=(400,))
case("tab in a header name: 400", "requests", req("GET", "/p", headers="X\tY: 1\r\n"), expect=(400,))
case("header line starting with a space: 400", "requests", req("GET", "/p", headers=" X: 1\r\n"), expect=(400,))
case("empty header name: 400", "requests", req("GET", "/p", headers=": 1\r\n"), expect=(400,))
case("NUL in a value: 400", "requests", req("GET", "/p", headers="X-A: a\x00b\r\n"), expect=(400,))
case("control bytes and tabs in a value are passed", "requests",
     req("GET", "/p", headers="X-A: \ta\x01b\t\r\n"), expect=(200,))

# --- Host
case("empty Host: 400", "requests", req("GET", "/p", host=" ", headers=""), expect=(400,))
case("Host with a tab: 400", "requests", req("GET", "/p", host="\texample.com"), expect=(400,))
case("Host with a space inside: 400", "requests", req("GET", "/p", host="exa mple.com"), expect=(400,))
case("Host with a backslash is valid", "requests", req("GET", "/p", host="ex\\ample"), expect=(200,))
case("Host starting with a dot is valid", "requests", req("GET", "/p", host=".example.com"), expect=(200,))
case("Host with an unclosed [ is valid", "requests", req("GET", "/p", host="[::1"), expect=(200,))
case("Host with two dots: 400", "requests", req("GET", "/p", host="example..com"), expect=(400,))
case("Host that is only a dot: 400", "requests", req("GET", "/p", host="."), expect=(400,))
case("HTTP/1.1 without Host: 400", "requests", b"GET /p HTTP/1.1\r\nConnection: close\r\n\r\n", expect=(400,))

# --- answers nginx makes itself without reading the body
case("Expect: 100-continue on a return location", "requests",
     req("POST", "/ret/x", headers="Expect: 100-continue\r\n", body=b"hello"), expect=(200,))
case("If-Match on a return location: 412", "requests", req("GET", "/ret/x", headers="If-Match: abc\r\n"), expect=(412,))
case("If-Match: * on a return location", "requests", req("GET", "/ret/x", headers="If-Match: *\r\n"), expect=(200,))
case("return answers before a declared body arrives", "requests",
     req("POST", "/ret/x", headers="Content-Length: 100\r\n"), expect=(200,))

# --- keep-alive and pipelining as nginx reads Connection
case("Connection: keep-alive, close closes", "requests",
     b"GET /p HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\nGET /q HTTP/1.1\r\nHost: a\r\n\r\n", b"",
     expect=(200,))
case("pipelined: a discarded body, then the next request", "requests",
     b"GET /ret/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + req("GET", "/ret/y"), b"", expect=(200, 200))
case("pipelined: an upgrade request answered by return, then the next request", "requests",
     b"GET /ret/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + req("GET", "/q"), b"",
     expect=(200, 200))
case("header line without a colon is passed with an empty value", "requests",
     req("GET", "/p", headers="NoColon\r\n"), expect=(200,))
case("Expect: 100-continue with an unknown Transfer-Encoding: 501 only", "requests",
     req("POST", "/p", headers="Expect: 100-continue\r\nTransfer-Encoding: gzip\r\n"), expect=(501,))

# --- a bad byte before the head outgrows large_client_header_buffers: 400, not 414
case("bad byte in a request line too long for the buffers: 400", "limits",
     get("/\x01" + "u" * 1100), expect=(400,))
case("bad header line before the head outgrows the buffers: 400", "limits",
     req("GET", "/", headers="X Y: 1\r\n" + "".join(f"X-H{i}: {'h' * 900}\r\n" for i in range(4))), expect=(400,))
