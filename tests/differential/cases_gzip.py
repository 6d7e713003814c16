"""``gzip on`` (ngx_http_gzip_filter_module, ngx_http_gzip_ok): which answers
nginx compresses and how their heads change -- Content-Encoding pushed
after add_header's lines, Content-Length and Accept-Ranges cleared (a Range
gets the whole file), the ETag weakened, Vary: Accept-Encoding after
Connection, chunked to HTTP/1.1, close-delimited to HTTP/1.0 -- and the
compressed bytes themselves, compared as they are (the oracle de-chunks a
chunked body, so nginx's chunk sizes do not matter): static files,
``return`` text, an error_page file, proxied answers with a length and
chunked.  nginx's own error pages name nginx, so only their heads compare.
"""

from __future__ import annotations

from cases import case
from cases import group as add_group
from oracle import Group, get, req

FIELDS = frozenset(
    {"content-encoding", "vary", "etag", "last-modified", "accept-ranges", "content-range", "x-a", "x-b",
     "cache-control", "expires"}
)  # fmt: skip

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog %d\n" % (i, i * i % 97) for i in range(60))
BIG = b" ".join(b"%d" % (i * i % 9973) for i in range(60_000))  # ~280 kB: several reads
HTML = b"<html><body>" + b"<p>hello gzip</p>" * 80 + b"</body></html>\n"

DOCROOT: dict[str, bytes] = {
    "a.txt": TEXT,
    "big.txt": BIG,
    "page.html": HTML,
    "small.txt": b"tiny\n",
    "img.png": bytes(range(256)) * 4,
    "data.json": b'{"k": "' + b"v" * 300 + b'"}',
    "err/404.html": b"<html>custom not found " + b"x" * 100 + b"</html>\n",
}

LONG = "return text " * 20

add_group(Group("gzip", docroot=DOCROOT, http=f"""
    types {{ text/html html; text/plain txt; application/json json; image/png png; }}
    default_type text/plain;
    server {{
        listen 127.0.0.1:@L0@;
        root @ROOT@;
        gzip on;
        gzip_types text/plain application/json;
        location / {{ }}
        location /vary/ {{ alias @ROOT@/; gzip_vary on; }}
        location = /ret {{ gzip_vary on; return 200 "{LONG}"; }}
        location = /retshort {{ return 200 "short"; }}
        location = /r500 {{ return 500 "{LONG}"; }}
        location = /r403 {{ return 403; }}
        location /lvl9/ {{ alias @ROOT@/; gzip_comp_level 9; }}
        location /lvl5/ {{ alias @ROOT@/; gzip_comp_level 5; }}
        location /min/ {{ alias @ROOT@/; gzip_min_length 4000; }}
        location /min0/ {{ alias @ROOT@/; gzip_min_length 0; }}
        location /css/ {{ alias @ROOT@/; gzip_types text/css; }}
        location /any/ {{ alias @ROOT@/; gzip_types *; }}
        location /v10/ {{ alias @ROOT@/; gzip_http_version 1.0; }}
        location /pany/ {{ alias @ROOT@/; gzip_proxied any; }}
        location /pexp/ {{ alias @ROOT@/; gzip_proxied expired; expires -1h; }}
        location /pnolm/ {{ alias @ROOT@/; gzip_proxied no_last_modified; }}
        location /msie/ {{ alias @ROOT@/; gzip_disable msie6; }}
        location /re/ {{ alias @ROOT@/; gzip_disable "^curl/[0-9]" "wget"; }}
        location /hdr/ {{ alias @ROOT@/; add_header X-A 1; add_header X-B 2; gzip_vary on; }}
        location /etag/ {{ alias @ROOT@/; add_header ETag "unquoted"; }}
        location /off/ {{ alias @ROOT@/; gzip off; }}
        location /e404/ {{ error_page 404 /err/404.html; gzip_vary on; }}
        location /p/ {{ proxy_pass http://127.0.0.1:@B0@; gzip_min_length 1; gzip_vary on; }}
        location /poff/ {{ proxy_pass http://127.0.0.1:@B0@; gzip off; }}
        location /pmin/ {{ proxy_pass http://127.0.0.1:@B0@; }}
        location /pnb/ {{ proxy_pass http://127.0.0.1:@B0@; proxy_buffering off; gzip_min_length 1; }}
        # a large answer from this side's own file server (L1): many reads, streamed
        location /self/ {{ proxy_pass http://127.0.0.1:@L1@/; gzip_vary on; }}
        location /selfnolm/ {{ proxy_pass http://127.0.0.1:@L1@/; gzip_proxied no_last_modified; }}
        location /selfetag/ {{ proxy_pass http://127.0.0.1:@L1@/; gzip_proxied no_etag expired; }}
        location /selfcc/ {{ proxy_pass http://127.0.0.1:@L1@/cc/; gzip_proxied no-cache; }}
        location /selfenc/ {{ proxy_pass http://127.0.0.1:@L1@/enc/; }}
        location = /selfparam {{ proxy_pass http://127.0.0.1:@L1@/param; }}
        location = /selfcs {{ proxy_pass http://127.0.0.1:@L1@/cs; }}
        location = /if.txt {{ if ($arg_plain) {{ gzip off; }} alias @ROOT@/a.txt; }}
        location /list/ {{ alias @ROOT@/; autoindex on; gzip_vary on; }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        root @ROOT@;
        location /cc/ {{ alias @ROOT@/; add_header Cache-Control "private, no-cache"; }}
        location = /param {{ default_type "text/plain; format=flowed"; return 200 "{LONG}"; }}
        location = /cs {{ default_type "text/plain; charset=utf-8"; return 200 "{LONG}"; }}
        location /enc/ {{ alias @ROOT@/; add_header Content-Encoding br; }}
    }}
"""))

