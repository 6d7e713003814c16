"""``proxy_set_body`` (ngx_http_proxy_module): its text, variables
rendered, is the body the upstream gets -- right after the head, with
``Content-Length`` its length ($proxy_internal_body_length, evaluated
before the headers), never chunked -- whatever the client sent or did not
send; the client's body is still read (whole first, even under
``proxy_request_buffering off``) and then dropped; ``proxy_pass_request_body
off`` does not stop it; inherited from the server level; an auth_request
subrequest's location sends it too; a repeated directive is refused.  The backend records the exact bytes it received.
"""

from __future__ import annotations

from cases import case
from cases import group as add_group
from oracle import Group, get, req

add_group(Group("set_body", http="""
    server {
        listen 127.0.0.1:@L0@;
        proxy_set_body "from the server level";
        location /fixed/ { proxy_pass http://127.0.0.1:@B0@; proxy_set_body "name=value&a=b"; }
        location /vars/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_body "uri=$uri args=$args method=$request_method len=$content_length";
        }
        location /empty/ { proxy_pass http://127.0.0.1:@B0@; proxy_set_body ""; }
        location /nopass/ { proxy_pass http://127.0.0.1:@B0@; proxy_set_body "x"; proxy_pass_request_body off; }
        location /h11/ { proxy_pass http://127.0.0.1:@B0@; proxy_http_version 1.1; proxy_set_body "t=$http_x_token"; }
        location /nobuf/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_set_body "replaced";
        }
        location /nocl/ { proxy_pass http://127.0.0.1:@B0@; proxy_set_header Content-Length ""; proxy_set_body "abc"; }
        location /inherit/ { proxy_pass http://127.0.0.1:@B0@; }
        location /json/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_method POST;
            proxy_set_header Content-Type application/json;
            proxy_set_body '{"path": "$request_uri", "ip": "$remote_addr"}';
        }
    }
    server {
        listen 127.0.0.1:@L1@;
        location / { proxy_pass http://127.0.0.1:@B0@; }
        location /guarded/ { auth_request /auth; proxy_pass http://127.0.0.1:@B0@; }
        location = /auth {
            internal;
            proxy_pass http://127.0.0.1:@B0@/auth-check;
            proxy_pass_request_body off;
            proxy_set_body "who=$remote_user uri=$request_uri";
        }
    }
"""))

_CHUNKED = "Transfer-Encoding: chunked\r\n"
_BIG = bytes(range(256)) * 40  # 10 KiB: past the default client body buffer


def sb(id: str, data: bytes, target: str = "L0") -> None:
    case(id, "set_body", data, expect=(200,), target=target)


sb("a GET gets the text as its body", get("/fixed/a"))
sb("a POST's body is replaced", req("POST", "/fixed/b", body=b"client=data"))
sb("a chunked POST's body is replaced, with a length", req("POST", "/fixed/c", headers=_CHUNKED) + b"3\r\nabc\r\n0\r\n\r\n")
sb("a body past the buffer is read and dropped", req("POST", "/fixed/big", body=_BIG))
sb("variables rendered", req("PUT", "/vars/x?k=v&z=1", body=b"12345"))
sb("an empty text: Content-Length 0", req("POST", "/empty/", body=b"dropped"))
sb("proxy_pass_request_body off: the text all the same", req("POST", "/nopass/", body=b"dropped"))
sb("HTTP/1.1 upstream, a header in the text", req("GET", "/h11/", headers="X-Token: s3cr3t\r\n"))
sb("request buffering off: read whole, replaced", req("POST", "/nobuf/", headers=_CHUNKED) + b"4\r\nwxyz\r\n0\r\n\r\n")
sb("request buffering off, a big body", req("POST", "/nobuf/big", body=_BIG))
sb("Content-Length cleared: the text still follows", get("/nocl/"))
sb("inherited from the server level", req("POST", "/inherit/", body=b"client"))
sb("proxy_method POST with a JSON text", get("/json/p?q=1"))
sb("no proxy_set_body: the client's body", req("POST", "/other", body=b"client body"), target="L1")
sb("an auth_request subrequest sends the text", req("POST", "/guarded/x?y=1", body=b"main body"), target="L1")
case("two requests on one connection, each with the text", "set_body",
     req("POST", "/fixed/1", body=b"one", close=False), req("GET", "/vars/2?n=2"), expect=(200, 200))  # fmt: skip
