"""Static content (issue 12, item 1): root, alias (prefix and regex with
captures), index, try_files, autoindex, types, the validators (ETag,
Last-Modified), 304/412, single ranges (206/416), the directory 301, 403
and 404, and ``error_page`` to a static file.

The docroot is written once for both servers with one fixed mtime
(oracle.write_docroot), so ETag and Last-Modified are compared as well as
the bodies, byte for byte.
"""

from __future__ import annotations

from cases import case
from cases import group as add_group
from oracle import Group, get, req

FIELDS = frozenset({
    "etag", "last-modified", "content-range", "accept-ranges", "expires", "cache-control",
})

LONG = "a-very-long-file-name-that-goes-past-the-fifty-columns-nginx-shows.txt"

DOCROOT: dict[str, bytes] = {
    "index.html": b"<h1>home</h1>\n",
    "a.txt": b"0123456789",
    "style.css": b"body{}\n",
    "app.js": b"alert(1)\n",
    "img.png": bytes(range(256)),
    "data.json": b'{"k": 1}\n',
    "noext": b"plain\n",
    "big.bin": bytes(i % 251 for i in range(300_000)),
    "dir/index.html": b"dir index\n",
    "dir/ten.txt": b"abcdefghij",
    "noidx/x.txt": b"x\n",
    "multi/other.html": b"other\n",
    "errors/50x.html": b"<p>sorry</p>\n",
    "spa/index.html": b"spa shell\n",
    "spa/assets/app.css": b".x{}\n",
    "list/sub/": b"",
    "list/b.txt": b"bb\n",
    "list/a & <b>.txt": b"amp\n",
    "list/.hidden": b"h\n",
    "list/" + LONG: b"long\n",
    "list/kilo.bin": b"k" * 20_000,
    "link.txt": b"symlink:a.txt",
}

add_group(Group("static", docroot=DOCROOT, http="""
    server {
        listen 127.0.0.1:@L0@;
        include /etc/nginx/mime.types;
        default_type application/octet-stream;
        root @ROOT@;
        index index.html;
        error_page 500 502 503 504 /50x.html;
        location = /50x.html { root @ROOT@/errors; }
        location / { }
        location /multi/ { index missing.html other.html; }
        location /list/ { autoindex on; }
        location /list-kb/ { alias @ROOT@/list/; autoindex on; autoindex_exact_size off; }
        location /al/ { alias @ROOT@/dir/; }
        location ~ ^/cap/(.+)\\.txt$ { alias @ROOT@/dir/$1.txt; }
        location /spa/ { try_files $uri $uri/ /spa/index.html; }
        location /tf404/ { try_files $uri =404; }
        location /tfnamed/ { try_files $uri @fallback; }
        location @fallback { return 200 "named\\n"; }
        location /noetag/ { etag off; alias @ROOT@/dir/; }
        location /imsbefore/ { if_modified_since before; alias @ROOT@/dir/; }
        location /imsoff/ { if_modified_since off; alias @ROOT@/dir/; }
        location /custom/ { types { text/x-custom txt; } alias @ROOT@/dir/; }
        location /broken/ { proxy_pass http://127.0.0.1:@DEAD@; }
    }
"""))

ETAG = '"65937d25-a"'  # mtime 1704164645, 10 bytes
LM = "Tue, 02 Jan 2024 03:04:05 GMT"


def sc(id: str, data: bytes, expect: int, body: bool = False) -> None:
    case(f"static: {id}", "static", data, expect=(expect,), fields=FIELDS, body=body)


def h(path: str, header: str) -> bytes:
    return get(path, extra=header + "\r\n")