AE = "Accept-Encoding: gzip, deflate\r\n"


def gz(id: str, data: bytes, expect: int, body: bool = True, fields: frozenset[str] = FIELDS) -> None:
    case(id, "gzip", data, expect=(expect,), fields=fields, body=body)


# static files
gz("static text file", get("/a.txt", extra=AE), 200)
gz("static html file, default types", get("/page.html", extra=AE), 200)
gz("a large file, streamed in pieces", get("/big.txt", extra=AE), 200)
gz("without Accept-Encoding: as it is", get("/a.txt"), 200)
gz("Accept-Encoding without gzip", get("/a.txt", extra="Accept-Encoding: deflate, br\r\n"), 200)
gz("gzip;q=0 declines", get("/a.txt", extra="Accept-Encoding: gzip;q=0\r\n"), 200)
gz("gzip; q=0.5 accepts", get("/a.txt", extra="Accept-Encoding: deflate, gzip; q=0.5\r\n"), 200)
gz("x-gzip is not gzip", get("/a.txt", extra="Accept-Encoding: x-gzip\r\n"), 200)
gz("a type not in gzip_types", get("/img.png", extra=AE), 200)
gz("application/json in gzip_types", get("/data.json", extra=AE), 200)
gz("shorter than gzip_min_length 20", get("/small.txt", extra=AE), 200)
gz("gzip_min_length 4000 misses", get("/min/a.txt", extra=AE), 200)
gz("gzip_min_length 0, a tiny file", get("/min0/small.txt", extra=AE), 200)
gz("gzip_types text/css: text/html still", get("/css/page.html", extra=AE), 200)
gz("gzip_types text/css: text/plain no longer", get("/css/a.txt", extra=AE), 200)
gz("gzip_types *", get("/any/img.png", extra=AE), 200)
gz("gzip_comp_level 9", get("/lvl9/big.txt", extra=AE), 200)
gz("gzip_comp_level 5", get("/lvl5/a.txt", extra=AE), 200)
gz("gzip off in a location", get("/off/a.txt", extra=AE), 200)
gz("HEAD: the compressed head", req("HEAD", "/a.txt", headers=AE), 200)
gz("a Range: the whole file compressed", req("GET", "/a.txt", headers=AE + "Range: bytes=0-9\r\n"), 200)
gz("a Range without Accept-Encoding: 206", req("GET", "/a.txt", headers="Range: bytes=0-9\r\n"), 206)
gz("If-None-Match: 304, not compressed", req("GET", "/a.txt", headers=AE + 'If-None-Match: "65937d25-d0d"\r\n'), 304)
gz("an unquoted ETag is dropped", get("/etag/a.txt", extra=AE), 200)
gz("gzip_vary on, compressed", get("/vary/a.txt", extra=AE), 200)
gz("gzip_vary on, no Accept-Encoding: Vary all the same", get("/vary/a.txt"), 200)
gz("gzip_vary on, a type not compressed: no Vary", get("/vary/img.png", extra=AE), 200)
gz("add_header lines, then Content-Encoding", get("/hdr/a.txt", extra=AE), 200)
gz("HTTP/1.0: not compressed by default", get("/a.txt", extra=AE, version="1.0"), 200)
gz("gzip_http_version 1.0: close-delimited", get("/v10/a.txt", extra=AE, version="1.0"), 200)
gz("gzip_http_version 1.0, HTTP/1.1", get("/v10/a.txt", extra=AE), 200)
gz("Via, gzip_proxied off", get("/a.txt", extra=AE + "Via: 1.1 proxy\r\n"), 200)
gz("Via, gzip_proxied any", get("/pany/a.txt", extra=AE + "Via: 1.1 proxy\r\n"), 200)
# (Expires of ``expires -1h`` is the second each server answers in, less an
# hour: Cache-Control's no-cache is compared, as in cases_headers)
gz("Via, gzip_proxied expired, an expired answer", get("/pexp/a.txt", extra=AE + "Via: 1.1 proxy\r\n"), 200,
   fields=FIELDS - {"expires"})
