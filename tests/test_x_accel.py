"""X-Accel-Redirect's pure parts: ngx_http_parse_unsafe_uri's split and
verdict, and ``proxy_ignore_headers`` read from real conf files.  The
redirects themselves are compared with nginx in
tests/differential/cases_x_accel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ngxws.config.loader import ConfigError, load_config
from ngxws.config.model import Location
from ngxws.http.x_accel import split_unsafe


@pytest.mark.parametrize(("value", "expect"), [
    ("/protected/a.html", ("/protected/a.html", None)),
    ("/echo?a=1&b=2", ("/echo", "a=1&b=2")),
    ("/echo?", ("/echo", "")),
    ("/a/..b/c", ("/a/..b/c", None)),
    ("/a/...", ("/a/...", None)),
    ("/a?x=/../", ("/a", "x=/../")),  # only the path is checked
    ("/p/%61.html", ("/p/%61.html", None)),  # unescaped later, with the URI
    ("", None),
    ("?a=1", None),
    ("..", None),
    ("../x", None),
    ("/a/../b", None),
    ("/a/..", None),
    ("/a/%2E%2E/b", None),  # unsafe once unescaped
    ("/a/%2e./b", None),
    ("/a\0b", None),
])  # fmt: skip
def test_split_unsafe(value: str, expect: tuple[str, str | None] | None) -> None:
    assert split_unsafe(value) == expect


def _load(tmp_path: Path, http: str) -> tuple[dict[str, Location], list[str]]:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{\n{http}\n}}\n")
    config = load_config(str(conf))
    locs = {loc.pattern: loc for server in config.servers for loc in server.locations}
    return locs, [f"{i.name}: {i.reason}" for i in config.ignored]


def test_proxy_ignore_headers_inheritance(tmp_path: Path) -> None:
    locs, ignored = _load(tmp_path, """
        proxy_ignore_headers X-Accel-Redirect;
        server {
            listen 8080;
            location /a { }
            location /b { proxy_ignore_headers Expires; proxy_ignore_headers x-accel-redirect; }
            location /c { proxy_ignore_headers Set-Cookie Vary; }
        }
    """)
    assert locs["/a"].proxy.ignore_x_accel_redirect  # inherited
    assert locs["/b"].proxy.ignore_x_accel_redirect  # a block's lines add up
    assert not locs["/c"].proxy.ignore_x_accel_redirect  # replaced
    # X-Accel-Redirect alone is honoured; the cache's headers are reported,
    # harmless here since no proxy_cache is on (nginx acts on them for it only)
    assert ignored == ["proxy_ignore_headers: no proxy_cache is on in this config: nginx caches nothing either"] * 2


def test_proxy_ignore_headers_report(tmp_path: Path) -> None:
    """Per value, as nginx 1.22 acts on them: the X-Accel- headers ngxws never
    acts on are harmless to ignore; the cache's change behaviour only where a
    proxy_cache is on."""
    conf = tmp_path / "nginx.conf"

    def report(http: str) -> list[tuple[str, bool]]:
        conf.write_text(f"events {{}}\nhttp {{\n{http}\n}}\n")
        return [(i.reason, i.harmless) for i in load_config(str(conf)).ignored if i.name == "proxy_ignore_headers"]

    assert report("proxy_ignore_headers X-Accel-Buffering x-accel-limit-rate X-Accel-Charset;") == [
        ("ngxws does not act on X-Accel-Limit-Rate, X-Accel-Buffering or X-Accel-Charset either", True)
    ]
    cache_headers = "proxy_ignore_headers X-Accel-Expires Expires Cache-Control Set-Cookie Vary;"
    (when_off,) = report(cache_headers)
    assert when_off == ("no proxy_cache is on in this config: nginx caches nothing either", True)
    zone = "proxy_cache_path /tmp/c keys_zone=z:1m;\nserver { listen 8080; location / { proxy_cache z; } }\n"
    (when_on,) = report(cache_headers + "\n" + zone)
    assert not when_on[1] and "for its proxy cache only" in when_on[0]
    assert [h for _, h in report("proxy_ignore_headers X-Accel-Buffering Vary;\n" + zone)] == [True, False]
    assert report("proxy_ignore_headers X-Accel-Redirect;") == []


def test_proxy_ignore_headers_invalid_value(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n    proxy_ignore_headers X-Accel-Redirect Location;\n}\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(conf))
    assert f'invalid value "Location" in {conf}:3' in str(err.value)
