"""Issue 13, W5: the upstream request head of an upgrade made from its
location's plan (ngxws.proxy.upgrade_plan: literal text and slots, prepared
once per location) is byte for byte what build_upstream_head makes of the
request's variables -- the general path, kept as the oracle -- over a table
of locations of a real conf (read through crossplane) and requests; where
the plan cannot make it (``head`` None) the caller takes the general path.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ngxws.config.loader import load_config
from ngxws.config.model import Config, Location, Server
from ngxws.http.maps import CompiledMap, compile_maps
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import (
    RequestVariables,
    build_upstream_head,
    proxy_host_of,
    proxy_uri,
    sends_client_body,
)
from ngxws.proxy.request_body import upstream_framing
from ngxws.proxy.upgrade_plan import plan_of
from ngxws.proxy.upstream import UpstreamPools
from ngxws.routing.locations import match_location
from ngxws.routing.servers import virtual_hosts

UP = 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";'

# (path prefix, location body); each location is /<name>/
LOCATIONS: list[tuple[str, str]] = [
    ("bench", f"{UP} proxy_pass http://127.0.0.1:9001;"),
    ("port80", f"{UP} proxy_pass http://127.0.0.1;"),
    ("defaults", "proxy_pass http://127.0.0.1:9001;"),
    ("uri", f"{UP} proxy_pass http://127.0.0.1:9001/other/;"),
    ("uri-root", f"{UP} proxy_pass http://127.0.0.1:9001/;"),
    ("pool", f"{UP} proxy_pass http://pool;"),
    ("hashed", f"{UP} proxy_pass http://hashed;"),
    ("v6", f"{UP} proxy_pass http://[::1]:9001;"),
    ("host", f"{UP} proxy_set_header Host $host; proxy_pass http://127.0.0.1:9001;"),
    ("hostbrace", f"{UP} proxy_set_header Host ${{host}}; proxy_set_header X-U ${{http_upgrade}}; proxy_pass http://127.0.0.1:9001;"),
    ("http-host", f"{UP} proxy_set_header Host $http_host; proxy_set_header X-Key $http_sec_websocket_key; proxy_pass http://127.0.0.1:9001;"),
    ("full", f"{UP} proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr; "
             "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; "
             "proxy_pass http://127.0.0.1:9001;"),
    ("composite", f"{UP} proxy_set_header Host $host:$server_port; proxy_pass http://127.0.0.1:9001;"),
    ("empty", f"{UP} proxy_set_header Host \"\"; proxy_set_header X-Empty \"\"; proxy_set_header Accept-Encoding \"\"; proxy_pass http://127.0.0.1:9001;"),
    ("lengths", f"{UP} proxy_set_header Content-Length $proxy_internal_body_length; proxy_set_header X-Ch $proxy_internal_chunked; "
                "proxy_set_header X-PH $proxy_host; proxy_pass http://127.0.0.1:9001;"),
    ("no-pass", f"{UP} proxy_pass_request_headers off; proxy_pass http://127.0.0.1:9001;"),
    ("method", f"{UP} proxy_method POST; proxy_pass http://127.0.0.1:9001;"),
    ("setbody", f"{UP} proxy_set_body \"hello $uri\"; proxy_pass http://127.0.0.1:9001;"),
    ("http10", "proxy_set_header Upgrade $http_upgrade; proxy_pass http://127.0.0.1:9001;"),
    ("const", "proxy_http_version 1.1; proxy_set_header Upgrade websocket; proxy_set_header Connection Upgrade; "
              "proxy_set_header X-Const \"a b\"; proxy_pass http://127.0.0.1:9001;"),
    ("mapped", f"{UP} proxy_set_header X-M $mapped; proxy_pass http://127.0.0.1:9001;"),
    ("capture", f"{UP} proxy_set_header X-One $1; proxy_pass http://127.0.0.1:9001;"),
    ("dollar", f"{UP} proxy_set_header X-D \"5$\"; proxy_pass http://127.0.0.1:9001;"),
    ("reqid", f"{UP} proxy_set_header X-Id $request_id; proxy_pass http://127.0.0.1:9001;"),
    ("lower", "proxy_http_version 1.1; proxy_set_header upgrade $http_upgrade; proxy_set_header connection upgrade; "
              "proxy_set_header host $http_x_missing; proxy_pass http://127.0.0.1:9001;"),
]


def conf_text() -> str:
    locs = "\n".join(f"        location /{name}/ {{ {body} }}" for name, body in LOCATIONS)
    return f"""
