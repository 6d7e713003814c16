"""A request no location matches runs under the server's own configuration
(ngx_http_core_find_config_phase keeps the server's location conf): the
static handler serves files from the server's ``root``, its ``index``,
its ``error_page``; nginx's 404 only when the file is not there.  Shape of
public configs that only declare API locations and let the rest be files.
"""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

group(Group("no_location", """
    server {
        listen 127.0.0.1:@L0@;
        server_name example.com;
        root @ROOT@;
        index index.html;
        error_page 404 /missing.html;
        location /api/ { proxy_pass http://127.0.0.1:@B0@; }
    }
""", docroot={"index.html": b"home\\n", "a.txt": b"abc", "missing.html": b"gone\\n", "d/index.html": b"d\\n"}))

for id, path, expect in [
    ("a file from the server's root", "/a.txt", 200),
    ("the server's index", "/", 200),
    ("a directory's index", "/d/", 200),
    ("the directory slash", "/d", 301),
    ("a missing file: the server's error_page", "/nope.txt", 404),
    ("a location still wins", "/api/x", 200),
]:
    case(f"no location: {id}", "no_location", get(path), expect=(expect,), body=expect == 200)
