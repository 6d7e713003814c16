"""add_header and expires (issue 12, item 1): ngx_http_headers_module's
filter on static files, ``return``, error pages, redirects and proxied
answers; ``always``; variables in values; inheritance (a level with any
add_header replaces the parent's whole list; expires is inherited on its
own); the expires forms (duration, negative, 0, epoch, max, off,
``modified``, ``@`` time of day).

Expires of ``expires 1h`` depends on the second each server answers in, so
those cases compare Cache-Control only; ``epoch``, ``max`` and ``modified``
(from the docroot's fixed mtime) compare Expires too.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case
from cases import group as add_group
from oracle import Group, get, req, upgrade

ADDED = frozenset({"x-a", "x-b", "x-c", "x-var", "x-always", "x-srv", "etag", "last-modified"})
CC = ADDED | {"cache-control"}
EXP = CC | {"expires"}

DOCROOT: dict[str, bytes] = {
    "index.html": b"<h1>home</h1>\n",
    "a.txt": b"0123456789",
    "img.png": bytes(range(64)),
    "dir/index.html": b"dir\n",
}

add_group(Group("addheader", docroot=DOCROOT, http="""
    add_header X-Srv http-level;
    server {
        listen 127.0.0.1:@L0@;
        include /etc/nginx/mime.types;
        root @ROOT@;
        add_header X-A server-a;
        add_header X-Always server-always always;
        expires 1h;
        location / { }
        location /inherit/ { alias @ROOT@/; }
        location /own/ { alias @ROOT@/; add_header X-B own-b; }
        location /noexp/ { alias @ROOT@/; expires off; }
        location /neg/ { alias @ROOT@/; expires -1h; }
        location /zero/ { alias @ROOT@/; expires 0; }
        location /epoch/ { alias @ROOT@/; expires epoch; }
        location /max/ { alias @ROOT@/; expires max; }
        location /mod/ { alias @ROOT@/; expires modified 1h; }
        location /modbig/ { alias @ROOT@/; expires modified 100000d; }
        location /plus/ { alias @ROOT@/; expires +30m; }
        location /daily/ { alias @ROOT@/; expires "@23h30m"; }
        location /var/ { alias @ROOT@/; add_header X-Var "$uri|$arg_q|$request_method"; }
        location /empty/ { alias @ROOT@/; add_header X-Var $arg_missing; add_header X-B b; }
        location /etag/ { alias @ROOT@/; add_header ETag '"mine"'; add_header Last-Modified "Mon, 01 Jan 2001 00:00:00 GMT"; }
        location /cc/ { alias @ROOT@/; expires 10s; add_header Cache-Control private; }
        location = /ret200 { return 200 "hi\\n"; }
        location = /ret204 { return 204; }
        location = /ret302 { return 302 http://example.com/x; }
        location = /ret301rel { return 301 /elsewhere; }
        location = /ret404 { return 404; }
        location = /ret500 { add_header X-B b; add_header X-C c always; return 500; }
        location = /rettext403 { return 403 "no\\n"; }
        location /p/ { proxy_pass http://127.0.0.1:@B0@; }
        location /pown/ { proxy_pass http://127.0.0.1:@B0@; add_header X-B b; add_header X-C c always; expires max; }
        location /pauto/ { proxy_pass http://127.0.0.1:@B0@; }
        location /pexp/ { proxy_pass http://127.0.0.1:@B0@; expires epoch; }
    }
    server {
        listen 127.0.0.1:@L1@;
        root @ROOT@;
        location / { }
        location /x/ { alias @ROOT@/; add_header X-B x-b always; }
    }
"""))


def hc(id: str, data: bytes, expect: int, fields: frozenset[str] = CC, target: str = "L0") -> None:
    case(id, "addheader", data, expect=(expect,), fields=fields, target=target)


hc("static 200 gets the server's headers and expires", get("/a.txt"), 200)
hc("static index.html", get("/"), 200)
hc("static png", get("/img.png"), 200)
hc("static 404: only always", get("/missing.txt"), 404, EXP)
hc("static 304 gets them", get("/a.txt", extra='If-None-Match: "65937d25-a"\r\n'), 304)
hc("static 206 gets them", get("/a.txt", extra="Range: bytes=0-3\r\n"), 206)
hc("static 416: only always", get("/a.txt", extra="Range: bytes=50-60\r\n"), 416, EXP)
hc("directory slash 301 gets them", get("/dir"), 301)
hc("inherited location", get("/inherit/a.txt"), 200)
hc("own add_header replaces the server's list", get("/own/a.txt"), 200)
hc("own add_header: 404 has no always any more", get("/own/nope"), 404, EXP)
hc("expires off", get("/noexp/a.txt"), 200, EXP)
hc("expires negative", get("/neg/a.txt"), 200)
hc("expires 0", get("/zero/a.txt"), 200)
hc("expires epoch", get("/epoch/a.txt"), 200, EXP)
hc("expires max", get("/max/a.txt"), 200, EXP)
hc("expires modified (past)", get("/mod/a.txt"), 200, EXP)
hc("expires modified (future)", get("/modbig/a.txt"), 200, ADDED | {"expires"})
hc("expires +30m", get("/plus/a.txt"), 200)
hc("expires @time of day", get("/daily/a.txt"), 200, ADDED | {"expires"})
hc("variables in add_header", get("/var/a.txt?q=7"), 200)
hc("variables in add_header, HEAD", req("HEAD", "/var/a.txt"), 200)
hc("empty value adds nothing", get("/empty/a.txt"), 200)
hc("add_header ETag / Last-Modified replace", get("/etag/a.txt"), 200)
hc("Cache-Control added after expires", get("/cc/a.txt"), 200)
hc("return 200 text", get("/ret200"), 200)
hc("return 204", get("/ret204"), 204)
hc("return 302 URL", get("/ret302"), 302, EXP)
hc("return 301 relative", get("/ret301rel"), 301, EXP)
hc("return 404", get("/ret404"), 404, EXP)
hc("return 500 in a location with always", get("/ret500"), 500, EXP)
hc("return 403 text", get("/rettext403"), 403, EXP)
hc("proxied 200", get("/p/x"), 200)
hc("proxied 404 from upstream", get("/p/status/404"), 404, EXP)
hc("proxied 302 from upstream", get("/p/status/302"), 302)
hc("proxied, own list, expires max", get("/pown/x"), 200, EXP)
hc("proxied 500, own list", get("/pown/status/500"), 500, EXP)
hc("proxied chunked", get("/p/chunked"), 200)
hc("proxied auto-redirect 301", get("/pauto"), 301)
hc("proxied expires epoch", get("/pexp/x"), 200, EXP)
hc("http-level add_header in a server without its own", get("/a.txt", host="other"), 200, target="L1")
hc("location always on 404", get("/x/nope", host="other"), 404, target="L1")


# --- charset: the Content-Type label only ------------------------------------------

add_group(Group("charset", docroot=DOCROOT | {"t.txt": b"text\n", "d.json": b"{}\n", "x.xml": b"<x/>\n"}, http="""
    server {
        listen 127.0.0.1:@L0@;
        include /etc/nginx/mime.types;
        root @ROOT@;
        charset utf-8;
        location / { }
        location /off/ { alias @ROOT@/; charset off; }
        location /types/ { alias @ROOT@/; charset_types application/json; }
        location /all/ { alias @ROOT@/; charset_types *; charset koi8-r; }
        location /same/ { alias @ROOT@/; source_charset utf-8; }
        location /ovoff/ { alias @ROOT@/; override_charset off; }
        location = /ret200 { return 200 "hi\\n"; }
        location = /ret307 { return 307 /x; }
        location = /ret302 { return 302 /x; }
        location = /ret404 { return 404; }
        location /p/ { proxy_pass http://127.0.0.1:@B0@; }
        location /pjson/ { proxy_pass http://127.0.0.1:@B0@; default_type application/json; }
    }
"""))


def cs(id: str, data: bytes, expect: int) -> None:
    case(id, "charset", data, expect=(expect,), fields=frozenset({"content-type"}))


cs("text/html", get("/"), 200)
cs("text/plain", get("/t.txt"), 200)
cs("text/xml", get("/x.xml"), 200)
cs("image/png untouched", get("/img.png"), 200)
cs("application/json untouched", get("/d.json"), 200)
cs("charset off", get("/off/index.html"), 200)
cs("charset_types replaces the list (text/html stays)", get("/types/d.json"), 200)
cs("charset_types drops text/plain", get("/types/t.txt"), 200)
cs("charset_types keeps text/html", get("/types/index.html"), 200)
cs("charset_types *", get("/all/img.png"), 200)
cs("source_charset naming the charset", get("/same/t.txt"), 200)
cs("override_charset off", get("/ovoff/t.txt"), 200)
cs("404 error page", get("/nope"), 404)
cs("directory 301", get("/dir"), 301)
cs("return 200 text (default_type text/plain)", get("/ret200"), 200)
cs("return 307 page", get("/ret307"), 307)
cs("return 302 page: no charset on 301/302", get("/ret302"), 302)
cs("return 404 page", get("/ret404"), 404)
cs("proxied text/plain from upstream", get("/p/x"), 200)
cs("proxied 404", get("/p/status/404"), 404)


# --- the Location of redirects nginx makes itself ----------------------------------

add_group(Group("redirects", docroot=DOCROOT, http="""
    server {
        listen 127.0.0.1:@L0@;
        server_name primary.test alias.test;
        root @ROOT@;
        location / { }
        location /rel/ { alias @ROOT@/; absolute_redirect off; }
        location /noport/ { alias @ROOT@/; port_in_redirect off; }
        location /sn/ { alias @ROOT@/; server_name_in_redirect on; }
        location = /ret { return 301 /x; }
        location = /retrel { absolute_redirect off; return 301 /x?a=1; }
        location = /retnoport { port_in_redirect off; return 302 /x; }
        location = /retsn { server_name_in_redirect on; return 307 /x; }
        location = /retfull { absolute_redirect off; return 301 http://other.test/y; }
        location /prel/ { absolute_redirect off; proxy_pass http://127.0.0.1:@B0@; }
        location /pnoport/ { port_in_redirect off; proxy_pass http://127.0.0.1:@B0@; }
    }
    server {
        listen 127.0.0.1:@L1@;
        absolute_redirect off;
        root @ROOT@;
        location / { }
        location = /ret { return 302 /z; }
        location /on/ { alias @ROOT@/; absolute_redirect on; }
    }
"""))


def rd(id: str, data: bytes, expect: int, target: str = "L0") -> None:
    case(id, "redirects", data, expect=(expect,), target=target)


rd("directory slash: absolute with port", get("/dir"), 301)
rd("directory slash, absolute_redirect off", get("/rel/dir"), 301)
rd("directory slash, port_in_redirect off", get("/noport/dir"), 301)
rd("directory slash, server_name_in_redirect on", get("/sn/dir", host="alias.test"), 301)
rd("return 301 /x", get("/ret"), 301)
rd("return 301 /x?a=1, absolute_redirect off", get("/retrel"), 301)
rd("return 302 /x, port_in_redirect off", get("/retnoport"), 302)
rd("return 307 /x, server_name_in_redirect on", get("/retsn", host="alias.test"), 307)
rd("return 301 full URL stays", get("/retfull"), 301)
rd("location auto-redirect, absolute_redirect off", get("/prel"), 301)
rd("location auto-redirect, port_in_redirect off", get("/pnoport"), 301)
rd("server-level absolute_redirect off: slash", get("/dir", host="b.test"), 301, target="L1")
rd("server-level absolute_redirect off: return", get("/ret", host="b.test"), 302, target="L1")
rd("location turns it back on", get("/on/dir", host="b.test"), 301, target="L1")
rd("HTTP/1.0 without Host: the server name", b"GET /dir HTTP/1.0\r\n\r\n", 301)


# --- a websocket's 101: the header filter runs on it too (only "always" lines) -----

add_group(Group("ws101", http="""
    server {
        listen 127.0.0.1:@L0@;
        add_header X-A a;
        add_header X-Always yes always;
        expires 1h;
        charset utf-8;
        location /ws/ { proxy_pass http://127.0.0.1:@B0@;""" + UPGRADE_LOC + """ }
    }
"""))

case("101 of a websocket upgrade", "ws101", upgrade("/ws/echo"), expect=(101,), ws=True,
     fields=frozenset({"x-a", "x-always", "cache-control", "expires"}))
case("plain answer in the same location", "ws101", get("/ws/x"), expect=(200,),
     fields=frozenset({"x-a", "x-always", "cache-control"}))