events {{}}
http {{
    upstream pool {{ server 127.0.0.1:9001; server 127.0.0.1:9002 backup; }}
    upstream hashed {{ hash $http_x_key; server 127.0.0.1:9001; server 127.0.0.1:9002; }}
    map $http_x_m $mapped {{ default none; ~^(?<got>.+)$ $got; }}
    server {{
        listen 127.0.0.1:8080;
        server_name plan.test www.plan.test;
{locs}
        location ~ ^/re/(?<tail>.*)$ {{ {UP} proxy_set_header X-T $http_x_t; proxy_pass http://127.0.0.1:9001; }}
        location ~* ^/RI/(.*)$ {{ {UP} proxy_pass http://127.0.0.1:9001; }}
    }}
    server {{
        listen 127.0.0.1:8080;
        location /nameless/ {{ {UP} proxy_set_header Host $host; proxy_pass http://127.0.0.1:9001; }}
    }}
}}
"""


KEY = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
REQUESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("GET", "{p}a", [("Host", "plan.test"), ("Upgrade", "websocket"), ("Connection", "Upgrade"), KEY,
                     ("Sec-WebSocket-Version", "13")]),
    ("GET", "{p}a/b?c=1&d=%41", [("host", "WWW.Plan.Test.:8080"), ("upgrade", "WebSocket"), ("connection", "keep-alive, Upgrade"),
                                ("sec-websocket-key", KEY[1]), ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2"),
                                ("Cookie", "a=b"), ("TE", "trailers"), ("Keep-Alive", "300"), ("Expect", "x")]),
    ("GET", "{p}", [("Host", "other.test"), ("Upgrade", ""), ("Connection", "Upgrade"), ("X-T", "tee"),
                    ("X-M", "mapped-value"), ("X-Key", "k1")]),
    ("GET", "{p}x", [("Upgrade", "websocket"), ("Connection", "Upgrade")]),  # no Host (HTTP/1.0-like)
    ("GET", "{p}cl", [("Host", "plan.test"), ("Upgrade", "websocket"), ("Content-Length", "0")]),
    ("GET", "{p}te", [("Host", "plan.test"), ("Upgrade", "websocket"), ("Transfer-Encoding", "")]),
    ("GET", "{p}te2", [("Host", "plan.test"), ("Upgrade", "websocket"), ("Transfer-Encoding", "chunked"),
                       ("Content-Length", "3")]),
    ("GET", "http://abs.plan.test:81{p}y?z", [("Host", "ignored"), ("Upgrade", "websocket"), ("X-Latin", "caf\u00e9")]),
    ("GET", "{p}caf%C3%A9/%2e%2e/x", [("Host", "[::1]:8080"), ("UPGRADE", "websocket"), ("Upgrade", "second"),
                                      ("X-Missing", "here"), ("X-Odd_Name", "u")]),
    ("HEAD", "{p}h", [("Host", "plan.test"), ("Upgrade", "websocket"), ("X-Key", "")]),
]

PATHS = [f"/{name}/" for name, _ in LOCATIONS] + ["/re/", "/ri/"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict[str, CompiledMap], UpstreamPools]:
    conf = Path(tmp_path_factory.mktemp("plan")) / "nginx.conf"
    conf.write_text(conf_text())
    config = load_config(str(conf))
    return config, compile_maps(config.maps), UpstreamPools(config)


def reference(head: RequestHead, server: Server, loc: Location, captures: tuple[str, ...],
              maps: dict[str, CompiledMap]) -> bytes:
    """The general path: FastUpgrade.variables() and build_upstream_head."""
    pp = loc.proxy_pass
    assert pp is not None
    v = RequestVariables(
        head=head, remote_addr="127.0.0.1", remote_port=40000, server_addr="127.0.0.1", server_port=8080,
        server_name=server.server_names[0] if server.server_names else "", captures=captures, maps=maps,
        random_hex=lambda: "f" * 32,
    )
    v.proxy_host = proxy_host_of(pp)
    v.proxy_port = str(pp.port)
    v.body_length, v.chunked = upstream_framing(head, None)
    return build_upstream_head(proxy_uri(pp, loc.pattern, loc.modifier, v), loc.proxy, v)


@pytest.mark.parametrize("path,request_", list(itertools.product(PATHS, REQUESTS)))
def test_plan_head_is_the_general_head(world, path: str, request_) -> None:  # type: ignore[no-untyped-def]
    config, maps, pools = world
    (_, vhosts), = virtual_hosts(config).values()
    method, target, headers = request_
    head = RequestHead(method=method, target=target.format(p=path), version="1.1", headers=list(headers), keep_alive=True)
    server = vhosts.select(head.uri_host or head.host)
    match = match_location(server.locations, head.path)
    if match is None:  # a Host of the nameless server
        server = vhosts.default
        match = match_location(server.locations, head.path)
    assert match is not None
    loc = match.location
    plan = plan_of(loc, pools, maps)
    made = plan.head(head, server)
    if made is not None:
        assert made == reference(head, server, loc, match.captures, maps)
    # twice: the spellings of header names the plan noted give the same
    again = plan.head(head, server)
    assert again == made


def test_what_the_plan_makes_and_leaves(world) -> None:  # type: ignore[no-untyped-def]
    """The usual upgrade locations are made by the plan; what it does not
    read itself goes the general way (``head`` None)."""
    config, maps, pools = world
    server = config.servers[0]
    made, general = [], []
    for name, _ in LOCATIONS:
        match = match_location(server.locations, f"/{name}/x")
        assert match is not None
        head = RequestHead(method="GET", target=f"/{name}/x", version="1.1", headers=[("Host", "h")], keep_alive=True)
        (made if plan_of(match.location, pools, maps).head(head, server) is not None else general).append(name)
    assert general == ["hashed", "full", "composite", "method", "setbody", "mapped", "capture", "dollar", "reqid"]
    assert "bench" in made and "host" in made and "lengths" in made and "no-pass" in made


def test_plan_is_kept_per_location_and_worker(world) -> None:  # type: ignore[no-untyped-def]
    config, maps, pools = world
    loc = config.servers[0].locations[0] if config.servers[0].locations else None
    match = match_location(config.servers[0].locations, "/bench/x")
    assert match is not None
    loc = match.location
    assert plan_of(loc, pools, maps) is plan_of(loc, pools, maps)
    other = UpstreamPools(config)
    assert plan_of(loc, other, maps).pools is other
    assert plan_of(loc, pools, maps).selector is pools.selector(loc.proxy_pass)  # type: ignore[arg-type]


@pytest.mark.parametrize("balance,key,consistent", [
    ("round_robin", None, False), ("least_conn", None, False), ("ip_hash", None, False),
    ("hash", "$x", False), ("hash", "$x", True), ("hash", "", False),
])
@pytest.mark.parametrize("down", [False, True])
def test_a_single_peer_is_the_walk_of_one(balance: str, key: str | None, consistent: bool, down: bool) -> None:
    """PeerSelector.candidates of one server and no backup (nginx's "single"
    peer, any balancing) is what the general walk yields for it."""
    from ngxws.config.model import UpstreamPeer
    from ngxws.routing.peers import PeerSelector, PeerTarget

    def selector() -> PeerSelector:
        peer = PeerTarget("127.0.0.1", 9001, UpstreamPeer("127.0.0.1", 9001, down=down, max_fails=1))
        return PeerSelector([peer], balance, key, clock=lambda: 5.0, consistent=consistent)

    fast, general = selector(), selector()
    general._single = None  # the walk as it is for several peers
    for client in ("10.0.0.1", "k", ""):
        assert [p.label for p in fast.candidates(client)] == [p.label for p in general.candidates(client)]
        for sel in (fast, general):  # a failure changes nothing of a single peer's walk
            for p in list(sel.candidates(client)):
                sel.failed(p)
    assert fast.total == general.total == 1


def test_proxy_set_body_follows_the_head(world) -> None:  # type: ignore[no-untyped-def]
    """proxy_set_body: its rendered text after the head, its length the
    Content-Length even for a client's chunked body (never chunked)."""
    config, maps, pools = world
    server = config.servers[0]
    match = match_location(server.locations, "/setbody/x")
    assert match is not None
    head = RequestHead(method="POST", target="/setbody/x", version="1.1",
                       headers=[("Host", "h"), ("Transfer-Encoding", "chunked")], keep_alive=True)  # fmt: skip
    made = reference(head, server, match.location, match.captures, maps)
    top, _, body = made.partition(b"\r\n\r\n")
    assert body == b"hello /setbody/x"
    assert b"\r\nContent-Length: 16" in top and b"chunked" not in top.lower()
    assert not sends_client_body(match.location.proxy)
    assert sends_client_body(match_location(server.locations, "/bench/x").location.proxy)  # type: ignore[union-attr]
