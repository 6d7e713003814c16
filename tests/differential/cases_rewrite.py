"""Issue 11 item 1: ngx_http_rewrite_module -- ``rewrite`` (every flag,
captures, arguments with and without a trailing ``?``), ``set``, ``if``
with every operator and file test, ``break``, ``return`` at server,
location and ``if`` level, ``last`` finding the location again, the 500
after ten URI changes, server-level before location-level, and ``if`` as
nginx's nested location (its own ``proxy_pass`` and headers, and the
"if is evil" quirks of nginx's wiki: only the last matching ``if``'s
configuration is used, the directives after it still run).

Answers are echoed with ``return 200 "..."`` or through
``proxy_set_header`` to the recording backend, so both the status line and
what the backend received are compared byte for byte.
"""

from __future__ import annotations

from cases import UPGRADE_LOC, case, group
from oracle import Group, get, req, upgrade

_ECHO = "proxy_set_header X-Uri $uri; proxy_set_header X-Args $args; proxy_set_header X-One $1;"

group(Group("rewrite_flags", f"""
    server {{
        listen 127.0.0.1:@L0@;
        server_name rw.example;
        location /last/ {{ rewrite ^/last/(.*)$ /target/$1 last; return 200 "not reached"; }}
        location /brk/ {{ rewrite ^/brk/(.*)$ /target/$1 break; proxy_pass http://127.0.0.1:@B0@; {_ECHO} }}
        location /brkuri/ {{ rewrite ^/brkuri/(.*)$ /x/$1 break; proxy_pass http://127.0.0.1:@B0@/base/; {_ECHO} }}
        location /nouri/ {{ proxy_pass http://127.0.0.1:@B0@/base/; {_ECHO} }}
        location /redir/ {{ rewrite ^/redir/(.*)$ /target/$1 redirect; }}
        location /perm/ {{ rewrite ^/perm/(.*)$ /target/$1 permanent; }}
        location /abs/ {{ rewrite ^/abs/(.*)$ http://other.example/$1; }}
        location /absperm/ {{ rewrite ^/absperm/(.*)$ https://other.example/$1 permanent; }}
        location /scheme/ {{ rewrite ^ $scheme://s.example$uri; }}
        location /noflag/ {{ rewrite ^/noflag/(.*)$ /target/$1; return 200 "after [$uri]"; }}
        location /chain/ {{ rewrite ^/chain/a$ /chain/b; rewrite ^/chain/b$ /target/c; }}
        location /newargs/ {{ rewrite ^/newargs/(.*)$ /target/$1?x=1 last; }}
        location /dropargs/ {{ rewrite ^/dropargs/(.*)$ /target/$1? last; }}
        location /onlyargs/ {{ rewrite ^/onlyargs/(.*)$ /target/$1?y=2? last; }}
        location /rdargs/ {{ rewrite ^/rdargs/(.*)$ /target/$1?z=3 redirect; }}
        location /rddrop/ {{ rewrite ^/rddrop/(.*)$ /target/$1? permanent; }}
        location /rdkeep/ {{ rewrite ^/rdkeep/(.*)$ /target/$1 redirect; }}
        location /nomatch/ {{ rewrite ^/zzz /target/never last; return 200 "kept [$uri]"; }}
        location /caseless/ {{ rewrite (?i)^/caseless/ABC$ /target/ci last; return 200 "no"; }}
        location /named/ {{ rewrite ^/named/(?<word>\\w+)$ /target/$word last; }}
        location ~ ^/regex/(\\w+)/(\\w+)$ {{ rewrite ^ /target/$2-$1 last; }}
        location /loop/ {{ rewrite ^/loop/(.*)$ /loop/$1 last; }}
        location /nine/ {{ rewrite ^/nine/(\\d)(.*)$ /nine/$2 last; return 200 "done [$uri]"; }}
        location /empty/ {{ rewrite ^.*$ $arg_none last; }}
        location /internal-only/ {{ internal; return 200 "internal [$uri]"; }}
        location /to-internal/ {{ rewrite ^ /internal-only/x last; }}
        location /target/ {{ proxy_pass http://127.0.0.1:@B0@; {_ECHO} }}
        location /ep/ {{ error_page 404 /eptarget/x; return 404; }}
        location /epeq/ {{ error_page 404 = /eptarget/y?k=1; return 404; }}
        location /eptarget/ {{ rewrite ^/eptarget/(.*)$ /target/$1 last; }}
        location /epcycle/ {{ error_page 404 /epcycle/again; return 404; }}
        location /ws/ {{ rewrite ^/ws/(.*)$ /target/ws/$1 break; proxy_pass http://127.0.0.1:@B0@; {UPGRADE_LOC} }}
        location / {{ return 200 "root [$uri] [$args]"; }}
    }}
"""))

