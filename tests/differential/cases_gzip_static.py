"""``gzip_static`` (ngx_http_gzip_static_module): a request for FILE is
answered with FILE.gz as it is on disk, ``Content-Encoding: gzip`` pushed
after its ETag, when the client takes gzip (``on``: ngx_http_gzip_ok(),
with ``gzip_http_version``, ``gzip_proxied`` and ``gzip_disable``) or
whatever it takes (``always``); the .gz's own length, mtime and ETag, the
type of FILE's name, ranges and conditionals on the .gz; ``gzip_vary on``
adds ``Vary: Accept-Encoding`` whenever a .gz exists under ``on``; a
directory named FILE.gz, a URI ending in ``/``, a method other than
GET/HEAD decline to the static module; the gzip filter passes a .gz by and
still compresses the plain files; an index and an error_page target are
served from their .gz too.  The .gz bodies are compared byte for byte.
"""

from __future__ import annotations

import gzip

from cases import case
from cases import group as add_group
from oracle import Group, get, req

FIELDS = frozenset(
    {"content-encoding", "vary", "etag", "last-modified", "accept-ranges", "content-range", "content-type",
     "content-length", "x-a"}
)  # fmt: skip

TEXT = b"".join(b"row %d of the plain file, %d\n" % (i, i * 31 % 89) for i in range(80))
HTML = b"<html><body>" + b"<p>precompressed</p>" * 40 + b"</body></html>\n"


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


DOCROOT: dict[str, bytes] = {
    "a.txt": TEXT,
    "a.txt.gz": _gz(TEXT),
    "page.html": HTML,
    "page.html.gz": _gz(HTML),
    "plain.txt": TEXT[:900],  # no .gz beside it
    "only.js.gz": _gz(b"console.log('only the .gz exists');\n" * 10),
    "app.css": b"body { color: red; }\n" * 20,
    "app.css.gz": _gz(b"body { color: red; }\n" * 20),
    "sub.txt": b"a file whose .gz is a directory\n",
    "sub.txt.gz/inner": b"x",
    "idx/index.html": HTML,
    "idx/index.html.gz": _gz(HTML),
    "err/404.html": b"<html>not here " + b"y" * 200 + b"</html>\n",
    "err/404.html.gz": _gz(b"<html>not here " + b"y" * 200 + b"</html>\n"),
    "empty.txt": b"",
    "empty.txt.gz": b"",
}

add_group(Group("gzip_static", docroot=DOCROOT, http="""
    types { text/html html; text/plain txt; application/javascript js; text/css css; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:@L0@;
        root @ROOT@;
        location / { gzip_static on; }
        location /always/ { alias @ROOT@/; gzip_static always; }
        location /vary/ { alias @ROOT@/; gzip_static on; gzip_vary on; }
        location /avary/ { alias @ROOT@/; gzip_static always; gzip_vary on; }
        location /off/ { alias @ROOT@/; gzip_static off; gzip_vary on; }
        location /both/ { alias @ROOT@/; gzip_static on; gzip on; gzip_types text/plain text/css; gzip_vary on; }
        location /hdr/ { alias @ROOT@/; gzip_static on; add_header X-A 1; }
        location /noetag/ { alias @ROOT@/; gzip_static on; etag off; }
        location /v10/ { alias @ROOT@/; gzip_static on; gzip_http_version 1.0; }
        location /pany/ { alias @ROOT@/; gzip_static on; gzip_proxied any; }
        location /pnoetag/ { alias @ROOT@/; gzip_static on; gzip on; gzip_types text/plain; gzip_proxied no_etag; }
        location /msie/ { alias @ROOT@/; gzip_static on; gzip_disable msie6; }
        location /idx/ { gzip_static on; }
        location /e404/ { gzip_static on; error_page 404 /err/404.html; }
        location /tf/ { gzip_static on; try_files $uri /a.txt; }
        location /ranges/ { alias @ROOT@/; gzip_static on; max_ranges 0; }
    }
"""))

AE = "Accept-Encoding: gzip, deflate\r\n"


def gs(id: str, data: bytes, expect: int, body: bool = True) -> None:
    case(id, "gzip_static", data, expect=(expect,), fields=FIELDS, body=body)