gz("Via, gzip_proxied no_last_modified, a file", get("/pnolm/a.txt", extra=AE + "Via: 1.1 proxy\r\n"), 200)
MSIE6 = "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n"
gz("gzip_disable msie6, MSIE 6", req("GET", "/msie/a.txt", headers=AE + MSIE6), 200)
gz("gzip_disable msie6, MSIE 6 SV1", req("GET", "/msie/a.txt", headers=AE + MSIE6.replace("5.1)", "5.1; SV1)")), 200)
gz("gzip_disable msie6, no MSIE", get("/msie/a.txt", extra=AE), 200)
gz("gzip_disable regex matches", req("GET", "/re/a.txt", headers=AE + "User-Agent: curl/8.0\r\n"), 200)
gz("gzip_disable regex caseless", req("GET", "/re/a.txt", headers=AE + "User-Agent: WGET/1.2\r\n"), 200)
gz("gzip_disable regex misses", req("GET", "/re/a.txt", headers=AE + "User-Agent: xcurl/8\r\n"), 200)
# return and nginx's own pages
gz("return text", get("/ret", extra=AE), 200)
gz("return text, HTTP/1.0 (not compressed)", get("/ret", extra=AE, version="1.0"), 200)
gz("return text, HEAD", req("HEAD", "/ret", headers=AE), 200)
gz("return text shorter than the minimum", get("/retshort", extra=AE), 200)
gz("a 500 is never compressed", get("/r500", extra=AE), 500)
gz("nginx's 404 page", get("/missing.txt", extra=AE), 404, body=False)
gz("nginx's 403 page", get("/r403", extra=AE), 403, body=False)
gz("nginx's 404 page, no Accept-Encoding", get("/missing.txt"), 404, body=False)
gz("error_page 404 to a file: compressed 404", get("/e404/nothing", extra=AE), 404)
# proxied
gz("proxied with Content-Length", get("/p/x", extra=AE), 200)
gz("proxied chunked", get("/p/chunked", extra=AE), 200)
gz("proxied close-delimited", get("/p/eof", extra=AE), 200)
gz("proxied without Accept-Encoding: Vary", get("/p/x"), 200)
gz("proxied 404 compressed", get("/p/status/404", extra=AE), 404)
gz("proxied 500 not compressed", get("/p/status/500", extra=AE), 500)
gz("proxied, gzip off", get("/poff/x", extra=AE), 200)
gz("proxied shorter than gzip_min_length", get("/pmin/x", extra=AE), 200)
gz("proxied chunked, no minimum for an unknown length", get("/pmin/chunked", extra=AE), 200)
gz("proxied HEAD", req("HEAD", "/p/x", headers=AE), 200)
gz("proxied HTTP/1.0", get("/p/chunked", extra=AE, version="1.0"), 200)
gz("proxy_buffering off: flushed per read", get("/pnb/x", extra=AE), 200)
gz("proxy_buffering off, chunked", get("/pnb/chunked", extra=AE), 200)
gz("proxied with Via, gzip_proxied off", get("/p/x", extra=AE + "Via: 1.0 cdn\r\n"), 200)
gz("proxied large file: compressed as it streams", get("/self/big.txt", extra=AE), 200)
gz("proxied file: upstream ETag weakened, Accept-Ranges cleared", get("/self/a.txt", extra=AE), 200)
gz("proxied file, HTTP/1.0 client with gzip_http_version 1.1", get("/self/a.txt", extra=AE, version="1.0"), 200)
gz("proxied, a Range passed to the upstream", req("GET", "/self/a.txt", headers=AE + "Range: bytes=0-99\r\n"), 206)
gz("Via, gzip_proxied no_last_modified, an upstream Last-Modified", get("/selfnolm/a.txt", extra=AE + "Via: x\r\n"), 200)
gz("Via, gzip_proxied no_etag expired, an upstream ETag", get("/selfetag/a.txt", extra=AE + "Via: x\r\n"), 200)
gz("Via, gzip_proxied no-cache, Cache-Control: private, no-cache", get("/selfcc/a.txt", extra=AE + "Via: x\r\n"), 200)
gz("an upstream Content-Encoding: passed as it is", get("/selfenc/a.txt", extra=AE), 200)
gz("autoindex page compressed", get("/list/", extra=AE), 200)
gz("autoindex page, HTTP/1.0 with gzip_http_version 1.1", get("/list/", extra=AE, version="1.0"), 200)
gz("autoindex page, HEAD", req("HEAD", "/list/", headers=AE), 200)
case("two compressed answers on one connection", "gzip",
     req("GET", "/a.txt", headers=AE, close=False), req("GET", "/ret", headers=AE), expect=(200, 200), fields=FIELDS, body=True)