case("rewrite-last", "rewrite_flags", get("/last/a?q=1"))
case("rewrite-break", "rewrite_flags", get("/brk/a/b?q=1"))
case("rewrite-break-proxy-uri-part-ignored", "rewrite_flags", get("/brkuri/a?q=1"))
case("proxy-uri-part-no-rewrite", "rewrite_flags", get("/nouri/a?q=1"))
case("rewrite-redirect", "rewrite_flags", get("/redir/a"))
case("rewrite-permanent", "rewrite_flags", get("/perm/a"))
case("rewrite-absolute-url-302", "rewrite_flags", get("/abs/a"))
case("rewrite-absolute-url-permanent", "rewrite_flags", get("/absperm/a?k=v"))
case("rewrite-scheme-url", "rewrite_flags", get("/scheme/p"))
case("rewrite-no-flag-continues", "rewrite_flags", get("/noflag/a"))
case("rewrite-chain-no-flag", "rewrite_flags", get("/chain/a?q=2"))
case("rewrite-new-args-appended", "rewrite_flags", get("/newargs/a?q=1"))
case("rewrite-new-args-no-old", "rewrite_flags", get("/newargs/a"))
case("rewrite-trailing-q-drops-args", "rewrite_flags", get("/dropargs/a?q=1"))
case("rewrite-args-trailing-q", "rewrite_flags", get("/onlyargs/a?q=1"))
case("rewrite-redirect-new-args", "rewrite_flags", get("/rdargs/a?q=1"))
case("rewrite-redirect-drop-args", "rewrite_flags", get("/rddrop/a?q=1"))
case("rewrite-redirect-keeps-args", "rewrite_flags", get("/rdkeep/a?q=1"))
case("rewrite-no-match", "rewrite_flags", get("/nomatch/a"))
case("rewrite-caseless-inline", "rewrite_flags", get("/caseless/abc"))
case("rewrite-named-capture", "rewrite_flags", get("/named/hello"))
case("rewrite-location-captures", "rewrite_flags", get("/regex/one/two"))
case("rewrite-cycle-500", "rewrite_flags", get("/loop/a"))
case("rewrite-nine-changes-ok", "rewrite_flags", get("/nine/123456789"))
case("rewrite-ten-changes-ok", "rewrite_flags", get("/nine/1234567890"))
case("rewrite-eleven-changes-500", "rewrite_flags", get("/nine/12345678901"))
case("rewrite-empty-uri-500", "rewrite_flags", get("/empty/x"))
case("rewrite-reaches-internal", "rewrite_flags", get("/to-internal/"))
case("internal-direct-404", "rewrite_flags", get("/internal-only/x"))
case("rewrite-encoded-uri", "rewrite_flags", get("/brk/a%20b?q=%41"))
case("error-page-uri-rewritten", "rewrite_flags", get("/ep/a"))
case("error-page-equals-rewritten", "rewrite_flags", get("/epeq/a?z=2"))
case("error-page-cycle", "rewrite_flags", get("/epcycle/a"))
case("rewrite-head", "rewrite_flags", req("HEAD", "/redir/a"))
case("rewrite-post-last", "rewrite_flags", req("POST", "/last/p", body=b"hello"))
case("rewrite-break-upgrade", "rewrite_flags", upgrade("/ws/chat?room=1"), ws=True)

group(Group("rewrite_levels", f"""
    server {{
        listen 127.0.0.1:@L0@;
        rewrite ^/old/(.*)$ /new/$1;
        rewrite ^/gone$ /elsewhere permanent;
        rewrite ^/srvlast/(.*)$ /new/$1 last;
        rewrite ^/new/skip$ /never;
        set $srv server-set;
        if ($arg_srvret) {{ return 418 "srv-if [$arg_srvret]"; }}
        location /new/ {{ rewrite ^/new/(.*)$ /final/$1 last; }}
        location /final/ {{ proxy_pass http://127.0.0.1:@B0@; {_ECHO} proxy_set_header X-Srv $srv; }}
        location /srvbreak/ {{ return 200 "srvbreak [$uri]"; }}
        location /setloc/ {{ set $srv loc-set; set $two "$srv+$uri"; return 200 "[$srv] [$two]"; }}
        location /breakdir/ {{ set $a 1; break; set $a 2; return 200 "not reached"; }}
        location /breakthen/ {{ set $a 1; break; proxy_pass http://127.0.0.1:@B0@; proxy_set_header X-A $a; }}
        location / {{ return 200 "root [$uri] [$srv]"; }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        rewrite ^/a$ /b break;
        rewrite ^/b$ /c;
        return 200 "server return [$uri]";
        location / {{ return 200 "location [$uri]"; }}
    }}
    server {{
        listen 127.0.0.1:@L2@;
        server_name ~^(?<sub>\\w+)\\.cap\\.example$ ~^(\\w+)-(\\w+)\\.num\\.example$;
        location / {{
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Sub $sub;
            proxy_set_header X-One $1;
            proxy_set_header X-Two $2;
        }}
        location /cap/ {{ return 200 "[$sub] [$1] [$2]"; }}
    }}
"""))

