"""Location matching, server selection and peer choice: nginx's documented tables."""

from __future__ import annotations

import pytest

from ngxws.config.model import Listen, Location, ProxyPass, Server, Upstream, UpstreamPeer
from ngxws.http.request import BadRequest, normalise_uri
from ngxws.routing.locations import match_location
from ngxws.routing.peers import PeerSelector, PeerTarget
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
    peers = [PeerTarget("a", 1, weight=5), PeerTarget("b", 1), PeerTarget("c", 1)]
    sel = PeerSelector(peers)
    picks = [next(iter(sel.candidates("1.2.3.4"))).host for _ in range(7)]
    assert picks == ["a", "a", "b", "a", "c", "a", "a"]


def test_failed_peer_is_skipped_for_fail_timeout_and_backup_used() -> None:
    now = [100.0]
    a = PeerTarget("a", 1, max_fails=1, fail_timeout=10)
    b = PeerTarget("b", 1, backup=True)
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
