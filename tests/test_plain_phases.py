"""Issue 13, W5: where a request no phase can act on goes, decided without
running the phases (ngxws.http.plain_phases, engine.start's first step), is
what the phases decide (engine.phases, the oracle): the same action (handler,
server, location, captures, keep-alive) and the same per-request values
left on the connection, over a table of real confs (through crossplane) and
requests; every request it does not take leaves the connection untouched
and goes through the phases."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import engine_fakes
import pytest
from engine_fakes import Req

from ngxws.config.loader import load_config
from ngxws.config.model import Config
from ngxws.http import engine
from ngxws.http.engine import World
from ngxws.http.plain_phases import plain_request
from ngxws.http.request import RequestHead
from ngxws.http.rewrite import no_files
from ngxws.limits.preaccess import Limiter
from ngxws.limits.zones import LimitZones
from ngxws.routing.servers import VirtualHosts, virtual_hosts

P = "proxy_pass http://127.0.0.1:9;"

CONF = f"""
events {{}}
http {{
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;
    limit_conn_zone $binary_remote_addr zone=conns:1m;
    server {{
        listen 127.0.0.1:1;
        server_name plain.test www.plain.test;
        location /ws/ {{ proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; {P} }}
        location / {{ {P} }}
        location = /stats {{ ws_stat; }}
        location = /stub {{ stub_status; }}
        location /files/ {{ root /nonexistent; }}
        location /uwsgi/ {{ uwsgi_pass 127.0.0.1:12; }}
        location /internal/ {{ internal; {P} }}
        location /rw/ {{ rewrite ^/rw/(.*)$ /ws/$1 last; }}
        location /brk/ {{ rewrite ^/brk/(.*)$ /ws/$1 break; {P} }}
        location /ret/ {{ return 200 "r"; }}
        location /if/ {{ if ($http_x_a) {{ return 418; }} {P} }}
        location /set/ {{ set $x 1; {P} }}
        location /le/ {{ limit_except GET {{ deny all; }} {P} }}
        location /realip/ {{ set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP; {P} }}
        location /lim/ {{ limit_req zone=one; {P} }}
        location /conns/ {{ limit_conn conns 1; {P} }}
        location /deny/ {{ deny 10.0.0.0/8; {P} }}
        location /basic/ {{ auth_basic "R"; auth_basic_user_file /etc/none; {P} }}
        location /authreq/ {{ auth_request /auth; {P} }}
        location = /auth {{ internal; proxy_pass http://127.0.0.1:11; }}
        location ~ ^/re/(.*)/(\\d+)$ {{ {P} }}
        location ~ ^/named/(?<rest>.*)$ {{ {P} }}
        location ~* \\.PHP$ {{ {P} }}
        location /slash/ {{ {P} }}
        location ^~ /pre/ {{ {P} }}
        location = /exact {{ {P} }}
        location /errpage/ {{ error_page 502 = /ret/x; {P} }}
        location /uri/ {{ proxy_pass http://127.0.0.1:9/other/; }}
    }}
    server {{
        listen 127.0.0.1:1;
        server_name realip.test;
        set_real_ip_from 127.0.0.0/8; real_ip_header X-Forwarded-For; real_ip_recursive on;
        location /ws/ {{ {P} }}
        location /loc-realip/ {{ set_real_ip_from 10.0.0.0/8; {P} }}
    }}
    server {{
        listen 127.0.0.1:1;
        server_name rewritten.test;
        rewrite ^/old/(.*)$ /ws/$1 last;
        location /ws/ {{ {P} }}
    }}
    server {{
        listen 127.0.0.1:1;
        server_name nolocation.test;
        root /nonexistent;
    }}
    server {{
        listen 127.0.0.1:2;
        server_name ~^(?<sub>\\w+)\\.regex\\.test$ other.test;
        location /ws/ {{ {P} }}
    }}
}}
"""

ALICE = ("Authorization", "Basic " + base64.b64encode(b"alice:secret").decode())
BAD = ("Authorization", "Basic !!!")

HOSTS = ["plain.test", "WWW.Plain.Test.:1", "realip.test", "rewritten.test", "nolocation.test", "unknown.test", None]
TARGETS = [
    "/ws/a", "/ws/", "/", "/x?y=1", "/stats", "/stub", "/files/f", "/uwsgi/", "/internal/", "/rw/a", "/brk/a",
    "/ret/", "/if/", "/set/", "/le/", "/realip/", "/lim/", "/conns/", "/deny/", "/basic/", "/authreq/", "/auth",
    "/re/a/12", "/re/a/b", "/named/x", "/INDEX.php", "/slash", "/pre/x", "/exact", "/errpage/", "/uri/a?q",
    "/old/a", "/loc-realip/", "http://abs.test/ws/abs", "/ws/%2e%2e/re/x/1",
]
EXTRAS: list[list[tuple[str, str]]] = [
    [],
    [ALICE, ("X-Forwarded-For", "10.9.8.7, 192.0.2.1"), ("X-Real-IP", "10.1.1.1")],
    [BAD, ("X-A", "1"), ("Upgrade", "websocket")],
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict[int, VirtualHosts]]:
    conf = Path(tmp_path_factory.mktemp("plain")) / "nginx.conf"
    conf.write_text(CONF)
    config = load_config(str(conf), allow_unenforced=["uwsgi_pass"])
    return config, {listen.port: vh for listen, vh in virtual_hosts(config).values()}


class Conn(engine_fakes.Conn):
    """The engine's ``Connection`` on a plain listener, holding a previous
    request's values (the shortcut must set them as the phases do)."""

    def __init__(self, remote: str) -> None:
        super().__init__(remote, server_port=1)
        self.remote_user = "previous"
        self.auth_vars = {"previous": "1"}
        self.error_headers = [("Previous", "1")]
        self.script_vars = {"previous": "1"}
        self.script_named = {"previous": "1"}
        self.requests = 3
        self.request_id = "previous"

    def facts(self) -> tuple[object, ...]:
        a = self.address
        return (
            self.remote_addr, self.remote_port, self.remote_user, self.auth_vars, self.error_headers,
            self.script_vars, dict(self.script_named), self.requests, self.request_id, a.addr, a.port, a.changed,
        )


def _world(config: Config) -> World:
    def read_file(path: str) -> bytes:
        raise FileNotFoundError(path)

    return World(stat=no_files, limiter=Limiter(LimitZones.for_config(config), clock=lambda: 1_000_000),
                 read_file=read_file, log_error=lambda line: None)


def _head(method: str, target: str, host: str | None, extra: list[tuple[str, str]]) -> RequestHead:
    headers = ([("Host", host)] if host is not None else []) + list(extra)
    return RequestHead(method=method, target=target, version="1.1", headers=headers, keep_alive=method != "HEAD")


@pytest.mark.parametrize("target", TARGETS)
def test_plain_request_is_what_the_phases_decide(world, target: str) -> None:  # type: ignore[no-untyped-def]
    for port, host, extra, method in itertools.product([1, 2], HOSTS, range(len(EXTRAS)), ["GET", "POST", "HEAD"]):
        _compare(world, port, host, target, extra, method)


def _compare(world, port, host, target, extra, method) -> None:  # type: ignore[no-untyped-def]
    config, table = world
    vhosts = table[port]
    taken = 0
    for upgrade, error, remote in itertools.product((False, True), (0, 413), ("127.0.0.1", "10.2.3.4")):
        oracle_conn, fast_conn = Conn(remote), Conn(remote)
        oracle_state = Req(_head(method, target, host, EXTRAS[extra]), error, upgrade)
        fast_state = Req(_head(method, target, host, EXTRAS[extra]), error, upgrade)
        before = fast_conn.facts()
        plain = plain_request(fast_conn, vhosts, fast_state)
        oracle = engine.phases(_world(config), oracle_conn, vhosts, oracle_state)
        if plain is None:
            assert fast_conn.facts() == before  # untouched: the phases run on it
            continue
        taken += 1
        assert isinstance(oracle, engine.Content), (target, oracle)
        handler, server, loc, captures = plain
        assert (handler, captures) == (oracle.handler, oracle.captures)
        assert server is oracle.server and loc is oracle.loc
        assert fast_conn.facts() == oracle_conn.facts()
        assert fast_state.head is oracle_state.head or fast_state.head == oracle_state.head
        # engine.start makes the action of it
        again = Conn(remote)
        action = engine.start(_world(config), again, vhosts, Req(_head(method, target, host, EXTRAS[extra]), error, upgrade))
        assert isinstance(action, engine.Content)
        assert (action.handler, action.server, action.loc, action.captures, action.keep) == (
            oracle.handler, oracle.server, oracle.loc, oracle.captures, oracle.keep)
    if port == 2:
        assert taken == 0  # a regex server name: its captures are the phases'


def test_the_plain_requests_are_taken(world) -> None:  # type: ignore[no-untyped-def]
    """Not vacuous: the usual proxied and upgraded requests are decided here."""
    config, table = world
    for host, target, upgrade in [("plain.test", "/ws/a", True), ("plain.test", "/x", False),
                                  ("plain.test", "/re/a/12", True), ("plain.test", "/stats", False), (None, "/ws/", True),
                                  ("plain.test", "/files/x", False), ("unknown.test", "/pre/x", True)]:
        conn = Conn("127.0.0.1")
        plain = plain_request(conn, table[1], Req(_head("GET", target, host, []), 0, upgrade))
        assert plain is not None, target
    for target in ["/rw/a", "/le/", "/realip/", "/lim/", "/deny/", "/basic/", "/authreq/", "/named/x", "/internal/",
                   "/slash", "/uwsgi/", "/set/", "/if/", "/ret/"]:  # realip of a server is its locations' too
        assert plain_request(Conn("127.0.0.1"), table[1], Req(_head("GET", target, "plain.test", []), 0, True)) is None, target


def test_select_remembers_what_it_chose(world) -> None:  # type: ignore[no-untyped-def]
    """VirtualHosts.select's answers kept per Host are the lookup's, every
    time, also once the bounded memory was emptied."""
    _, table = world
    names = [h for h in HOSTS if h] + ["a.regex.test", "B.Regex.Test:2", "other.test.", "[::1]:1", "x" * 300]
    names += [f"n{i}.test" for i in range(300)]
    for vhosts in table.values():
        for _ in range(2):
            for name in names:
                assert vhosts.select(name) is vhosts._select(name)
        assert vhosts.select("") is vhosts.select(None) is vhosts.default


def test_a_copy_of_the_hosts_remembers_its_own(world) -> None:  # type: ignore[no-untyped-def]
    """A copy with another default (client_certs' probe for SNI) has its own
    remembered answers: neither sees the other's default."""
    from dataclasses import replace

    _, table = world
    vhosts = table[1]
    other = next(s for s in vhosts.exact.values() if s is not vhosts.default)
    probe = replace(vhosts, default=other)
    for _ in range(2):
        assert vhosts.select("nobody.test") is vhosts.default
        assert probe.select("nobody.test") is other
