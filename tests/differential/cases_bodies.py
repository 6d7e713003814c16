"""Request bodies (issue 8, items 3 and 4): what the backend receives with
``proxy_request_buffering`` on and off, bodies past ``client_body_buffer_size``
(nginx: a temp file), chunked bodies, and ``client_body_timeout``.

A stalled body is answered by no response at all: nginx's 408 terminates the
request (ngx_http_finalize_request() closes on NGX_HTTP_REQUEST_TIME_OUT).
The oracle cannot tell *when* the connection closed once no answer came, so
the timing bound is checked in tests/test_bodies.py.
"""

from __future__ import annotations

from pathlib import Path

from cases import case, group
from oracle import Group, req

_SSL = Path(__file__).resolve().parent.parent / "configs" / "ssl"

group(Group("bodies", """
    client_max_body_size 10m;
    client_body_buffer_size 1k;
    server {
        listen 127.0.0.1:@L0@;
        client_body_timeout 1s;
        location /on/ { proxy_pass http://127.0.0.1:@B0@; }
        location /on11/ { proxy_http_version 1.1; proxy_pass http://127.0.0.1:@B0@; }
        location /off/ {
            proxy_request_buffering off;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /off10/ { proxy_request_buffering off; proxy_pass http://127.0.0.1:@B0@; }
        location /bigbuf/ { client_body_buffer_size 1m; proxy_pass http://127.0.0.1:@B0@; }
        location /retry/ {
            proxy_read_timeout 1s;
            proxy_pass http://127.0.0.1:@B0@;
            error_page 504 = @again;
        }
        location @again { proxy_read_timeout 1s; proxy_pass http://127.0.0.1:@B1@; }
    }
    server {
        listen 127.0.0.1:@L1@ ssl;
        ssl_certificate cert.pem;
        ssl_certificate_key key.pem;
        location /on/ { proxy_pass http://127.0.0.1:@B0@; }
        location /off/ {
            proxy_request_buffering off;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:@B0@;
        }
    }
""", files={"cert.pem": (_SSL / "cert.pem").read_text(), "key.pem": (_SSL / "key.pem").read_text()}))

_CHUNKED = "Transfer-Encoding: chunked\r\n"
_CHUNKS = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
_BIG = bytes(range(256)) * 160  # 40 KiB: past the 1k buffer (a temp file in nginx)


def _chunks(data: bytes, size: int) -> bytes:
    out = b"".join(b"%x\r\n%b\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size))
    return out + b"0\r\n\r\n"


for where, what in (("on", "buffered"), ("on11", "buffered, HTTP/1.1 upstream"), ("off", "streamed"),
                    ("off10", "streaming asked, HTTP/1.0 upstream"), ("bigbuf", "in a 1m buffer")):
    case(f"{what}: small body with Content-Length", "bodies",
         req("POST", f"/{where}/small", body=b"a=1&b=2"), expect=(200,))
    case(f"{what}: body past client_body_buffer_size", "bodies",
         req("POST", f"/{where}/big", body=_BIG), expect=(200,))
    case(f"{what}: chunked body", "bodies",
         req("POST", f"/{where}/chunked", headers=_CHUNKED) + _CHUNKS, expect=(200,))
    case(f"{what}: big chunked body", "bodies",
         req("POST", f"/{where}/bigchunked", headers=_CHUNKED) + _chunks(_BIG, 3000), expect=(200,))
    case(f"{what}: Expect: 100-continue", "bodies",
         req("POST", f"/{where}/expect", headers="Expect: 100-continue\r\n", body=b"data"), expect=(200,))
    case(f"{what}: a body, then a pipelined request", "bodies",
         req("POST", f"/{where}/p1", body=_BIG[:3000], close=False) + req("GET", f"/{where}/p2"), b"",
         expect=(200, 200))

case("Content-Length: 0", "bodies", req("POST", "/off/zero", headers="Content-Length: 0\r\n"), expect=(200,))
case("chunked with no data", "bodies", req("POST", "/off/nodata", headers=_CHUNKED) + b"0\r\n\r\n", expect=(200,))
case("client_body_timeout: a stalled body gets no answer", "bodies",
     req("POST", "/on/stall", headers="Content-Length: 10\r\n") + b"abc")
# (streamed, the stalled request is also upstream: whether the backend has
# seen that connection close by the time the client has is a race between
# threads, on either side -- tests/test_bodies.py waits for it instead)
case("error_page to a named location: the body goes to the second upstream too", "bodies",
     req("POST", "/retry/hang", body=_BIG), expect=(504,))
case("error_page to a named location: a small body goes again", "bodies",
     req("POST", "/retry/hang", body=b"a=1&b=2"), expect=(504,))

for where in ("on", "off"):
    case(f"over TLS, {where}: body past the buffer", "bodies",
         req("POST", f"/{where}/tls", body=_BIG * 8), target="L1", tls=True, expect=(200,))
    case(f"over TLS, {where}: chunked body", "bodies",
         req("POST", f"/{where}/tlschunked", headers=_CHUNKED) + _chunks(_BIG, 5000), target="L1", tls=True,
         expect=(200,))
