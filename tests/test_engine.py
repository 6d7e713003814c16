"""nginx's request phases as a pure engine: the rewrite phases
(ngxws.http.rewrite.route) and the whole engine (ngxws.http.engine) --
real confs through the loader, a request head and the connection's facts
in, where the request goes out -- table-driven, with no socket (socket.socket
raises here), no clock and files only through injected functions."""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import socket
import stat as stat_module
from pathlib import Path
from typing import cast

import pytest
import trustme
from engine_fakes import Conn, Req

from ngxws.config.loader import load_config
from ngxws.config.model import Config, Location, Server
from ngxws.http import engine
from ngxws.http.body_plan import body_plan_for, over_declared_length
from ngxws.http.engine import World
from ngxws.http.request import RequestHead
from ngxws.http.rewrite import MAX_URI_CHANGES, Routed, route
from ngxws.http.upstream_request import RequestVariables
from ngxws.limits.preaccess import Limiter
from ngxws.limits.zones import LimitZones
from ngxws.routing.locations import match_location
from ngxws.routing.servers import VirtualHosts, virtual_hosts

CONF = """
events {}
http {
    server {
        listen 127.0.0.1:1;
        server_name ~^(?<sub>\\w+)\\.example$;
        rewrite ^/srv/(.*)$ /dest/$1;
        rewrite ^/srvperm$ /x permanent;
        if ($http_x_block) { return 403; }
        set $flag off;
        location /dest/ { proxy_pass http://127.0.0.1:9; }
        location /last/ { rewrite ^/last/(.*)$ /dest/$1 last; return 200 "no"; }
        location /brk/ { rewrite ^/brk/(.*)$ /dest/$1 break; proxy_pass http://127.0.0.1:9/base/; }
        location /loop/ { rewrite ^ /loop/again last; }
        location /count/ { rewrite ^/count/\\d(.*)$ /count/$1 last; return 200 "done"; }
        location /args/ { rewrite ^/args/(.*)$ /dest/$1?n=1 last; }
        location /noargs/ { rewrite ^/noargs/(.*)$ /dest/$1? last; }
        location /red/ { rewrite ^/red/(.*)$ /to/$1 redirect; }
        location /if/ {
            proxy_pass http://127.0.0.1:9;
            if ($arg_alt) { proxy_pass http://127.0.0.1:10; }
            if ($arg_alt = two) { set $flag on; }
        }
        location /file/ { if (-f /data/present) { return 200 "file"; } return 404; }
        location /dir/ { if (-d /data) { return 200 "dir"; } return 404; }
        location /x/ { if (!-x /data/present) { return 200 "not exec"; } return 200 "exec"; }
        location /intern/ { internal; return 200 "in"; }
        location /tointern/ { rewrite ^ /intern/ last; }
        location /slash/ { proxy_pass http://127.0.0.1:9; }
    }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    conf = Path(tmp_path_factory.mktemp("engine")) / "nginx.conf"
    conf.write_text(CONF)
    return load_config(str(conf)).servers[0]


def _stat(path: str) -> os.stat_result | None:
    """A tiny file system: /data (a directory) and /data/present (a file)."""
    modes = {"/data": stat_module.S_IFDIR | 0o755, "/data/present": stat_module.S_IFREG | 0o644}
    if path not in modes:
        return None
    return os.stat_result((modes[path], 0, 0, 1, 0, 0, 0, 0, 0, 0))


def _route(server: Server, target: str, headers: list[tuple[str, str]] | None = None) -> tuple[Routed, RequestVariables]:
    head = RequestHead("GET", target, "1.1", [("Host", "www.example"), *(headers or [])], True)
    v = RequestVariables(head, "127.0.0.1", 1, "127.0.0.1", 80, "")
    return route(server, v, _stat), v


# target, headers -> (status, return code, location pattern, $uri, $args, proxy_pass port)
TABLE: list[tuple[str, list[tuple[str, str]], int, int | None, str | None, str, str | None, int | None]] = [
    ("/srv/a?q=1", [], 0, None, "/dest/", "/dest/a", "q=1", 9),
    ("/srvperm", [], 0, 301, None, "/srvperm", None, None),
    ("/dest/z", [("X-Block", "1")], 0, 403, None, "/dest/z", None, None),
    ("/last/p", [], 0, None, "/dest/", "/dest/p", None, 9),
    ("/brk/p?k=v", [], 0, None, "/brk/", "/dest/p", "k=v", 9),
    ("/loop/", [], 500, None, "/loop/", "/loop/again", None, None),
    ("/count/" + "1" * (MAX_URI_CHANGES - 1), [], 0, 200, "/count/", "/count/", None, None),
    ("/count/" + "1" * MAX_URI_CHANGES, [], 0, 200, "/count/", "/count/", None, None),
    ("/count/" + "1" * (MAX_URI_CHANGES + 1), [], 500, None, "/count/", "/count/", None, None),
    ("/args/a?old=1", [], 0, None, "/dest/", "/dest/a", "n=1&old=1", 9),
    ("/noargs/a?old=1", [], 0, None, "/dest/", "/dest/a", None, 9),
    ("/red/a?k=1", [], 0, 302, None, "/red/a", "k=1", None),
    ("/if/", [], 0, None, "/if/", "/if/", None, 9),
    ("/if/?alt=1", [], 0, None, "/if/", "/if/", "alt=1", 10),
    ("/file/", [], 0, 200, None, "/file/", None, None),
    ("/dir/", [], 0, 200, None, "/dir/", None, None),
    ("/x/", [], 0, 200, None, "/x/", None, None),
    ("/intern/", [], 404, None, "/intern/", "/intern/", None, None),
    ("/tointern/", [], 0, 200, "/intern/", "/intern/", None, None),
    ("/slash", [], 301, None, "/slash/", "/slash", None, None),
    # no location matches: the server's own configuration (its static files)
    ("/nothing", [], 0, None, "", "/nothing", None, None),
]


@pytest.mark.parametrize(("target", "headers", "status", "code", "pattern", "uri", "args", "port"), TABLE, ids=[t[0] for t in TABLE])
def test_route(
    server: Server,
    target: str,
    headers: list[tuple[str, str]],
    status: int,
    code: int | None,
    pattern: str | None,
    uri: str,
    args: str | None,
    port: int | None,
) -> None:
    routed, v = _route(server, target, headers)
    assert routed.status == status
    assert (routed.ret.code if routed.ret is not None else None) == code
    if pattern is not None:
        assert routed.location is not None and routed.location.pattern == pattern
    assert v.head.path == uri
    assert v.head.args == args
    if port is not None:
        assert routed.location is not None and routed.location.proxy_pass is not None
        assert routed.location.proxy_pass.port == port


def test_redirect_url_and_request_uri(server: Server) -> None:
    routed, v = _route(server, "/red/a?k=1")
    assert routed.redirect_url == "/to/a?k=1"
    routed, v = _route(server, "/last/p?q=2")
    assert v.get("request_uri") == "/last/p?q=2"  # the client's, never rewritten
    assert v.get("uri") == "/dest/p"


def test_break_drops_the_location_uri_part(server: Server) -> None:
    routed, _ = _route(server, "/brk/p")
    assert routed.valid_location is False


def test_set_and_if_location_last_wins(server: Server) -> None:
    routed, v = _route(server, "/if/?alt=two")
    assert v.get("flag") == "on"
    assert routed.location is not None and routed.location.modifier == "if"
    routed, v = _route(server, "/if/")
    assert v.get("flag") == "off"
    assert routed.location is not None and routed.location.modifier == ""


def test_no_files_by_default(server: Server) -> None:
    head = RequestHead("GET", "/file/", "1.1", [("Host", "a")], True)
    routed = route(server, RequestVariables(head, "127.0.0.1", 1, "127.0.0.1", 80, ""))
    assert routed.ret is not None and routed.ret.code == 404


def test_variables_take_an_injected_clock() -> None:
    head = RequestHead("GET", "/", "1.1", [("Host", "a")], True)
    v = RequestVariables(head, "127.0.0.1", 1, "127.0.0.1", 80, "", clock=lambda: 1764060248.5, random_hex=lambda: "ab" * 16)
    assert v.get("msec") == "1764060248.500"
    assert v.get("request_id") == "ab" * 16
    assert v.render("$request_id") == "ab" * 16


# -- the whole engine: request head + connection facts in, an action out ---------------
#
# ngxws.http.engine runs every phase (TLS checks, rewrite, find config,
# preaccess, access, content, error_page, return) for a request and says what
# to do.  These rows feed it real confs through the loader, a fake connection
# (its addresses, TLS facts, per-request values), and a World whose files,
# clock and password file are tables; socket.socket raises in this module.

PHASES_CONF = """
events {}
http {
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;
    limit_req_zone $http_x_key zone=burst:1m rate=1r/s;
    limit_conn_zone $http_x_conn zone=conns:1m;
    server {
        listen 127.0.0.1:1;
        server_name www.example;
        rewrite ^/srv/(.*)$ /dest/$1;
        location /dest/ { proxy_pass http://127.0.0.1:9; }
        location /loop/ { rewrite ^ /loop/again last; }
        location /brk/ { rewrite ^/brk/(.*)$ /dest/$1 break; proxy_pass http://127.0.0.1:9/base/; }
        location /if/ {
            proxy_pass http://127.0.0.1:9;
            if ($arg_alt) { proxy_pass http://127.0.0.1:10; }
        }
        location /ifret/ { deny all; if ($arg_open) { return 200 "open"; } proxy_pass http://127.0.0.1:9; }
        location /ws/ { proxy_pass http://127.0.0.1:9; }
        location = /stats { ws_stat; }
        location /files/ { root /srv; }
        location /slash/ { proxy_pass http://127.0.0.1:9; }
        location /ret/ { return 200 "hello $uri"; }
        location /gone/ { return 444; }
        location /moved/ { return 301 /elsewhere/; }
        location /nocontent/ { return 204; }
        location /deny/ { deny all; return 200 "no"; }
        location /denied/ { deny all; proxy_pass http://127.0.0.1:9; }
        location /allowed/ { allow 127.0.0.1; deny all; proxy_pass http://127.0.0.1:9; }
        location /basic/ { auth_basic "Realm"; auth_basic_user_file /etc/htpasswd; proxy_pass http://127.0.0.1:9; }
        location /any/ {
            satisfy any; allow 10.0.0.0/8; deny all;
            auth_basic "R"; auth_basic_user_file /etc/htpasswd; proxy_pass http://127.0.0.1:9;
        }
        location /all/ {
            satisfy all; allow 127.0.0.1; deny all;
            auth_basic "R"; auth_basic_user_file /etc/htpasswd; proxy_pass http://127.0.0.1:9;
        }
        location /nofile/ { auth_basic "R"; auth_basic_user_file /etc/missing; proxy_pass http://127.0.0.1:9; }
        location /authreq/ { auth_request /auth; proxy_pass http://127.0.0.1:9; }
        location /anyreq/ { satisfy any; allow 10.0.0.0/8; deny all; auth_request /auth; proxy_pass http://127.0.0.1:9; }
        location = /auth { internal; proxy_pass http://127.0.0.1:11; }
        location /limited/ { limit_req zone=one; proxy_pass http://127.0.0.1:9; }
        location /delayed/ { limit_req zone=burst burst=5; proxy_pass http://127.0.0.1:9; }
        location /conns/ { limit_conn conns 1; proxy_pass http://127.0.0.1:9; }
        location /errpage/ { error_page 404 = /ret/fallback; return 404; }
        location /named/ { error_page 403 @fallback; deny all; proxy_pass http://127.0.0.1:9; }
        location @fallback { return 200 "named"; }
        location /errurl/ { error_page 404 http://example.org/404; return 404; }
        location /realip/ {
            set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;
            allow 10.1.2.3; deny all; proxy_pass http://127.0.0.1:9;
        }
        location /big/ { client_max_body_size 10; proxy_pass http://127.0.0.1:9; }
        location /uwsgi/ { uwsgi_pass 127.0.0.1:12; }
    }
    server {
        listen 127.0.0.1:2 ssl; server_name tls.example;
        ssl_certificate CERT; ssl_certificate_key KEY; ssl_client_certificate CA; ssl_verify_client on;
        location / { proxy_pass http://127.0.0.1:9; }
    }
    server {
        listen 127.0.0.1:2 ssl; server_name opt.example;
        ssl_certificate CERT; ssl_certificate_key KEY; ssl_client_certificate CA; ssl_verify_client optional;
        location / { proxy_pass http://127.0.0.1:9; }
    }
}
"""

_HTPASSWD = b"# users\nalice:{PLAIN}secret\nbob:{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()) + b"\n"
_ALICE = [("Authorization", "Basic " + base64.b64encode(b"alice:secret").decode())]
_BOB_WRONG = [("Authorization", "Basic " + base64.b64encode(b"bob:nope").decode())]


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in the engine may open a socket."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Config, VirtualHosts]]:
    folder = Path(tmp_path_factory.mktemp("phases"))
    ca = trustme.CA()
    leaf = ca.issue_cert("tls.example", "opt.example")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
    (folder / "cert.pem").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    text = PHASES_CONF.replace("CERT", str(folder / "cert.pem")).replace("KEY", str(folder / "key.pem"))
    (folder / "nginx.conf").write_text(text.replace(" CA;", f" {folder / 'ca.pem'};"))
    config = load_config(str(folder / "nginx.conf"), allow_unenforced=["uwsgi_pass"])
    table = {listen.port: vh for listen, vh in virtual_hosts(config).values()}
    return {"plain": (config, table[1]), "tls": (config, table[2])}


class FakeTLS:
    """The TLS facts request_status() asks of a connection."""

    def __init__(self, sni: str, verify: int = 0, cert: bool = False) -> None:
        self.sni, self.verify, self.peer_certificate = sni, verify, (b"der" if cert else None)

    def variable(self, name: str) -> str:
        return self.sni if name == "ssl_server_name" else ""

    def verify_result(self) -> int:
        return self.verify


class Files:
    """The world's files: an htpasswd, nothing else."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __call__(self, path: str) -> bytes:
        self.read.append(path)
        if path == "/etc/htpasswd":
            return _HTPASSWD
        raise FileNotFoundError(path)


def _world(config: Config, logged: list[str], clock: list[int]) -> World:
    return World(
        stat=_stat,
        limiter=Limiter(LimitZones.for_config(config), clock=lambda: clock[0]),
        read_file=Files(),
        log_error=logged.append,
    )


def _summary(action: engine.Action) -> tuple[object, ...]:
    """What a row checks of an action."""
    if isinstance(action, engine.Content):
        pp = action.loc.proxy_pass
        return ("content", type(action.handler).__name__, action.loc.pattern, pp.port if pp is not None else None)
    if isinstance(action, engine.ErrorPage):
        return ("error", action.status, action.keep, *action.headers)
    if isinstance(action, engine.Redirect):
        return ("redirect", action.status, action.url)
    if isinstance(action, engine.Respond):
        return ("respond", action.status, action.body, action.length)
    if isinstance(action, engine.Delay):
        return ("delay", action.ms)
    if isinstance(action, engine.AuthSubrequest):
        return ("auth", action.uri)
    if isinstance(action, engine.Plain):
        return ("plain", action.status)
    return ("close",)


_CHALLENGE = ("WWW-Authenticate", 'Basic realm="Realm"')
_CHALLENGE_R = ("WWW-Authenticate", 'Basic realm="R"')

# (name, host, target, headers, facts) -> expected summary.  facts: remote
# (client address), tls (FakeTLS), upgrade, error (413 declared), before
# (that many identical requests first, same clock), method.
PHASE_TABLE: list[tuple[str, str, str, list[tuple[str, str]], dict[str, object], tuple[object, ...]]] = [
    # server rewrite, find config, location rewrite, post-rewrite
    ("server rewrite", "plain", "/srv/a", [], {}, ("content", "ProxyHTTP", "/dest/", 9)),
    ("no location: the server's own configuration", "plain", "/nothing", [], {}, ("content", "Static", "", None)),
    ("rewrite last cycle", "plain", "/loop/", [], {}, ("error", 500, False)),
    ("rewrite break", "plain", "/brk/p", [], {}, ("content", "ProxyHTTP", "/brk/", 9)),
    ("auto-redirect", "plain", "/slash", [], {}, ("redirect", 301, "/slash/")),
    ("auto-redirect args", "plain", "/slash?a=1", [], {}, ("redirect", 301, "/slash/?a=1")),
    ("413 declared", "plain", "/big/", [], {"error": 413}, ("plain", 413)),
    ("413 with no location: the server's limit", "plain", "/nothing", [], {"error": 413}, ("plain", 413)),
    # if in location: nginx's nested location
    ("if location", "plain", "/if/?alt=1", [], {}, ("content", "ProxyHTTP", "/if/", 10)),
    ("if not taken", "plain", "/if/", [], {}, ("content", "ProxyHTTP", "/if/", 9)),
    ("if return before deny", "plain", "/ifret/?open=1", [], {}, ("respond", 200, b"open", None)),
    ("if not taken, deny", "plain", "/ifret/", [], {}, ("error", 403, True)),
    # return
    ("return text", "plain", "/ret/x", [], {}, ("respond", 200, b"hello /ret/x", None)),
    ("return 444", "plain", "/gone/", [], {}, ("close",)),
    ("return redirect", "plain", "/moved/", [], {}, ("redirect", 301, "/elsewhere/")),
    ("return 204", "plain", "/nocontent/", [], {}, ("respond", 204, b"", -1)),
    ("return before access", "plain", "/deny/", [], {}, ("respond", 200, b"no", None)),
    # content handlers
    ("stats page", "plain", "/stats", [], {}, ("content", "StatsPage", "/stats", None)),
    ("static", "plain", "/files/a.txt", [], {}, ("content", "Static", "/files/", None)),
    ("upgrade", "plain", "/ws/", [], {"upgrade": True}, ("content", "Upgrade", "/ws/", 9)),
    ("unserved handler", "plain", "/uwsgi/", [], {}, ("error", 502, True)),
    # access: allow/deny, auth_basic, satisfy
    ("deny all", "plain", "/denied/", [], {}, ("error", 403, True)),
    ("allow rule", "plain", "/allowed/", [], {}, ("content", "ProxyHTTP", "/allowed/", 9)),
    ("allow rule, other client", "plain", "/allowed/", [], {"remote": "10.0.0.5"}, ("error", 403, True)),
    ("basic, no credentials", "plain", "/basic/", [], {}, ("error", 401, True, _CHALLENGE)),
    ("basic, good", "plain", "/basic/", _ALICE, {}, ("content", "ProxyHTTP", "/basic/", 9)),
    ("basic, wrong", "plain", "/basic/", _BOB_WRONG, {}, ("error", 401, True, _CHALLENGE)),
    ("basic, no user file", "plain", "/nofile/", _ALICE, {}, ("error", 403, True)),
    ("any: address", "plain", "/any/", [], {"remote": "10.0.0.5"}, ("content", "ProxyHTTP", "/any/", 9)),
    ("any: neither", "plain", "/any/", [], {}, ("error", 401, True, _CHALLENGE_R)),
    ("any: password", "plain", "/any/", _ALICE, {}, ("content", "ProxyHTTP", "/any/", 9)),
    ("all: both", "plain", "/all/", _ALICE, {}, ("content", "ProxyHTTP", "/all/", 9)),
    ("all: address only", "plain", "/all/", [], {}, ("error", 401, True, _CHALLENGE_R)),
    ("all: password only", "plain", "/all/", _ALICE, {"remote": "10.0.0.5"}, ("error", 403, True)),
    ("auth_request", "plain", "/authreq/", [], {}, ("auth", "/auth")),
    ("any: address before auth_request", "plain", "/anyreq/", [], {"remote": "10.0.0.5"}, ("content", "ProxyHTTP", "/anyreq/", 9)),
    ("any: auth_request", "plain", "/anyreq/", [], {}, ("auth", "/auth")),
    ("internal location", "plain", "/auth", [], {}, ("error", 404, True)),
    # preaccess: realip per location, limit_req, limit_conn
    ("realip", "plain", "/realip/", [("X-Real-IP", "10.1.2.3")], {}, ("content", "ProxyHTTP", "/realip/", 9)),
    ("realip, no header", "plain", "/realip/", [], {}, ("error", 403, True)),
    ("limit_req first", "plain", "/limited/", [], {}, ("content", "ProxyHTTP", "/limited/", 9)),
    ("limit_req refused", "plain", "/limited/", [], {"before": 1}, ("error", 503, True)),
    ("limit_req delays", "plain", "/delayed/", [("X-Key", "k")], {"before": 1}, ("delay", 1000)),
    ("limit_req no key", "plain", "/delayed/", [], {"before": 3}, ("content", "ProxyHTTP", "/delayed/", 9)),
    ("limit_conn first", "plain", "/conns/", [("X-Conn", "c")], {}, ("content", "ProxyHTTP", "/conns/", 9)),
    ("limit_conn refused", "plain", "/conns/", [("X-Conn", "c")], {"before": 1}, ("error", 503, True)),
    # error_page
    ("error_page URI", "plain", "/errpage/", [], {}, ("respond", 200, b"hello /ret/fallback", None)),
    ("error_page @named", "plain", "/named/", [], {}, ("respond", 403, b"named", None)),  # err_status: no "=" keeps 403
    ("error_page URL", "plain", "/errurl/", [], {}, ("redirect", 302, "http://example.org/404")),
    # the TLS checks of ngx_http_process_request(), before any phase
    ("496 no certificate", "tls", "/", [], {"tls": FakeTLS("tls.example")}, ("error", 496, False)),
    ("495 bad certificate", "tls", "/", [], {"tls": FakeTLS("tls.example", verify=20, cert=True)}, ("error", 495, False)),
    ("good certificate", "tls", "/", [], {"tls": FakeTLS("tls.example", cert=True)}, ("content", "ProxyHTTP", "/", 9)),
    ("421 SNI and Host differ", "tls", "/", [("Host", "opt.example")], {"tls": FakeTLS("tls.example", cert=True)}, ("error", 421, False)),
    ("optional, none sent", "tls", "/", [("Host", "opt.example")], {"tls": FakeTLS("opt.example")}, ("content", "ProxyHTTP", "/", 9)),
]


def _request(target: str, headers: list[tuple[str, str]], host: str) -> RequestHead:
    if not any(k == "Host" for k, _ in headers):
        headers = [("Host", host), *headers]
    return RequestHead("GET", target, "1.1", headers, True)


@pytest.mark.parametrize(("name", "which", "target", "headers", "facts", "expected"), PHASE_TABLE, ids=[r[0] for r in PHASE_TABLE])
def test_phases(
    hosts: dict[str, tuple[Config, VirtualHosts]],
    name: str,
    which: str,
    target: str,
    headers: list[tuple[str, str]],
    facts: dict[str, object],
    expected: tuple[object, ...],
) -> None:
    config, vhosts = hosts[which]
    logged: list[str] = []
    world = _world(config, logged, [1_000_000])
    host = "tls.example" if which == "tls" else "www.example"
    action: engine.Action | None = None
    for _ in range(cast(int, facts.get("before", 0)) + 1):  # the same client, the same millisecond
        conn = Conn(cast(str, facts.get("remote", "127.0.0.1")), cast("FakeTLS | None", facts.get("tls")))
        state = Req(_request(target, headers, host), cast(int, facts.get("error", 0)), bool(facts.get("upgrade")))
        action = engine.start(world, conn, vhosts, state)
    assert action is not None
    assert _summary(action) == expected


def test_access_forbidden_is_logged_like_nginx(hosts: dict[str, tuple[Config, VirtualHosts]]) -> None:
    config, vhosts = hosts["plain"]
    logged: list[str] = []
    action = engine.start(_world(config, logged, [0]), Conn("10.0.0.5"), vhosts, Req(_request("/denied/", [], "www.example")))
    assert _summary(action) == ("error", 403, True)
    assert logged == ['access forbidden by rule, client: 10.0.0.5, request: "GET /denied/ HTTP/1.1"']


def test_remote_user_and_password_file_read_through_the_world(hosts: dict[str, tuple[Config, VirtualHosts]]) -> None:
    config, vhosts = hosts["plain"]
    world = _world(config, [], [0])
    conn = Conn()
    engine.start(world, conn, vhosts, Req(_request("/basic/", _ALICE, "www.example")))
    assert conn.remote_user == "alice"
    assert cast(Files, world.read_file).read == ["/etc/htpasswd"]
    assert conn.requests == 1


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, [], ("content", "ProxyHTTP", "/authreq/", 9)),
        (204, [], ("content", "ProxyHTTP", "/authreq/", 9)),
        (401, [("WWW-Authenticate", "Bearer")], ("error", 401, True, ("WWW-Authenticate", "Bearer"))),
        (403, [], ("error", 403, True)),
        (404, [], ("error", 500, False)),
        (502, [], ("error", 500, False)),
    ],
)
def test_auth_request_resumes_with_the_subrequest_status(
    hosts: dict[str, tuple[Config, VirtualHosts]], status: int, headers: list[tuple[str, str]], expected: tuple[object, ...]
) -> None:
    config, vhosts = hosts["plain"]
    logged: list[str] = []
    world, conn = _world(config, logged, [0]), Conn()
    waiting = engine.start(world, conn, vhosts, Req(_request("/authreq/", [], "www.example")))
    assert isinstance(waiting, engine.AuthSubrequest) and waiting.sets == ()
    action = engine.after_auth(world, conn, waiting.paused, status, (("user", "u1"),), headers)
    assert _summary(action) == expected
    assert conn.auth_vars == {"user": "u1"}
    assert logged == ([] if status < 404 else [f"auth request unexpected status: {status}"])


def test_delay_resumes_into_limit_conn_and_access(hosts: dict[str, tuple[Config, VirtualHosts]]) -> None:
    config, vhosts = hosts["plain"]
    clock = [5_000]
    world = _world(config, [], clock)
    first = engine.start(world, Conn(), vhosts, Req(_request("/delayed/", [("X-Key", "k")], "www.example")))
    assert _summary(first) == ("content", "ProxyHTTP", "/delayed/", 9)
    second = engine.start(world, Conn(), vhosts, Req(_request("/delayed/", [("X-Key", "k")], "www.example")))
    assert isinstance(second, engine.Delay) and second.ms == 1000
    clock[0] += second.ms  # the shell slept
    assert _summary(engine.after_delay(world, Conn(), second.paused)) == ("content", "ProxyHTTP", "/delayed/", 9)


def test_errors_of_the_content_phase_go_through_error_page(hosts: dict[str, tuple[Config, VirtualHosts]]) -> None:
    """What the shell asks when an upstream fails: error_page once, then nginx's page."""
    config, vhosts = hosts["plain"]
    world, conn = _world(config, [], [0]), Conn()
    state = Req(_request("/named/", [], "www.example"))
    server = vhosts.select("www.example")
    loc = match_location(server.locations, "/named/")
    assert loc is not None
    first = engine.on_error(world, conn, 403, state, server, loc.location, True)
    assert _summary(first) == ("respond", 403, b"named", None)  # nginx keeps the error code (err_status)
    again = engine.on_error(world, conn, 403, state, server, loc.location, True)  # recursive_error_pages off
    assert _summary(again) == ("error", 403, True)


def test_the_engine_is_synchronous() -> None:
    for entry in (engine.start, engine.at_location, engine.on_error, engine.after_auth, engine.after_delay):
        assert not inspect.iscoroutinefunction(entry)


def test_this_module_can_open_no_socket() -> None:
    with pytest.raises(AssertionError, match="opened a socket"):
        socket.socket()


@pytest.mark.parametrize(
    ("length", "limit", "over"),
    [("11", 10, True), ("10", 10, False), ("2000000", 1048576, True), ("x", 10, False), (None, 10, False), ("5", 0, False)],
)
def test_a_declared_length_over_the_limit(length: str | None, limit: int, over: bool) -> None:
    headers = [("Host", "a")] + ([("Content-Length", length)] if length is not None else [])
    assert over_declared_length(RequestHead("POST", "/", "1.1", headers, True), limit) is over


def test_find_config_before_the_body(hosts: dict[str, tuple[Config, VirtualHosts]]) -> None:
    """The body's limit is the location's, unless server-level rewrites
    must run first (then the server's: the location is not known yet)."""
    config, vhosts = hosts["plain"]
    head = RequestHead("POST", "/big/", "1.1", [("Host", "www.example"), ("Content-Length", "11")], True)
    plan, scope = body_plan_for(vhosts, head)
    assert scope is vhosts.select("www.example") and plan.limit == 1024 * 1024  # it has a rewrite
    _, tls_hosts = hosts["tls"]
    head = RequestHead("POST", "/x", "1.1", [("Host", "tls.example")], True)
    plan, scope = body_plan_for(tls_hosts, head)
    assert isinstance(scope, Location) and scope.pattern == "/" and plan.proxied