gs("on: the .gz, as it is on disk", get("/a.txt", extra=AE), 200)
gs("on: the type of the name asked for", get("/page.html", extra=AE), 200)
gs("on, no Accept-Encoding: the plain file", get("/a.txt"), 200)
gs("on, gzip;q=0: the plain file", get("/a.txt", extra="Accept-Encoding: gzip;q=0\r\n"), 200)
gs("on, no .gz: the plain file", get("/plain.txt", extra=AE), 200)
gs("on, only the .gz exists", get("/only.js", extra=AE), 200)
gs("on, only the .gz exists, no Accept-Encoding: 404", get("/only.js"), 404, body=False)
gs("on, an empty .gz", get("/empty.txt", extra=AE), 200)
gs("on, HEAD", req("HEAD", "/a.txt", headers=AE), 200)
gs("on, POST: declined, 405", req("POST", "/a.txt", headers=AE + "Content-Length: 0\r\n"), 405, body=False)
gs("on, a directory named FILE.gz: declined", get("/sub.txt", extra=AE), 200)
gs("on, a URI ending in /: the index's .gz", get("/idx/", extra=AE), 200)
gs("on, the index by name", get("/idx/index.html", extra=AE), 200)
gs("on, error_page 404 to a file with a .gz", get("/e404/nothing", extra=AE), 404)
gs("on, error_page 404, no Accept-Encoding", get("/e404/nothing"), 404)
gs("on, try_files' fallback has a .gz", get("/tf/missing", extra=AE), 200)
gs("on, HTTP/1.0: gzip_http_version 1.1 says no", get("/a.txt", extra=AE, version="1.0"), 200)
gs("on, HTTP/1.0, gzip_http_version 1.0", get("/v10/a.txt", extra=AE, version="1.0"), 200)
gs("on, Via and gzip_proxied off: the plain file", get("/a.txt", extra=AE + "Via: 1.1 cdn\r\n"), 200)
gs("on, Via and gzip_proxied any", get("/pany/a.txt", extra=AE + "Via: 1.1 cdn\r\n"), 200)
gs("on, Via, gzip_proxied no_etag: asked before the ETag exists", get("/pnoetag/plain.txt", extra=AE + "Via: x\r\n"), 200)
gs("on, gzip_disable msie6", req("GET", "/msie/a.txt", headers=AE + "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n"), 200)
gs("always, no Accept-Encoding: the .gz", get("/always/a.txt"), 200)
gs("always, the plain file when no .gz", get("/always/plain.txt"), 200)
gs("always, gzip_vary on: no Vary", get("/avary/a.txt", extra=AE), 200)
gs("on, gzip_vary on, the .gz: Vary", get("/vary/a.txt", extra=AE), 200)
gs("on, gzip_vary on, the plain file: Vary all the same", get("/vary/a.txt"), 200)
gs("on, gzip_vary on, no .gz: no Vary", get("/vary/plain.txt", extra=AE), 200)
gs("on, gzip_vary on, a .gz directory: Vary", get("/vary/sub.txt"), 200)
gs("off, gzip_vary on: the plain file, no Vary", get("/off/a.txt", extra=AE), 200)
gs("gzip on too: the .gz is not compressed again", get("/both/a.txt", extra=AE), 200)
gs("gzip on too: a file without .gz is compressed", get("/both/plain.txt", extra=AE), 200)
gs("gzip on too, no Accept-Encoding", get("/both/app.css"), 200)
gs("add_header after Content-Encoding", get("/hdr/a.txt", extra=AE), 200)
gs("etag off", get("/noetag/a.txt", extra=AE), 200)
# nginx 1.22: no ranges of a .gz (ticket #2349, 1.23.4), the whole of it
gs("a Range of the .gz: the whole .gz", req("GET", "/a.txt", headers=AE + "Range: bytes=0-99\r\n"), 200)
gs("two Ranges of the .gz: the whole .gz", req("GET", "/a.txt", headers=AE + "Range: bytes=0-9,20-29\r\n"), 200)
gs("a Range past the .gz: the whole .gz", req("GET", "/a.txt", headers=AE + "Range: bytes=999999-\r\n"), 200)
gs("a Range of the plain file: 206", req("GET", "/a.txt", headers="Range: bytes=0-99\r\n"), 206)
gs("max_ranges 0: the whole .gz", req("GET", "/ranges/a.txt", headers=AE + "Range: bytes=0-9\r\n"), 200)
MTIME = 1704164645  # oracle.DOCROOT_MTIME
GZ_ETAG = f'"{MTIME:x}-{len(DOCROOT["a.txt.gz"]):x}"'
PLAIN_ETAG = f'"{MTIME:x}-{len(TEXT):x}"'
gs("If-None-Match the .gz's ETag: 304, no Content-Encoding",
   req("GET", "/a.txt", headers=AE + f"If-None-Match: {GZ_ETAG}\r\n"), 304)  # fmt: skip