case("HTTP/1.0 keep-alive: a compressed answer closes", "gzip",
     req("GET", "/v10/a.txt", headers=AE + "Connection: keep-alive\r\n", version="1.0", close=False),
     expect=(200,), fields=FIELDS, body=True)  # fmt: skip
gz("gzip off in an if block", get("/if.txt?plain=1", extra=AE), 200)
gz("gzip on outside the if block", get("/if.txt", extra=AE), 200)

# inheritance: http -> server -> location, each directive on its own
add_group(Group("gzip_inherit", docroot=DOCROOT, http="""
    types { text/html html; text/plain txt; application/json json; image/png png; }
    default_type text/plain;
    gzip on;
    gzip_types text/plain;
    gzip_vary on;
    gzip_comp_level 6;
    gzip_disable "bot";
    gzip_proxied any;
    server {
        listen 127.0.0.1:@L0@;
        root @ROOT@;
        gzip_min_length 3000;
        location / { }
        location /json/ { alias @ROOT@/; gzip_types application/json; gzip_min_length 1; }
        location /nobot/ { alias @ROOT@/; gzip_disable msie6; }
        location /nested/ {
            gzip_min_length 1;
            location /nested/deep/ { alias @ROOT@/; gzip_comp_level 2; }
        }
    }
    server {
        listen 127.0.0.1:@L1@;
        root @ROOT@;
        gzip off;
        location / { }
        location /on/ { alias @ROOT@/; gzip on; }
    }
"""))


def gi(id: str, data: bytes, expect: int, target: str = "L0") -> None:
    case(id, "gzip_inherit", data, expect=(expect,), fields=FIELDS, body=True, target=target)


gi("http's settings, level 6", get("/big.txt", extra=AE), 200)
gi("the server's gzip_min_length 3000: a 3341-byte file", get("/a.txt", extra=AE), 200)
gi("the server's gzip_min_length: a shorter file", get("/data.json", extra=AE), 200)
gi("a location's gzip_types replaces http's", get("/json/a.txt", extra=AE), 200)
gi("a location's gzip_types, its own type", get("/json/data.json", extra=AE + "User-Agent: x\r\n"), 200)
gi("http's gzip_disable regex", req("GET", "/big.txt", headers=AE + "User-Agent: a bot\r\n"), 200)
gi("gzip_disable msie6 alone drops the inherited regexes", req("GET", "/nobot/big.txt", headers=AE + "User-Agent: a bot\r\n"), 200)
gi("http's gzip_proxied any with Via", get("/big.txt", extra=AE + "Via: 1.1 x\r\n"), 200)
gi("nested location: its own level, its parent's minimum", get("/nested/deep/small.txt", extra=AE), 200)
gi("a server with gzip off", get("/big.txt", extra=AE), 200, target="L1")
gi("gzip on again in its location", get("/on/big.txt", extra=AE), 200, target="L1")
gz("gzip_vary on, a Range without Accept-Encoding: 206 with Vary", req("GET", "/vary/a.txt", headers="Range: bytes=0-9\r\n"), 206)
gz("gzip_vary on, an unsatisfiable Range without Accept-Encoding", req("GET", "/vary/a.txt", headers="Range: bytes=99999-\r\n"), 416, body=False)
gz("an unsatisfiable Range with Accept-Encoding: the whole file compressed", req("GET", "/vary/a.txt", headers=AE + "Range: bytes=99999-\r\n"), 200)
gz("an upstream type with a parameter other than charset: not in gzip_types", get("/selfparam", extra=AE), 200)
gz("an upstream type with a charset: its type matches", get("/selfcs", extra=AE), 200)
gz("Accept-Encoding x-gzipgzip: nginx searches on", get("/a.txt", extra="Accept-Encoding: x-gzipgzip\r\n"), 200)
gz("Accept-Encoding GZIP, deflate", get("/a.txt", extra="Accept-Encoding: GZIP, deflate\r\n"), 200)
gz("Accept-Encoding gzip;q=1.5", get("/a.txt", extra="Accept-Encoding: gzip;q=1.5\r\n"), 200)
