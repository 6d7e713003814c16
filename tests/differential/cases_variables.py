"""Issue 11 item 2: the variables a proxy config uses, through one
evaluator: echoed with ``return 200 "$var"`` and sent to the backend with
``proxy_set_header`` (byte for byte against nginx); the values nginx makes
from the clock or randomness (``$msec``, ``$time_*``, ``$request_id``) are
checked by form with an ``if`` regex, so both answer the same.  Also
``map`` (regexes, ``hostnames``, ``default``, ``volatile``, ``include``),
``geo`` (addresses, CIDRs, ``default``, ``ranges``) and ``proxy_pass``
with variables resolving to an ``upstream {}`` name.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, req, upgrade

_VARS = [
    "args", "arg_a", "arg_B", "is_args", "query_string", "request_uri", "uri", "document_uri",
    "host", "server_name", "server_port", "scheme", "https", "request_method",
    "content_length", "content_type", "remote_addr", "proxy_add_x_forwarded_for",
    "cookie_sid", "cookie_other", "http_user_agent", "http_x_custom", "server_protocol",
    "request", "connection_requests", "binary_remote_addr",
]  # fmt: skip

_RETURN = " ".join(f"{name}=[${name}]" for name in _VARS if name != "binary_remote_addr")
_HEADERS = "\n".join(f"proxy_set_header X-V-{name.replace('_', '-')} ${name};" for name in _VARS if name != "binary_remote_addr")

group(Group("variables", f"""
    map $http_x_route $routed {{
        default       default-value;
        exact         exact-value;
        ~^re-(\\d+)$   regex-$1;
        ~*^CI-        caseless;
    }}
    map $host $host_kind {{
        hostnames;
        default        other;
        example.com    plain;
        *.wild.example wildcard;
        .dot.example   dotted;
        www.trail.*    trailing;
    }}
    map $uri $vol {{
        volatile;
        default none;
        ~^/vol/(?<tail>.+)$ "v:$tail";
    }}
    map $http_x_inc $included {{
        default no;
        include @DIR@/map.inc;
    }}
    geo $geo_cidr {{
        default        outside;
        127.0.0.0/8    loopback;
        127.0.0.1      exact-host;
        10.0.0.0/8     ten;
        ::1            six;
    }}
    geo $http_x_addr $geo_hdr {{
        default        none;
        192.0.2.0/24   doc-net;
        192.0.2.128/25 doc-upper;
        203.0.113.7    single;
        2001:db8::/32  doc-six;
    }}
    geo $http_x_addr $geo_ranges {{
        ranges;
        default           none;
        10.0.0.0-10.0.0.255   low;
        10.0.1.0-10.0.1.9     mid;
        192.0.2.1-192.0.2.1   one;
    }}
    upstream named_pool {{ server 127.0.0.1:@B1@; }}
    server {{
        listen 127.0.0.1:@L0@;
        server_name example.com www.example.com;
        location /ret {{ return 200 "{_RETURN}"; }}
        location /hdr {{ proxy_pass http://127.0.0.1:@B0@; {_HEADERS} }}
        location ~ ^/cap/(\\w+)/(?<second>\\w+)$ {{ return 200 "[$1] [$2] [$second]"; }}
        location ~ ^/capproxy/(\\w+)$ {{ proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Cap $1; }}
        location /map {{ return 200 "[$routed] [$host_kind] [$included]"; }}
        location /vol/ {{ return 200 "[$vol]"; }}
        location /geo {{ return 200 "[$geo_cidr] [$geo_hdr] [$geo_ranges]"; }}
        location /geohdr {{ proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Geo $geo_hdr; proxy_set_header X-Range $geo_ranges; }}
        location /time {{
            if ($msec !~ ^\\d+\\.\\d\\d\\d$) {{ return 500 "msec [$msec]"; }}
            if ($time_iso8601 !~ "^\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d[+-]\\d\\d:\\d\\d$") {{ return 500 "iso [$time_iso8601]"; }}
            if ($time_local !~ "^\\d\\d/[A-Z][a-z][a-z]/\\d{{4}}:\\d\\d:\\d\\d:\\d\\d [+-]\\d{{4}}$") {{ return 500 "local [$time_local]"; }}
            if ($request_id !~ "^[0-9a-f]{{32}}$") {{ return 500 "id [$request_id]"; }}
            if ($connection !~ ^\\d+$) {{ return 500 "conn"; }}
            if ($hostname = "") {{ return 500 "hostname"; }}
            return 200 "clock ok";
        }}
        location /ids {{
            set $first $request_id;
            if ($first != $request_id) {{ return 500 "request_id changed"; }}
            return 200 "same id";
        }}
        location /binaddr {{
            if ($binary_remote_addr = "") {{ return 500 "empty"; }}
            return 200 "bin ok";
        }}
        location /pvar/ {{
            set $pool named_pool;
            proxy_pass http://$pool;
            proxy_set_header X-Proxy-Host $proxy_host;
            proxy_set_header X-Proxy-Port $proxy_port;
        }}
        location /pmap/ {{
            proxy_pass http://$pool_by_header;
            proxy_set_header X-Proxy-Host $proxy_host;
        }}
        location /pfixed/ {{
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Proxy-Host $proxy_host;
            proxy_set_header X-Proxy-Port $proxy_port;
        }}
        location /ws/ {{ proxy_pass http://127.0.0.1:@B0@; {UPGRADE_LOC} proxy_set_header X-Routed $routed; proxy_set_header X-Geo $geo_hdr; }}
    }}
    map $http_x_pool $pool_by_header {{
        default named_pool;
        direct 127.0.0.1:@B0@;
    }}
    server {{
        listen 127.0.0.1:@L1@;
        server_name ~^(?<tenant>[a-z]+)\\.tenants\\.example$;
        location / {{ proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-Tenant $tenant; proxy_set_header X-Server-Name $server_name; }}
        location /ret {{ return 200 "[$tenant] [$server_name] [$host]"; }}
    }}
""", files={"map.inc": "yes-key   included-yes;\n~^inc-(.*)$ inc-$1;\n"}))

_FULL = (
    "X-Custom: custom-value\r\nCookie: sid=abc123; other=x%20y\r\n"
)

case("vars-return-plain", "variables", get("/ret"))
case("vars-return-args", "variables", get("/ret?a=1&B=two&c", extra=_FULL))
case("vars-return-args-case", "variables", get("/ret?A=up&b=low"))
case("vars-return-empty-args", "variables", get("/ret?"))
case("vars-return-encoded", "variables", get("/ret/%41b?x=%20"))
case("vars-return-xff", "variables", get("/ret", extra="X-Forwarded-For: 203.0.113.1\r\nX-Forwarded-For: 198.51.100.2\r\n"))
case("vars-return-cookie-comma", "variables", get("/ret", extra="Cookie: other=1, sid=z\r\n"))
case("vars-return-two-cookie-headers", "variables", get("/ret", extra="Cookie: a=1\r\nCookie: sid=second\r\n"))
case("vars-return-no-host", "variables", get("/ret", host="", version="1.0"))
case("vars-return-host-port", "variables", get("/ret", host="Example.COM:8080"))
case("vars-return-absolute", "variables", b"GET http://abs.example/ret?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
case("vars-return-post", "variables", req("POST", "/ret", headers="Content-Type: text/plain\r\n", body=b"hello"))
case("vars-return-head", "variables", req("HEAD", "/ret"))
case("vars-return-keepalive", "variables", req("GET", "/ret", close=False) + get("/ret?second=1"))
case("vars-headers-plain", "variables", get("/hdr"))
case("vars-headers-full", "variables", get("/hdr?a=1&B=2", extra=_FULL))
case("vars-headers-post", "variables", req("POST", "/hdr?x", headers="Content-Type: application/json\r\n", body=b"{}"))
case("vars-headers-xff", "variables", get("/hdr", extra="X-Forwarded-For: 10.0.0.1\r\n"))
case("vars-location-captures", "variables", get("/cap/one/two"))
case("vars-location-captures-proxy", "variables", get("/capproxy/abc"))
case("map-default", "variables", get("/map"))
case("map-exact", "variables", get("/map", extra="X-Route: exact\r\n"))
case("map-exact-case", "variables", get("/map", extra="X-Route: EXACT\r\n"))
case("map-regex-capture", "variables", get("/map", extra="X-Route: re-42\r\n"))
case("map-regex-caseless", "variables", get("/map", extra="X-Route: ci-thing\r\n"))
case("map-hostnames-plain", "variables", get("/map", host="example.com"))
case("map-hostnames-wildcard", "variables", get("/map", host="a.b.wild.example"))
case("map-hostnames-dotted-bare", "variables", get("/map", host="dot.example"))
case("map-hostnames-dotted-sub", "variables", get("/map", host="x.dot.example"))
case("map-hostnames-trailing", "variables", get("/map", host="www.trail.org"))
case("map-hostnames-other", "variables", get("/map", host="nothing.test"))
case("map-include-exact", "variables", get("/map", extra="X-Inc: yes-key\r\n"))
case("map-include-regex", "variables", get("/map", extra="X-Inc: inc-zz\r\n"))
case("map-volatile-named", "variables", get("/vol/some/path"))
case("map-into-upgrade", "variables", upgrade("/ws/x", extra="X-Route: re-7\r\nX-Addr: 192.0.2.200\r\n"), ws=True)
case("geo-remote-addr", "variables", get("/geo"))
case("geo-header-net", "variables", get("/geo", extra="X-Addr: 192.0.2.5\r\n"))
case("geo-header-longest", "variables", get("/geo", extra="X-Addr: 192.0.2.200\r\n"))
case("geo-header-single", "variables", get("/geo", extra="X-Addr: 203.0.113.7\r\n"))
case("geo-header-six", "variables", get("/geo", extra="X-Addr: 2001:db8::1\r\n"))
case("geo-header-default", "variables", get("/geo", extra="X-Addr: 198.51.100.1\r\n"))
case("geo-header-garbage", "variables", get("/geo", extra="X-Addr: not-an-ip\r\n"))
case("geo-ranges-low", "variables", get("/geo", extra="X-Addr: 10.0.0.77\r\n"))
case("geo-ranges-mid", "variables", get("/geo", extra="X-Addr: 10.0.1.9\r\n"))
case("geo-ranges-gap", "variables", get("/geo", extra="X-Addr: 10.0.1.10\r\n"))
case("geo-ranges-one", "variables", get("/geo", extra="X-Addr: 192.0.2.1\r\n"))
case("geo-into-header", "variables", get("/geohdr", extra="X-Addr: 10.0.0.1\r\n"))
case("vars-clock-and-ids", "variables", get("/time"))
case("vars-request-id-stable", "variables", get("/ids"))
case("vars-binary-remote-addr", "variables", get("/binaddr"))
case("proxy-pass-variable-upstream", "variables", get("/pvar/x?y=1"))
case("proxy-pass-map-upstream", "variables", get("/pmap/x"))
case("proxy-pass-map-direct", "variables", get("/pmap/x", extra="X-Pool: direct\r\n"))
case("proxy-host-port-fixed", "variables", get("/pfixed/x"))
case("server-name-regex-tenant", "variables", get("/a", host="acme.tenants.example"), target="L1")
case("server-name-regex-return", "variables", get("/ret", host="zed.tenants.example"), target="L1")
