"""``recursive_error_pages`` against nginx: an error_page target's own
error goes through error_page again only when the location that erred says
``on`` (nginx's r->error_page), through URIs and named locations, until
nginx's limit of internal redirects turns a cycle into a 500; with ``off``
(the default) the second error gets nginx's own page."""

from __future__ import annotations

from cases import case, group
from oracle import Group, get

group(Group("recursiveerr", """
    server {
        listen 127.0.0.1:@L0@;
        root @ROOT@;
        recursive_error_pages on;
        error_page 404 /missing.html;
        location /chain/ { error_page 404 /second; }
        location = /second { error_page 404 /third; return 404; }
        location = /third { return 200 "third\\n"; }
        location /once/ { recursive_error_pages off; error_page 404 /second; }
        location /named/ { error_page 404 @n1; }
        location @n1 { error_page 404 @n2; return 404; }
        location @n2 { return 200 "n2\\n"; }
        location /loopnamed/ { error_page 404 @loop; }
        location @loop { error_page 404 @loop; return 404; }
        location /code/ { error_page 404 =410 /gone; }
        location = /gone { error_page 410 /third; return 410; }
    }
    server {
        listen 127.0.0.1:@L1@;
        root @ROOT@;
        error_page 404 /second;
        location = /second { error_page 404 /third; return 404; }
        location = /third { return 200 "third\\n"; }
    }
""", docroot={"index.html": b"home\\n"}))

case("recursive: a chain of URIs", "recursiveerr", get("/chain/x"))
case("recursive: a cycle ends in a 500", "recursiveerr", get("/nothing-here"))
case("recursive: off where it erred first", "recursiveerr", get("/once/x"))
case("recursive: named locations", "recursiveerr", get("/named/x"))
case("recursive: a named cycle", "recursiveerr", get("/loopnamed/x"))
case("recursive: =CODE on the way", "recursiveerr", get("/code/x"))
case("recursive: off by default", "recursiveerr", get("/x"), target="L1")
