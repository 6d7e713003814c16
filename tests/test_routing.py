"""Location matching, server selection and peer choice: nginx's documented tables."""

from __future__ import annotations

import pytest

from ngxws.config.model import Listen, Location, ProxyPass, Server, Upstream, UpstreamPeer
from ngxws.http.request import BadRequest, normalise_uri
from ngxws.routing.locations import match_location
from ngxws.routing.peers import PeerSelector, PeerTarget, chash_ring
from ngxws.routing.servers import VirtualHosts, normalise_host

PP = ProxyPass(url="http://b", scheme="http", host="b", port=80, uri=None)

# The example from nginx's documentation of `location`, plus nesting and ^~.
LOCS = (
    Location("=", "/", proxy_pass=PP),  # A
    Location("", "/", proxy_pass=PP),  # B
    Location("", "/documents/", proxy_pass=PP),  # C
    Location("^~", "/images/", proxy_pass=PP),  # D
    Location("~*", r"\.(gif|jpg|jpeg)$", proxy_pass=PP),  # E
    Location(
        "",
        "/api/",
        proxy_pass=PP,
        locations=(Location("~", r"^/api/v(\d+)/", proxy_pass=PP),),
    ),  # F with nested regex
    Location("", "/ws/", proxy_pass=PP),  # G (auto-redirect for /ws)
    Location("@", "fallback", proxy_pass=PP),  # never matched by URI
)


@pytest.mark.parametrize(
    "uri,expected,captures,redirect",
    [
        ("/", ("=", "/"), (), False),
        ("/index.html", ("", "/"), (), False),
        ("/documents/document.html", ("", "/documents/"), (), False),
        ("/images/1.gif", ("^~", "/images/"), (), False),
        ("/documents/1.jpg", ("~*", r"\.(gif|jpg|jpeg)$"), ("jpg",), False),
        ("/documents/1.JPG", ("~*", r"\.(gif|jpg|jpeg)$"), ("JPG",), False),
        ("/api/v2/users", ("~", r"^/api/v(\d+)/"), ("2",), False),
        ("/api/other", ("", "/api/"), (), False),
        ("/ws", ("", "/ws/"), (), True),
        ("/ws/chat", ("", "/ws/"), (), False),
        ("/fallback", ("", "/"), (), False),
    ],
)
def test_location_matching(uri: str, expected: tuple[str, str], captures: tuple[str, ...], redirect: bool) -> None:
    m = match_location(LOCS, uri)
    assert m is not None
    assert (m.location.modifier, m.location.pattern) == expected
    assert m.captures == captures
    assert m.redirect is redirect


def test_no_match_is_none() -> None:
    assert match_location((Location("", "/only/"),), "/other") is None