# --- files, types, HEAD
sc("index of /", get("/"), 200)
sc("a file", get("/index.html"), 200)
sc("HEAD of a file", req("HEAD", "/a.txt"), 200)
sc("text/plain", get("/a.txt"), 200)
sc("text/css from mime.types", get("/style.css"), 200)
sc("javascript from mime.types", get("/app.js"), 200)
sc("image/png, binary body", get("/img.png"), 200)
sc("application/json", get("/data.json"), 200)
sc("no extension: default_type", get("/noext"), 200)
sc("types {} in a location", get("/custom/ten.txt"), 200)
sc("300 KB file, whole", get("/big.bin"), 200)
sc("HTTP/1.0 request", get("/a.txt", version="1.0"), 200)
sc("symlink followed", get("/link.txt"), 200)
sc("percent-encoded dot in a name", get("/a%2etxt"), 200)
# --- directories
sc("directory without slash: 301", get("/dir"), 301)
sc("directory without slash, with args: 301 keeps them", get("/dir?x=1&y=2"), 301)
sc("directory: index.html", get("/dir/"), 200)
sc("index names tried in order", get("/multi/"), 200)
sc("directory without index: 403", get("/noidx/"), 403)
sc("missing file: 404", get("/missing.txt"), 404)
sc("missing directory: 404", get("/missing/"), 404)
sc("file as a directory: 404", get("/a.txt/"), 404)
# --- methods
sc("POST to a file: 405", req("POST", "/a.txt", headers="Content-Length: 0\r\n"), 405)
sc("DELETE: 405", req("DELETE", "/a.txt"), 405)
# --- root escapes
sc("encoded dot-dot above the root: 400", get("/%2e%2e/%2e%2e/etc/passwd"), 400)
sc("dot-dot above the root: 400", get("/dir/../../etc/passwd"), 400)
sc("encoded NUL: 400", get("/a.txt%00.html"), 400)
sc("dot-dot inside the root", get("/dir/../a.txt"), 200)
# --- alias
sc("alias with a prefix location", get("/al/ten.txt"), 200)
sc("alias directory index", get("/al/"), 200)
sc("alias in a regex location with a capture", get("/cap/ten.txt"), 200)
sc("alias in a regex location, missing", get("/cap/nothing.txt"), 404)
# --- try_files
sc("try_files: the file", get("/spa/assets/app.css"), 200)
sc("try_files: fallback URI", get("/spa/some/route"), 200)
sc("try_files: $uri/ then index", get("/spa/"), 200)
sc("try_files =404", get("/tf404/nothing"), 404)
sc("try_files @named", get("/tfnamed/nothing"), 200)
# --- ranges
sc("Range bytes=0-4", h("/a.txt", "Range: bytes=0-4"), 206)
sc("Range bytes=5-", h("/a.txt", "Range: bytes=5-"), 206)
sc("Range suffix bytes=-3", h("/a.txt", "Range: bytes=-3"), 206)
sc("Range past the end: clamped", h("/a.txt", "Range: bytes=4-999"), 206)
sc("Range not satisfiable: 416", h("/a.txt", "Range: bytes=100-"), 416)
sc("Range malformed: 416", h("/a.txt", "Range: bytes=x-1"), 416)
sc("Range with another unit: whole file", h("/a.txt", "Range: items=0-1"), 200)
sc("overlapping ranges larger than the file: whole file", h("/a.txt", "Range: bytes=0-6,2-8"), 200)
sc("Range, last byte of a large file", h("/big.bin", "Range: bytes=299999-"), 206)
sc("Range with HEAD", req("HEAD", "/a.txt", headers="Range: bytes=1-2\r\n"), 206)
sc("If-Range with the ETag: 206", h("/a.txt", f"Range: bytes=1-2\r\nIf-Range: {ETAG}"), 206)
sc("If-Range with another ETag: 200", h("/a.txt", 'Range: bytes=1-2\r\nIf-Range: "x"'), 200)
sc("If-Range with the date: 206", h("/a.txt", f"Range: bytes=1-2\r\nIf-Range: {LM}"), 206)
# --- conditionals
sc("If-None-Match equal: 304", h("/a.txt", f"If-None-Match: {ETAG}"), 304)
sc("If-None-Match in a list: 304", h("/a.txt", f'If-None-Match: "x", {ETAG}'), 304)
sc("If-None-Match weak: 304", h("/a.txt", f"If-None-Match: W/{ETAG}"), 304)
sc("If-None-Match *: 304", h("/a.txt", "If-None-Match: *"), 304)
sc("If-None-Match other: 200", h("/a.txt", 'If-None-Match: "nope"'), 200)
sc("If-Modified-Since exact: 304", h("/a.txt", f"If-Modified-Since: {LM}"), 304)
sc("If-Modified-Since later (exact): 200", h("/a.txt", "If-Modified-Since: Wed, 03 Jan 2024 00:00:00 GMT"), 200)
sc("if_modified_since before, later date: 304",
   h("/imsbefore/ten.txt", "If-Modified-Since: Wed, 03 Jan 2024 00:00:00 GMT"), 304)
sc("if_modified_since off: 200", h("/imsoff/ten.txt", f"If-Modified-Since: {LM}"), 200)
sc("If-Unmodified-Since earlier: 412", h("/a.txt", "If-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT"), 412)
sc("If-Unmodified-Since equal: 200", h("/a.txt", f"If-Unmodified-Since: {LM}"), 200)
sc("If-Match other: 412", h("/a.txt", 'If-Match: "nope"'), 412)
sc("If-Match *: 200", h("/a.txt", "If-Match: *"), 200)
sc("etag off: no ETag, If-None-Match ignored", h("/noetag/ten.txt", f"If-None-Match: {ETAG}"), 200)
# --- autoindex
sc("autoindex listing", get("/list/"), 200)
sc("autoindex, sizes rounded", get("/list-kb/"), 200)
sc("autoindex, HEAD", req("HEAD", "/list/"), 200)
sc("autoindex over HTTP/1.0", get("/list/", version="1.0"), 200)
# --- error_page to a static file
sc("error_page 502 /50x.html (root in an exact location)", get("/broken/x"), 502, body=True)
# --- a body on a static location is read and dropped: the connection goes on
case("static: POST with a body, then a GET on the same connection", "static",
     req("POST", "/a.txt", body=b"abc", close=False), get("/a.txt"),
     expect=(405, 200), fields=FIELDS)
