"""The rewrite phases as a pure engine (ngxws.http.rewrite.route): real
confs through the loader, a request head and the connection's facts in,
where the request goes out -- table-driven, with no socket, no clock and
files only through an injected ``stat``."""

from __future__ import annotations

import os
import stat as stat_module
from pathlib import Path

import pytest

from ngxws.config.loader import load_config
from ngxws.config.model import Server
from ngxws.http.request import RequestHead
from ngxws.http.rewrite import MAX_URI_CHANGES, Routed, route
from ngxws.http.upstream_request import RequestVariables

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
    ("/nothing", [], 404, None, None, "/nothing", None, None),
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