@pytest.mark.parametrize(
    "raw,norm",
    [
        ("/a//b", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/a/b/../c", "/a/c"),
        ("/%41%2fx", "/A/x"),
        ("/a/b/..", "/a/"),
        ("/", "/"),
    ],
)
def test_uri_normalisation(raw: str, norm: str) -> None:
    assert normalise_uri(raw) == norm


def test_uri_above_root_is_400() -> None:
    with pytest.raises(BadRequest):
        normalise_uri("/../etc/passwd")


def _server(*names: str, default: bool = False) -> Server:
    return Server(listens=(Listen("0.0.0.0", 80, default_server=default),), server_names=names, locations=())


def test_server_name_order() -> None:
    first = _server("first.test")
    exact = _server("www.example.com")
    lead = _server("*.example.com")
    longer_lead = _server("*.api.example.com")
    trail = _server("mail.*")
    rx = _server(r"~^(?<user>\w+)\.users\.test$")
    dot = _server(".dot.test")
    vh = VirtualHosts(default=first)
    for s in (first, exact, lead, longer_lead, trail, rx, dot):
        vh.add(s)
    assert vh.select("www.example.com") is exact
    assert vh.select("WWW.Example.COM:8080") is exact
    assert vh.select("a.example.com") is lead
    assert vh.select("x.api.example.com") is longer_lead
    assert vh.select("mail.corp.test") is trail
    assert vh.select("bob.users.test") is rx
    assert vh.select("dot.test") is dot and vh.select("a.dot.test") is dot
    assert vh.select("unknown.test") is first
    assert vh.select(None) is first


def test_normalise_host() -> None:
    assert normalise_host("Example.com.:80") == "example.com"
    assert normalise_host("[::1]:8080") == "[::1]"


def test_smooth_weighted_round_robin_matches_nginx() -> None:
    # nginx's documented sequence for weights 5,1,1: a a b a c a a
    peers = [PeerTarget("a", 1, UpstreamPeer("a", 1, weight=5)), PeerTarget("b", 1), PeerTarget("c", 1)]
    sel = PeerSelector(peers)
    picks = [next(iter(sel.candidates("1.2.3.4"))).host for _ in range(7)]
    assert picks == ["a", "a", "b", "a", "c", "a", "a"]


def test_failed_peer_is_skipped_for_fail_timeout_and_backup_used() -> None:
    now = [100.0]
    a = PeerTarget("a", 1, UpstreamPeer("a", 1, max_fails=1, fail_timeout=10))
    b = PeerTarget("b", 1, UpstreamPeer("b", 1, backup=True))
    sel = PeerSelector([a, b], clock=lambda: now[0])
    assert [p.host for p in sel.candidates("x")] == ["a", "b"]
    sel.failed(a)
    assert [p.host for p in sel.candidates("x")] == ["b"]
    now[0] += 11
    assert [p.host for p in sel.candidates("x")][0] == "a"


def test_ip_hash_is_stable_and_down_is_skipped() -> None:
    up = Upstream(
        "pool",
        (UpstreamPeer("127.0.0.1", 1), UpstreamPeer("127.0.0.2", 1), UpstreamPeer("127.0.0.3", 1, down=True)),
        balance="ip_hash",
    )
    sel = PeerSelector.for_target(up, "pool", 80)
    first = [next(iter(sel.candidates("10.1.2.3"))).host for _ in range(5)]
    assert len(set(first)) == 1 and first[0] != "127.0.0.3"


# -- issue 4: hashing like nginx, maps, variables, request-head details -----------------


def test_ip_hash_follows_nginx_arithmetic() -> None:
    # 127.0.0.x: hash = 89; for 127, 0, 0: (h * 113 + b) % 6271 -> 4040; 4040 % 3 == 2
    peers = [PeerTarget("a", 1), PeerTarget("b", 1), PeerTarget("c", 1)]
    sel = PeerSelector(peers, balance="ip_hash")
    assert [next(iter(sel.candidates("127.0.0.1"))).host for _ in range(3)] == ["c"] * 3
    assert next(iter(sel.candidates("127.0.0.200"))).host == "c"  # the 4th octet is not hashed


def test_hash_is_crc32_like_nginx() -> None:
    import zlib

    peers = [PeerTarget("a", 1), PeerTarget("b", 1), PeerTarget("c", 1)]
    sel = PeerSelector(peers, balance="hash", hash_key="$request_uri")
    for key in ("/hashuri/0", "/x", "10.0.0.1"):
        want = ((zlib.crc32(key.encode()) >> 16) & 0x7FFF) % 3
        assert next(iter(sel.candidates(key))).host == "abc"[want]


def _line(server: str, weight: int = 1, down: bool = False) -> PeerTarget:
    return PeerTarget(server, 1, UpstreamPeer(server, 1, weight=weight, down=down, server=server))


@pytest.mark.parametrize(
    ("server", "hashed"),
    [  # ngx_http_upstream_init_chash(): host NUL port, port = digits after the last ":"
        ("10.0.0.1:8080", b"10.0.0.1\08080"),
        ("10.0.0.1", b"10.0.0.1\0"),
        ("backend", b"backend\0"),
        ("backend:", b"backend\0"),
        ("[::1]:9000", b"[::1]\09000"),
        ("[::1]", b"[::1]\0"),
        ("unix:/run/app.sock", b"/run/app.sock\0"),
        ("UNIX:/run/app.sock", b"/run/app.sock\0"),
    ],
)
def test_chash_points_hash_host_nul_port(server: str, hashed: bytes) -> None:
    import zlib

    ring = chash_ring([_line(server)])
    first = zlib.crc32(hashed + b"\0\0\0\0")
    second = zlib.crc32(hashed + first.to_bytes(4, "little"))
    assert len(ring.hashes) == 160 and ring.hashes == sorted(ring.hashes)
    assert first in ring.hashes and second in ring.hashes


def test_chash_ring_weights_and_wraps() -> None:
    ring = chash_ring([_line("a:1"), _line("b:1", weight=2)])
    assert len(ring.hashes) == 480 and ring.servers.count("b:1") == 320
    assert ring.first_at(0) == 0 and ring.first_at(2**32 - 1) in (479, 480)  # past the last: wraps


def test_chash_moves_only_the_removed_lines_keys() -> None:
    keys = [f"user-{i}" for i in range(300)]

    def owners(lines: list[str]) -> dict[str, str]:
        sel = PeerSelector([_line(s) for s in lines], balance="hash", hash_key="$k", consistent=True)
        return {k: next(iter(sel.candidates(k))).host for k in keys}

    before, after = owners(["a:1", "b:1", "c:1", "d:1"]), owners(["a:1", "b:1", "c:1"])
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == "d:1" for k in moved)  # a plain hash would move most keys


def test_chash_skips_down_and_tried_then_round_robin() -> None:
    sel = PeerSelector([_line("a:1", down=True), _line("b:1"), _line("c:1")], "hash", "$k", consistent=True)
    for key in ("1", "2", "3", "x"):
        order = [p.host for p in sel.candidates(key)]
        assert sorted(order) == ["b:1", "c:1"]  # each usable address once, the down one never
    assert [p.host for p in sel.candidates("")] in (["b:1", "c:1"], ["c:1", "b:1"])  # no key: round robin


