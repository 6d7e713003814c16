"""Issue 13 item 1: match_location and plan_body remember their answers per
config object; a remembered answer is the one computed afresh, for every
config and URI, and a different config (same URI) gets its own."""

from __future__ import annotations

from pathlib import Path

from ngxws.config.loader import load_config
from ngxws.http.body_plan import plan_body, plan_body_uncached
from ngxws.routing import locations as L

CONF = """
events {{}}
http {{
    server {{
        listen 127.0.0.1:8080;
        location / {{ proxy_pass http://127.0.0.1:9; }}
        location /{a}/ {{ return 200; }}
        location ~ ^/re/(\\w+)$ {{ proxy_pass http://127.0.0.1:9; }}
        location = /exact {{ deny all; }}
        location /dir/ {{ proxy_pass http://127.0.0.1:9; }}
    }}
}}
"""

URIS = ["/", "/a/x", "/b/x", "/re/abc", "/re/", "/exact", "/dir", "/dir/x", "/" + "x" * 300, "/@n"]


def servers(tmp_path: Path):  # type: ignore[no-untyped-def]
    out = []
    for a in ("a", "b"):
        conf = tmp_path / f"{a}.conf"
        conf.write_text(CONF.format(a=a))
        out.append(load_config(str(conf)).servers[0])
    return out


def test_remembered_answers_are_fresh_ones(tmp_path: Path) -> None:
    for server in servers(tmp_path):
        for uri in URIS:
            fresh, _ = L._find(server.locations, uri)
            for _ in range(3):  # first computed, then remembered
                got = L.match_location(server.locations, uri)
                assert got == fresh, uri
                assert plan_body(server, got) == plan_body_uncached(server, got), uri


def test_another_config_gets_its_own_answer(tmp_path: Path) -> None:
    first, second = servers(tmp_path)
    one = L.match_location(first.locations, "/a/x")
    two = L.match_location(second.locations, "/a/x")
    assert one is not None and two is not None
    assert one.location.pattern == "/a/" and two.location.pattern == "/"