case("server-rewrite-then-location", "rewrite_levels", get("/old/x?k=1"))
case("server-rewrite-permanent", "rewrite_levels", get("/gone"))
case("server-rewrite-last", "rewrite_levels", get("/srvlast/y"))
case("server-set-into-header", "rewrite_levels", get("/final/z"))
case("server-if-return", "rewrite_levels", get("/final/z?srvret=yes"))
case("location-set-overrides", "rewrite_levels", get("/setloc/q"))
case("break-directive-stops", "rewrite_levels", get("/breakdir/"))
case("break-then-proxy", "rewrite_levels", get("/breakthen/"))
case("server-root", "rewrite_levels", get("/other"))
case("server-break-skips-rest", "rewrite_levels", get("/a"), target="L1")
case("server-no-flag-continues", "rewrite_levels", get("/b"), target="L1")
case("server-return-after-rewrites", "rewrite_levels", get("/z"), target="L1")
case("server-name-named-capture", "rewrite_levels", get("/p", host="abc.cap.example"), target="L2")
case("server-name-numbered-captures", "rewrite_levels", get("/p", host="left-right.num.example"), target="L2")
case("server-name-captures-return", "rewrite_levels", get("/cap/", host="xy-zz.num.example"), target="L2")
case("server-name-named-return", "rewrite_levels", get("/cap/", host="qq.cap.example"), target="L2")

group(Group("rewrite_if", """
    server {
        listen 127.0.0.1:@L0@;
        location /eq { if ($arg_a = "yes") { return 200 "eq"; } return 200 "ne"; }
        location /neq { if ($arg_a != yes) { return 200 "differs"; } return 200 "same"; }
        location /re { if ($arg_a ~ ^(\\d+)-(\\d+)$) { return 200 "re [$1] [$2]"; } return 200 "no"; }
        location /rei { if ($http_x_k ~* ^abc(.*)) { return 200 "rei [$1]"; } return 200 "no"; }
        location /nre { if ($arg_a !~ ^x) { return 200 "nre"; } return 200 "x"; }
        location /nrei { if ($arg_a !~* ^x) { return 200 "nrei"; } return 200 "x"; }
        location /bare { if ($arg_a) { return 200 "true [$arg_a]"; } return 200 "false"; }
        location /named { if ($uri ~ ^/named/(?<part>\\w+)) { return 200 "named [$part]"; } return 200 "no"; }
        location /f { if (-f @DIR@/present.txt) { return 200 "file"; } return 200 "nofile"; }
        location /nf { if (!-f @DIR@/absent.txt) { return 200 "nofile"; } return 200 "file"; }
        location /fdir { if (-f @DIR@) { return 200 "file"; } return 200 "notfile"; }
        location /d { if (-d @DIR@) { return 200 "dir"; } return 200 "nodir"; }
        location /nd { if (!-d @DIR@/present.txt) { return 200 "notdir"; } return 200 "dir"; }
        location /e { if (-e @DIR@/present.txt) { return 200 "exists"; } return 200 "absent"; }
        location /edir { if (-e @DIR@) { return 200 "exists"; } return 200 "absent"; }
        location /ne { if (!-e @DIR@/absent.txt) { return 200 "absent"; } return 200 "exists"; }
        location /x { if (-x @DIR@/present.txt) { return 200 "exec"; } return 200 "noexec"; }
        location /nx { if (!-x @DIR@/present.txt) { return 200 "noexec"; } return 200 "exec"; }
        location /xdir { if (-x @DIR@) { return 200 "exec"; } return 200 "noexec"; }
        location /fvar { if (-f @DIR@/$arg_name) { return 200 "file [$arg_name]"; } return 200 "nofile"; }
        location /setif {
            set $who anon;
            if ($http_x_user) { set $who $http_x_user; }
            if ($request_method = POST) { set $who "$who-post"; }
            return 200 "who [$who]";
        }
        location /ifproxy/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Outer outer;
            if ($arg_alt) {
                proxy_pass http://127.0.0.1:@B1@;
            }
        }
        location /ifheaders/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Outer outer;
            if ($arg_h) {
                proxy_pass http://127.0.0.1:@B1@;
            }
        }
        location /ifinherit/ {
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Outer outer;
            if ($arg_h) {
                set $flag on;
            }
        }
        location /evil/ {
            set $true 1;
            proxy_pass http://127.0.0.1:@B0@;
            proxy_set_header X-Outer outer;
            if ($true) { proxy_pass http://127.0.0.1:@B1@; }
            if ($true) { proxy_pass http://127.0.0.1:@B2@; }
        }
        location /evilret/ {
            set $true 1;
            if ($true) { set $x inside; }
            return 200 "after if [$x]";
        }
        location /ifrewrite/ {
            if ($arg_go) { rewrite ^/ifrewrite/(.*)$ /ifdest/$1 last; }
            return 200 "stayed";
        }
        location /ifbreak/ {
            if ($arg_stop) { break; }
            return 200 "not stopped";
        }
        location /ifdest/ { return 200 "dest [$uri] [$args]"; }
        location /capture-order/ {
            if ($uri ~ ^/capture-order/(\\w+)) { set $first $1; }
            rewrite ^/capture-order/\\w+/(\\w+)$ /ifdest/$first-$1 last;
        }
        location / { return 200 "root"; }
    }
""", files={"present.txt": "here\\n"}))