def test_single_peer_ignores_max_fails_like_nginx() -> None:
    a = PeerTarget("a", 1)
    sel = PeerSelector([a])
    sel.failed(a)
    assert [p.host for p in sel.candidates("x")] == ["a"]


def test_maps_render() -> None:
    from ngxws.config.model import Map
    from ngxws.http.maps import compile_maps
    from ngxws.http.request import RequestHead
    from ngxws.http.upstream_request import RequestVariables

    maps = compile_maps(
        (
            Map("$http_upgrade", "connection_upgrade", (("", "close"),), default="upgrade"),
            Map("$uri", "section", (("~^/(?<area>api|ws)/", "area-$area-$1"), ("/exact", "exact")), default="none"),
        )
    )

    def render(template: str, headers: list[tuple[str, str]], target: str = "/") -> str:
        head = RequestHead("GET", target, "1.1", headers, True)
        return RequestVariables(head, "1.2.3.4", 1, "5.6.7.8", 80, "", maps=maps).render(template)

    assert render("$connection_upgrade", []) == "close"
    assert render("$connection_upgrade", [("Upgrade", "websocket")]) == "upgrade"
    assert render("$section", [], "/exact") == "exact"
    assert render("$section", [], "/api/x") == "area-api-api"  # named and numbered captures
    assert render("$section", [], "/other") == "none"


def test_absolute_form_request_target() -> None:
    from ngxws.http.request import RequestHead

    head = RequestHead("GET", "http://Example.com:8080/a/../b?x=1", "1.1", [("Host", "other")], True)
    assert (head.uri_host, head.request_uri, head.path, head.args) == ("Example.com:8080", "/a/../b?x=1", "/b", "x=1")


def test_proxy_uri_with_variables() -> None:
    from ngxws.http.request import RequestHead
    from ngxws.http.upstream_request import RequestVariables, proxy_uri, split_proxy_url

    head = RequestHead("GET", "/v/a%20b?q=1", "1.1", [], True)
    v = RequestVariables(head, "1.2.3.4", 1, "5.6.7.8", 80, "")
    with_uri = ProxyPass("http://b:1/fixed$is_args$args", "http", "b", 1, "/fixed$is_args$args", has_variables=True)
    without = ProxyPass("http://b:1$request_uri", "http", "b", 1, None, has_variables=True)
    assert proxy_uri(with_uri, "/v/", "", v) == "/fixed?q=1"
    assert proxy_uri(without, "/v/", "", v) == "/v/a%20b?q=1"
    assert split_proxy_url("http://[::1]:81/x") == ("http", "::1", 81, "/x")
    assert split_proxy_url("https://name") == ("https", "name", 443, None)
    assert split_proxy_url("ftp://x") is None


def test_if_conditions_and_content_types() -> None:
    from ngxws.config.model import DEFAULT_TYPES
    from ngxws.http.request import RequestHead
    from ngxws.http.rewrite import content_type_for, if_condition
    from ngxws.http.upstream_request import RequestVariables

    head = RequestHead("GET", "/Cap/7", "1.1", [("Upgrade", "websocket"), ("X-Zero", "0")], True)
    v = RequestVariables(head, "1.2.3.4", 1, "5.6.7.8", 80, "")
    assert if_condition(("$http_upgrade",), v)
    assert not if_condition(("$http_x_zero",), v)
    assert if_condition(("!$http_missing",), v)
    assert if_condition(("$http_upgrade", "=", "websocket"), v)
    assert if_condition(("$http_upgrade", "!=", "WebSocket"), v)
    assert if_condition(("$uri", "~*", "^/cap/(\\d+)"), v) and v.captures == ("7",)
    assert not if_condition(("$uri", "~", "^/cap/"), v)
    assert content_type_for("/a/b.JPG", DEFAULT_TYPES, "text/plain") == "image/jpeg"
    assert content_type_for("/a.b/c", DEFAULT_TYPES, "text/plain") == "text/plain"


def test_head_buffers_like_nginx() -> None:
    from ngxws.http.request import HeadBuffers

    def verdict(head: bytes, num: int = 2, size: int = 1024) -> int:
        return HeadBuffers(num, size).feed(head)

    lines = b"".join(b"X-H%d: " % i + b"h" * 900 + b"\r\n" for i in range(3))
    assert verdict(b"GET / HTTP/1.1\r\nHost: example.com\r\n" + lines + b"\r\n") == 0
    assert verdict(b"GET / HTTP/1.1\r\nHost: example.com\r\n" + lines + lines[:908] + b"\r\n") == 400
    assert verdict(b"GET /" + b"u" * 1100 + b" HTTP/1.1\r\n\r\n") == 414
    assert verdict(b"GET / HTTP/1.1\r\nX: " + b"h" * 1100 + b"\r\n\r\n") == 400
    fed = HeadBuffers(4, 8192)
    assert fed.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + b"x" * 100000) == 0 and fed.done