gs("If-None-Match the plain file's ETag: the .gz", req("GET", "/a.txt", headers=AE + f"If-None-Match: {PLAIN_ETAG}\r\n"), 200)
gs("If-None-Match the plain file's ETag, no Accept-Encoding: 304",
   req("GET", "/a.txt", headers=f"If-None-Match: {PLAIN_ETAG}\r\n"), 304)  # fmt: skip
gs("If-Modified-Since the .gz's mtime: 304",
   req("GET", "/a.txt", headers=AE + "If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n"), 304)  # fmt: skip
gs("If-Modified-Since another time: the .gz (exact)",
   req("GET", "/a.txt", headers=AE + "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n"), 200)  # fmt: skip
gs("If-Unmodified-Since long ago: 412",
   req("GET", "/a.txt", headers=AE + "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:10 GMT\r\n"), 412, body=False)  # fmt: skip
case("a .gz then a plain file on one connection", "gzip_static",
     req("GET", "/a.txt", headers=AE, close=False), req("GET", "/plain.txt"), expect=(200, 200), fields=FIELDS, body=True)  # fmt: skip

# A site in the shape of GitLab's source-install vhost of the unicorn era
# (gitlabhq/gitlabhq lib/support/nginx/gitlab): static files tried from the
# public root before the named upstream location, and the Rails asset
# pipeline's precompressed assets served by a regex location with
# "gzip_static on; # to serve pre-gzipped version", expires max and a public
# Cache-Control.  The harness adapts only the listen port, the root and the
# upstream address.
CSS = b".header { color: #333; }\n" * 60
JS = b"(function(){ window.gon = {}; })();\n" * 40
GITLAB: dict[str, bytes] = {
    "assets/application-4f2a.css": CSS,
    "assets/application-4f2a.css.gz": _gz(CSS),
    "assets/application-9c1e.js": JS,
    "assets/application-9c1e.js.gz": _gz(JS),
    "assets/logo-white.png": bytes(range(256)) * 3,
    "robots.txt": b"User-Agent: *\nDisallow: /autocomplete/users\n",
    "502.html": b"<!DOCTYPE html><html><body>GitLab is not responding</body></html>\n",
}

add_group(Group("gzip_static_gitlab", docroot=GITLAB, http="""
    types { text/css css; application/javascript js; image/png png; text/plain txt; text/html html; }
    default_type application/octet-stream;
    upstream gitlab {
      server 127.0.0.1:@B0@;
    }

    ## Normal HTTP host
    server {
      listen 127.0.0.1:@L0@ default_server;
      server_name gitlab.example.com;
      server_tokens off;
      root @ROOT@;

      client_max_body_size 20m;

      location / {
        ## Serve static files from defined root folder.
        try_files $uri $uri/index.html $uri.html @gitlab;
      }

      location @gitlab {
        proxy_read_timeout      300;
        proxy_connect_timeout   300;
        proxy_redirect          off;

        proxy_set_header    Host                $http_host;
        proxy_set_header    X-Real-IP           $remote_addr;
        proxy_set_header    X-Forwarded-For     $proxy_add_x_forwarded_for;
        proxy_set_header    X-Forwarded-Proto   $scheme;

        proxy_pass http://gitlab;
      }

      location ~ ^/(assets)/ {
        root @ROOT@;
        gzip_static on; # to serve pre-gzipped version
        expires max;
        add_header Cache-Control public;
      }

      error_page 502 /502.html;
    }
"""))

GITLAB_FIELDS = FIELDS | {"expires", "cache-control"}


def gl(id: str, data: bytes, expect: int, body: bool = True) -> None:
    case(id, "gzip_static_gitlab", data, expect=(expect,), fields=GITLAB_FIELDS, body=body)


BROWSER_AE = "Accept-Encoding: gzip, deflate, br\r\n"
gl("gitlab: a stylesheet from its .gz, expires max", get("/assets/application-4f2a.css", extra=BROWSER_AE), 200)
gl("gitlab: a script from its .gz", get("/assets/application-9c1e.js", extra=BROWSER_AE), 200)
gl("gitlab: the stylesheet to a client without gzip", get("/assets/application-4f2a.css"), 200)
gl("gitlab: an image without a .gz", get("/assets/logo-white.png", extra=BROWSER_AE), 200)
gl("gitlab: a missing asset", get("/assets/nothing.css", extra=BROWSER_AE), 404, body=False)
gl("gitlab: HEAD of an asset", req("HEAD", "/assets/application-9c1e.js", headers=BROWSER_AE), 200)
gl("gitlab: a file of the root", get("/robots.txt", extra=BROWSER_AE), 200)
gl("gitlab: the application through the named location", get("/users/sign_in", extra=BROWSER_AE), 200)