case("if-eq-true", "rewrite_if", get("/eq?a=yes"))
case("if-eq-false", "rewrite_if", get("/eq?a=no"))
case("if-neq-true", "rewrite_if", get("/neq?a=no"))
case("if-neq-false", "rewrite_if", get("/neq?a=yes"))
case("if-regex-captures", "rewrite_if", get("/re?a=12-34"))
case("if-regex-no", "rewrite_if", get("/re?a=x"))
case("if-regex-caseless", "rewrite_if", get("/rei", extra="X-K: ABCdef\r\n"))
case("if-regex-caseless-no", "rewrite_if", get("/rei", extra="X-K: zzz\r\n"))
case("if-not-regex", "rewrite_if", get("/nre?a=y"))
case("if-not-regex-false", "rewrite_if", get("/nre?a=xy"))
case("if-not-regex-caseless", "rewrite_if", get("/nrei?a=y"))
case("if-not-regex-caseless-false", "rewrite_if", get("/nrei?a=Xy"))
case("if-bare-true", "rewrite_if", get("/bare?a=1"))
case("if-bare-zero", "rewrite_if", get("/bare?a=0"))
case("if-bare-empty", "rewrite_if", get("/bare"))
case("if-named-capture", "rewrite_if", get("/named/abc"))
case("if-file", "rewrite_if", get("/f"))
case("if-not-file", "rewrite_if", get("/nf"))
case("if-file-on-dir", "rewrite_if", get("/fdir"))
case("if-dir", "rewrite_if", get("/d"))
case("if-not-dir", "rewrite_if", get("/nd"))
case("if-exists", "rewrite_if", get("/e"))
case("if-exists-dir", "rewrite_if", get("/edir"))
case("if-not-exists", "rewrite_if", get("/ne"))
case("if-exec-file", "rewrite_if", get("/x"))
case("if-not-exec", "rewrite_if", get("/nx"))
case("if-exec-dir", "rewrite_if", get("/xdir"))
case("if-file-variable-yes", "rewrite_if", get("/fvar?name=present.txt"))
case("if-file-variable-no", "rewrite_if", get("/fvar?name=nope.txt"))
case("if-set-get", "rewrite_if", get("/setif"))
case("if-set-header", "rewrite_if", get("/setif", extra="X-User: bob\r\n"))
case("if-set-post", "rewrite_if", req("POST", "/setif", headers="X-User: amy\r\n", body=b"x"))
case("if-own-proxy-pass", "rewrite_if", get("/ifproxy/a?alt=1"))
case("if-outer-proxy-pass", "rewrite_if", get("/ifproxy/a"))
case("if-own-headers", "rewrite_if", get("/ifheaders/a?h=1"))
case("if-outer-headers", "rewrite_if", get("/ifheaders/a"))
case("if-inherits-proxy", "rewrite_if", get("/ifinherit/a?h=1"))
case("if-evil-last-wins", "rewrite_if", get("/evil/a"))
case("if-evil-directives-after-run", "rewrite_if", get("/evilret/"))
case("if-rewrite-last", "rewrite_if", get("/ifrewrite/p?go=1"))
case("if-rewrite-not", "rewrite_if", get("/ifrewrite/p"))
case("if-break", "rewrite_if", get("/ifbreak/?stop=1"))
case("if-no-break", "rewrite_if", get("/ifbreak/"))
case("if-captures-then-rewrite", "rewrite_if", get("/capture-order/aa/bb"))
