"""What a request answered through ``error_page`` ends with when its target
answers with an error or a redirect of its own.

nginx keeps the first error's code (err_status) for an answer the target
makes with ``return 200 text`` or a file; but every error or redirect it
finalizes goes through ngx_http_special_response_handler, which sets
err_status to that code: so a named location or URI that returns 403 or
302 answers 403 or 302, whatever ``=CODE`` the error_page had.  A URL
target is a 302 (or the ``=30x`` given) that the headers filter still sees
(``add_header`` of the location that had the error).
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

_H = frozenset({"x-loc", "x-srv", "location"})

group(Group("error_targets", """
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        root @ROOT@;
        add_header X-Srv s;
        location /named403/ { error_page 404 @r403; }
        location /named403-200/ { error_page 404 =200 @r403; }
        location /named302/ { error_page 404 @r302; }
        location /named302-200/ { error_page 404 =200 @r302; }
        location /uri302/ { error_page 404 /to/302; }
        location /uri403/ { error_page 404 =200 /to/403; }
        location /uritext/ { error_page 404 /to/text; }
        location /urimissing/ { error_page 404 =200 /nofile.html; }
        location /rewrite/ { error_page 404 @rw; }
        location /url/ { add_header X-Loc l; error_page 404 http://example.com/x; }
        location /url301/ { add_header X-Loc l always; error_page 404 =301 http://example.com/y; }
        location /url-noheaders/ { error_page 404 https://example.com/z; }
        location = /to/302 { return 302 /elsewhere; }
        location = /to/403 { return 403; }
        location = /to/text { return 200 "text"; }
        location @r403 { return 403; }
        location @r302 { add_header X-Loc named; return 302 http://example.com/q; }
        location @rw { rewrite ^ /rewritten redirect; }
    }
""", docroot={"index.html": b"home\n"}))

for path, expect in [
    ("/named403/x", 403),
    ("/named403-200/x", 403),
    ("/named302/x", 302),
    ("/named302-200/x", 302),
    ("/uri302/x", 302),
    ("/uri403/x", 403),
    ("/uritext/x", 404),
    ("/urimissing/x", 404),
    ("/rewrite/x", 302),
    ("/url/x", 302),
    ("/url301/x", 301),
    ("/url-noheaders/x", 302),
]:
    case(f"error_page target: {path}", "error_targets", get(path, host="example.com"), expect=(expect,), fields=_H)
