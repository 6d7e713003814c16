"""The config layer against real conf files under ``tests/configs/<case>/``.

- ``bad_*/``: each holds a config nginx (with the module) refuses and, in
  ``expected_error``, the exact message with file:line (``{dir}`` stands for
  the case folder).  Adding a case is adding a folder.
- the other folders are valid configs, checked here model field by model
  field, and their ``check.txt`` (where present) is the golden
  ``ngxws check`` report.
- where Debian's ``nginx`` is installed, both sets are also run through
  ``nginx -t``: stock errors must read exactly like nginx's, and every valid
  fixture minus its ws_* lines must pass nginx.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngxws.config import loader
from ngxws.config.directives import (
    STOCK_DIRECTIVES,
    WS_DIRECTIVES,
    Handling,
)
from ngxws.config.loader import ConfigError, load_config
from ngxws.config.model import Config, Fork, Location, Return, Server, Source
from ngxws.config.report import render_check_report
from ngxws.config.rewrite import IfStep, ReturnStep

CONFIGS = Path(__file__).parent / "configs"
BAD_CASES = sorted(p.name for p in CONFIGS.glob("bad_*") if p.is_dir())
GOOD_CASES = sorted(
    p.name for p in CONFIGS.iterdir() if p.is_dir() and not p.name.startswith("bad_")
)
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def case_dir(case: str) -> str:
    return str(CONFIGS / case)


def load(case: str, prefix: str | None = None) -> Config:
    return load_config(os.path.join(case_dir(case), "nginx.conf"), prefix)


def at(case: str, rel: str, line: int) -> Source:
    return Source(os.path.join(case_dir(case), rel), line)


def location(server: Server, *patterns: str) -> Location:
    """The location reached by following ``patterns`` down the nesting."""
    level = server.locations
    found: Location | None = None
    for pattern in patterns:
        found = next(loc for loc in level if loc.pattern == pattern)
        level = found.locations
    assert found is not None
    return found


def conf_files(folder: str) -> list[str]:
    return [
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if not name.endswith((".pem", ".txt")) and name != "expected_error"
    ]


def uses_ws(folder: str) -> bool:
    return any(re.search(r"(?m)^\s*ws_", Path(p).read_text()) for p in conf_files(folder))


def nginx_test(conf: str, prefix: str) -> str:
    """``nginx -t``'s first [emerg] message (or "OK"), without its log prefix."""
    assert NGINX is not None
    run = subprocess.run(
        [NGINX, "-t", "-q", "-p", prefix + "/", "-c", conf],
        capture_output=True,
        text=True,
        timeout=30,
    )
    emerg = [line for line in run.stderr.splitlines() if "[emerg]" in line]
    if not emerg:
        assert run.returncode == 0, run.stderr
        return "OK"
    return re.sub(r"^.*\[emerg\] \d+#\d+: ", "", emerg[0])


# --------------------------------------------------------------------------
# configs nginx refuses
# --------------------------------------------------------------------------


def expected_error(case: str) -> str:
    text = (CONFIGS / case / "expected_error").read_text().strip()
    return text.replace("{dir}", case_dir(case))


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_config_error(case: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(case)
    assert str(err.value) == expected_error(case)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", [c for c in BAD_CASES if not uses_ws(case_dir(c))])
def test_bad_config_error_reads_like_nginx(case: str) -> None:
    folder = case_dir(case)
    assert nginx_test(os.path.join(folder, "nginx.conf"), folder) == expected_error(case)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", GOOD_CASES)
def test_good_config_without_ws_lines_passes_nginx(case: str, tmp_path: Path) -> None:
    """Keeps the fixtures honest: what they hold besides the module's lines
    (and the third-party ones the migration case reports) is valid nginx."""
    shutil.copytree(case_dir(case), tmp_path, dirs_exist_ok=True)
    (tmp_path / "logs").mkdir(exist_ok=True)
    for path in conf_files(str(tmp_path)):
        text = Path(path).read_text()
        text = re.sub(r"(?m)^(\s*)(ws_\w+|load_module|more_set_headers)\b", r"\1# \2", text)
        Path(path).write_text(text)
    assert nginx_test(str(tmp_path / "nginx.conf"), str(tmp_path)) == "OK"


def test_missing_conf_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.conf"
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f'open() "{path}" failed (2: No such file or directory)'


def test_include_loop(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include nginx.conf;\n}\n")
    with pytest.raises(ConfigError, match="include loop"):
        load_config(str(tmp_path / "nginx.conf"))


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            ConfigError('no "events" section in configuration'),
            'no "events" section in configuration',
        ),
        (ConfigError("x", "/a/nginx.conf"), "x in /a/nginx.conf"),
        (
            ConfigError('unknown directive "ws_lgo"', "/a/nginx.conf", 12),
            'unknown directive "ws_lgo" in /a/nginx.conf:12',
        ),
    ],
)
def test_config_error_str(error: ConfigError, text: str) -> None:
    assert str(error) == text


# --------------------------------------------------------------------------
# the directive table
# --------------------------------------------------------------------------


def test_ws_directive_table_matches_the_spec() -> None:
    """spec/module.md's directives table, row by row."""
    rows = {
        name: (set(rule.contexts), set(rule.nargs), rule.flag)
        for name, rule in WS_DIRECTIVES.items()
    }
    assert rows == {
        "ws_stat": ({"location"}, {0}, False),
        "ws_log": ({"server"}, {1}, False),
        "ws_log_format": ({"server"}, {1, 2, 3}, False),  # ngxws: a leading escape=
        "ws_max_connections": ({"server"}, {1}, False),
        "ws_conn_age": ({"server"}, {1}, False),
        "ws_log_enabled": ({"server"}, {1}, True),
    }


def test_every_honoured_directive_has_a_setter() -> None:
    """A HONOURED name the loader cannot store would silently vanish."""
    reader = loader._Reader("/x/nginx.conf", "/x")
    honoured = {
        name for name, rule in STOCK_DIRECTIVES.items() if rule.handling is Handling.HONOURED
    }
    assert honoured <= set(reader.handlers) | loader._LEVEL_DIRECTIVES


# --------------------------------------------------------------------------
# valid configs, model field by model field
# --------------------------------------------------------------------------


def test_module_readme() -> None:
    config = load("module_readme")
    folder = case_dir("module_readme")
    assert config.path == os.path.join(folder, "nginx.conf")
    assert config.prefix == folder
    assert config.pid_path == os.path.join(folder, "logs/nginx.pid")
    assert (config.error_log, config.error_log_level) == (
        os.path.join(folder, "logs/error.log"),
        "notice",
    )
    assert (config.worker_processes, config.worker_connections) == (1, 1024)
    (server,) = config.servers
    # the README writes "server\n{": nginx names the "{" line
    assert server.source == at("module_readme", "nginx.conf", 14)
    (listen,) = server.listens
    assert (listen.host, listen.port, listen.default_server) == ("127.0.0.1", 8080, False)
    assert server.server_names == ("",)
    ws = server.ws
    assert ws.fork is Fork.V1
    assert ws.log_path == os.path.join(folder, "logs/websocket.log")
    assert ws.templates.frame == (
        "$time_local: packet of type $ws_opcode received from $ws_packet_source, "
        "packet size is $ws_payload_size"
    )
    assert ws.templates.open == "$time_local: Connection opened"
    assert ws.templates.close == "$time_local: Connection closed"
    assert (ws.max_connections, ws.conn_age) == (200, 12 * 3600.0)
    stat = location(server, "/websocket_status")
    assert (stat.modifier, stat.ws_stat, stat.proxy_pass) == ("", True, None)
    assert stat.source == at("module_readme", "nginx.conf", 23)
    ws_loc = location(server, "/")
    assert ws_loc.proxy_pass is not None
    pp = ws_loc.proxy_pass
    assert (pp.scheme, pp.host, pp.port, pp.uri, pp.upstream) == (
        "http",
        "127.0.0.1",
        9000,
        None,
        None,
    )
    assert pp.source == at("module_readme", "nginx.conf", 27)
    assert ws_loc.proxy.http_version == "1.1"
    assert ws_loc.proxy.set_headers == (
        ("Upgrade", "$http_upgrade"),
        ("Connection", "upgrade"),
        ("Host", "$proxy_host"),  # nginx's default, not overridden here
    )
    assert config.ignored == ()


def test_prefix_moves_runtime_paths_only(tmp_path: Path) -> None:
    config = load("module_readme", prefix=str(tmp_path))
    assert config.prefix == str(tmp_path)
    assert config.pid_path == str(tmp_path / "logs/nginx.pid")
    assert config.servers[0].ws.log_path == str(tmp_path / "logs/websocket.log")
    assert config.path == os.path.join(case_dir("module_readme"), "nginx.conf")


def test_chainstack_fork() -> None:
    config = load("chainstack")
    e2e, to_error_log, switched_off = config.servers
    # the fork's own end-to-end config
    assert e2e.ws.fork is Fork.CHAINSTACK
    assert e2e.ws.log_enabled is True
    assert e2e.ws.log_path == "/var/log/nginx/ws.log"
    templates = e2e.ws.effective_templates()
    assert templates.frame is None  # no defaults in that fork
    assert (templates.open, templates.close) == ("OPEN", "CLOSE")
    assert templates.client == "CLIENT->SERVER: $ws_message_size ($http_upgrade)"
    assert templates.server == "SERVER->CLIENT: $ws_message_size ($http_upgrade)"
    pp = location(e2e, "/").proxy_pass
    assert pp is not None and (pp.host, pp.port, pp.uri) == ("127.0.0.1", 8080, "/")
    assert location(e2e, "/").proxy.buffering is False
    assert location(e2e, "/").proxy.ssl_server_name is True
    # "message" sets client and server; no ws_log: the error log gets them
    assert to_error_log.ws.fork is Fork.CHAINSTACK
    assert to_error_log.ws.log_path is None
    assert (
        to_error_log.ws.templates.client
        == to_error_log.ws.templates.server
        == "MSG $ws_message_size"
    )
    # "off" (any case): nothing logs, whatever else is set
    assert switched_off.ws.log_enabled is False
    assert switched_off.ws.templates.frame == "$ws_opcode"
    assert switched_off.ws.effective_templates().frame is None
    assert config.ignored == ()
    assert location(e2e, "/").proxy.request_buffering is False


def test_include_in_subfolder() -> None:
    config = load("include_subdir")
    assert config.worker_connections == 64
    (server,) = config.servers
    assert server.source == at("include_subdir", "conf.d/ws.conf", 2)
    assert server.server_names == ("ws.example.com",)
    assert server.ws.log_path == os.path.join(case_dir("include_subdir"), "ws.log")
    assert server.ws.max_connections == 10
    ws = location(server, "/ws/")
    # the snippet, included from inside the subfolder, resolved against the
    # main conf's folder as nginx does
    assert ws.proxy.http_version == "1.1"
    assert ws.proxy.read_timeout == 3600.0
    assert ("Upgrade", "$http_upgrade") in ws.proxy.set_headers
    assert ws.proxy_pass is not None
    assert ws.proxy_pass.source == at("include_subdir", "conf.d/ws.conf", 11)
    # upstream declared after its user, named in another case: still linked
    assert ws.proxy_pass.upstream == "Backend"
    upstream = config.upstream("Backend")
    assert upstream is not None
    assert [(p.host, p.port, p.weight, p.backup) for p in upstream.peers] == [
        ("127.0.0.1", 9001, 3, False),
        ("127.0.0.1", 9002, 1, True),
    ]
    stat = location(server, "/status")
    assert (stat.modifier, stat.ws_stat) == ("=", True)


def test_inheritance() -> None:
    config = load("inheritance")
    first, second = config.servers
    inherit = location(first, "/inherit")
    own = location(first, "/own")
    nested = location(first, "/own", "/own/nested")
    defaults = location(first, "/defaults")
    # proxy_set_header: a level that sets any replaces all inherited ones
    assert inherit.proxy.set_headers == (
        ("X-Level", "http"),
        ("Host", "$proxy_host"),
        ("Connection", "close"),
    )
    assert own.proxy.set_headers == (
        ("X-Level", "location"),
        ("Host", "$proxy_host"),
        ("Connection", "close"),
    )
    assert nested.proxy.set_headers == own.proxy.set_headers
    assert defaults.proxy.set_headers == (("Host", "$host"), ("Connection", "close"))
    assert second.locations[0].proxy.set_headers == (
        ("Upgrade", "$http_upgrade"),
        ("Connection", "upgrade"),
        ("Host", "$proxy_host"),
    )
    # other proxy_* inherit one by one, down to the nested location
    assert (
        inherit.proxy.connect_timeout,
        inherit.proxy.read_timeout,
        inherit.proxy.send_timeout,
    ) == (5.0, 30.0, 60.0)
    assert (own.proxy.read_timeout, own.proxy.send_timeout) == (30.0, 1.5)
    assert (nested.proxy.connect_timeout, nested.proxy.read_timeout, nested.proxy.send_timeout) == (
        5.0,
        120.0,
        1.5,
    )
    assert second.locations[0].proxy.connect_timeout == 60.0
    # send_timeout (writes to the client) is a core setting: http/server/location
    assert (first.send_timeout, inherit.send_timeout, own.send_timeout) == (10.0, 10.0, 10.0)
    assert nested.send_timeout == 3.0
    assert second.send_timeout == second.locations[0].send_timeout == 60.0
    # http-level lines after the servers still apply to them
    assert inherit.proxy.http_version == nested.proxy.http_version == "1.1"
    assert inherit.default_type == first.default_type == "application/json"
    # allow/deny: an array too; auth_basic inherits, "off" switches it off
    assert inherit.access.rules == (("allow", "10.0.0.0/8"), ("deny", "all"))
    assert own.access.rules == nested.access.rules == (("allow", "192.168.0.0/16"),)
    htpasswd = os.path.join(case_dir("inheritance"), "htpasswd")
    assert (own.access.auth_basic, own.access.auth_basic_user_file) == ("http realm", htpasswd)
    assert (nested.access.auth_basic, nested.access.auth_basic_user_file) == (None, htpasswd)
    assert first.client_max_body_size == inherit.client_max_body_size == 2 * 1024 * 1024
    assert second.client_max_body_size == 1024 * 1024


def test_listen_forms() -> None:
    config = load("listen_forms")
    named, implicit = config.servers
    assert [(lst.host, lst.port, lst.unix, lst.default_server) for lst in named.listens] == [
        ("0.0.0.0", 80, None, False),
        ("127.0.0.1", 8080, None, True),
        ("::", 8080, None, False),
        ("::1", 80, None, False),
        ("0.0.0.0", 8081, None, False),
        ("127.0.0.1", 8082, None, False),
        ("", 0, "/tmp/ngxws-test.sock", False),
        ("::", 8083, None, False),
        ("::1", 8084, None, False),
    ]
    # IPV6_V6ONLY: nginx's default "on"; only "ipv6only=off" turns it off
    assert [lst.ipv6only for lst in named.listens] == [True] * 7 + [False, True]
    assert named.listens[0].source == at("listen_forms", "nginx.conf", 5)
    # names are lowercased, regexes kept as written
    assert named.server_names == ("example.com", "www.example.com", r"~^(?<sub>.+)\.Example\.com$")
    # no listen: *:80; no server_name: ""
    assert [(lst.host, lst.port) for lst in implicit.listens] == [("0.0.0.0", 80)]
    assert implicit.server_names == ("",)
    assert implicit.return_ is not None and implicit.return_.code == 204
    assert config.warnings == ()


def test_upstreams_and_proxy_pass_forms() -> None:
    config = load("upstreams")
    pool = config.upstream("ws_pool")
    assert pool is not None
    assert (pool.balance, pool.keepalive) == ("least_conn", 16)
    assert [
        (p.host, p.port, p.unix, p.weight, p.max_fails, p.fail_timeout, p.backup, p.down)
        for p in pool.peers
    ] == [
        ("10.0.0.1", 9000, None, 5, 3, 30.0, False, False),
        ("10.0.0.2", 80, None, 1, 1, 10.0, False, True),
        ("::1", 9001, None, 1, 1, 10.0, True, False),
        ("", 0, "/run/backend.sock", 1, 1, 10.0, False, False),
    ]
    sticky = config.upstream("sticky")
    assert sticky is not None
    assert (sticky.balance, sticky.hash_key, sticky.hash_consistent) == (
        "hash",
        "$remote_addr",
        True,
    )
    (server,) = config.servers

    def target(pattern: str) -> tuple[object, ...]:
        pp = location(server, pattern).proxy_pass
        assert pp is not None
        return (pp.scheme, pp.host, pp.port, pp.uri, pp.upstream, pp.has_variables, pp.unix)

    assert target("/pool/") == ("http", "WS_POOL", 80, "/", "ws_pool", False, None)
    assert target("/sticky") == ("https", "sticky", 443, None, "sticky", False, None)
    assert target("/direct") == ("https", "10.0.0.9", 8443, "/base?x=1", None, False, None)
    assert target("/socket") == ("http", "", 0, "/ws/", None, False, "/run/app.sock")
    assert target("^/var/(?<rest>.*)$") == ("http", "$arg_host", 9000, "/$rest", None, True, None)
    named = location(server, "@fallback")
    assert (named.modifier, named.pattern) == ("@", "@fallback")
    assert target("@fallback")[4] == "ws_pool"


def test_ssl() -> None:
    config = load("ssl")
    secure, other = config.servers
    folder = case_dir("ssl")
    assert secure.ssl_certificate == os.path.join(folder, "cert.pem")
    assert secure.ssl_certificate_key == os.path.join(folder, "key.pem")
    assert secure.ssl_protocols == ("TLSv1.2", "TLSv1.3")  # both lines, ORed
    assert secure.ssl_ciphers == "HIGH:!aNULL"
    assert [(lst.port, lst.ssl, lst.http2, lst.default_server) for lst in secure.listens] == [
        (8443, True, False, True),
        (8444, True, True, False),
    ]
    # "listen 8443" without ssl shares the SSL socket: nginx ORs the flag
    assert [(lst.port, lst.ssl) for lst in other.listens] == [(8443, True)]
    assert other.return_ is not None
    assert (other.return_.code, other.return_.text) == (301, "https://secure.test$request_uri")
    proxy = location(secure, "/").proxy
    assert (proxy.ssl_server_name, proxy.ssl_verify) == (True, True)
    assert proxy.ssl_trusted_certificate == os.path.join(folder, "cert.pem")


# (directive, file, line, harmless) in reading order
MIGRATION_IGNORED = [
    ("user", "nginx.conf", 3, True),
    ("load_module", "nginx.conf", 8, True),
    ("multi_accept", "nginx.conf", 12, True),
    ("sendfile", "nginx.conf", 16, True),
    ("tcp_nopush", "nginx.conf", 17, True),
    ("types_hash_max_size", "nginx.conf", 18, True),
    ("server_tokens", "nginx.conf", 19, True),
    ("ssl_prefer_server_ciphers", "nginx.conf", 25, True),
    ("log_format", "nginx.conf", 27, True),
    ("access_log", "nginx.conf", 28, True),
    ("proxy_cache_path", "nginx.conf", 34, False),
    ("proxy_buffers", "sites-enabled/websocket", 19, True),
    ("access_log", "sites-enabled/websocket", 20, True),
    ("more_set_headers", "sites-enabled/websocket", 21, False),  # unknown to nginx
    ("proxy_cache", "sites-enabled/websocket", 26, False),
    ("chunked_transfer_encoding", "sites-enabled/websocket", 29, True),  # "on" is the default
]


def test_migration_report_classification() -> None:
    config = load("migration")
    got = [(i.name, i.source, i.harmless) for i in config.ignored]
    want = [
        (name, at("migration", rel, line), harmless)
        for name, rel, line, harmless in MIGRATION_IGNORED
    ]
    assert got == want
    assert all(i.reason for i in config.ignored)


@pytest.mark.parametrize(
    ("line", "name", "harmless", "reason"),
    [
        ("lua_shared_dict cache 10m;", "lua_shared_dict", False, "third-party"),  # unknown to nginx
        ("ssi on;", "ssi", False, "not implemented"),
        ("ssi off;", "ssi", True, '"off": what ngxws does anyway'),
        ("open_file_cache off;", "open_file_cache", True, "tuning"),
        ("error_log logs/http.log;", "error_log", True, "main-level"),  # only main's is written
    ],
)
def test_ignored_directive(
    tmp_path: Path, line: str, name: str, harmless: bool, reason: str
) -> None:
    (tmp_path / "nginx.conf").write_text(f"events {{}}\nhttp {{\n    {line}\n}}\n")
    (ignored,) = load_config(str(tmp_path / "nginx.conf")).ignored
    assert (ignored.name, ignored.source.line, ignored.harmless) == (name, 3, harmless)
    assert reason in ignored.reason


def _cache_report(tmp_path: Path, http: str) -> dict[str, bool]:
    (tmp_path / "nginx.conf").write_text(f"events {{}}\nhttp {{\n{http}\n}}\n")
    return {i.name: i.harmless for i in load_config(str(tmp_path / "nginx.conf")).ignored}


def test_cache_directives_harmless_only_where_no_cache_is_on(tmp_path: Path) -> None:
    """The usual websocket snippet's ``proxy_cache_bypass $http_upgrade``
    and an unused ``proxy_cache_path`` change nothing when no
    ``proxy_cache`` is on anywhere (nginx caches nothing either); one
    ``proxy_cache`` zone anywhere (another location, a variable), and they
    are reported as changing behaviour again."""
    snippet = """
    proxy_cache_path /tmp/cache keys_zone=one:1m;
    server {
        listen 8080;
        location / {
            proxy_pass http://127.0.0.1:9000;
            proxy_cache_bypass $http_upgrade;
            proxy_cache_valid 200 1m;
            proxy_cache off;
            proxy_store off;
            %s
        }
    }"""
    plain = _cache_report(tmp_path, snippet % "")
    assert plain == {"proxy_cache_path": True, "proxy_cache_bypass": True, "proxy_cache_valid": True,
                     "proxy_cache": True, "proxy_store": True}  # fmt: skip
    for on in ("proxy_cache one;", "proxy_cache $zone;", "} location /cached/ { proxy_cache one;"):
        report = _cache_report(tmp_path, "map $uri $zone { default one; }" + snippet % on)
        assert report["proxy_cache_bypass"] is False and report["proxy_cache_path"] is False, on
        assert report["proxy_cache_valid"] is False


def test_migration_config_model() -> None:
    config = load("migration")
    assert config.worker_processes == (os.cpu_count() or 1)  # "auto"
    default, ws = config.servers
    assert [(lst.host, lst.port, lst.default_server) for lst in default.listens] == [
        ("0.0.0.0", 80, True),
        ("::", 80, True),
    ]
    assert default.ssl_protocols == ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    assert default.default_type == "application/octet-stream"
    (upgrade_map,) = config.maps
    assert (upgrade_map.expression, upgrade_map.variable, upgrade_map.default) == (
        "$http_upgrade",
        "connection_upgrade",
        "upgrade",
    )
    assert upgrade_map.entries == (("", "close"),)
    assert upgrade_map.source == at("migration", "nginx.conf", 36)
    status = location(ws, "/ws_status")
    assert status.access.rules == (("allow", "127.0.0.1"), ("deny", "all"))
    assert ("Connection", "$connection_upgrade") in location(ws, "/ws").proxy.set_headers


def test_warnings_like_nginx(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(
        "events {}\n"
        "http {\n"
        "    server { listen 8080; server_name a.test; allow 10.0.0.1/8; }\n"
        "    server { listen 8080; server_name A.test; }\n"
        "}\n"
    )
    config = load_config(str(tmp_path / "nginx.conf"))
    assert config.warnings == (
        f"low address bits of 10.0.0.1/8 are meaningless in {tmp_path}/nginx.conf:3",
        'conflicting server name "a.test" on 0.0.0.0:8080, ignored',
    )


def write_conf(tmp_path: Path, text: str, **files: str) -> str:
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    (tmp_path / "nginx.conf").write_text(text)
    return str(tmp_path / "nginx.conf")


def test_small_forms(tmp_path: Path) -> None:
    """Odds and ends: the 1.25 ``http2 on;`` switch, listen parameters ngxws
    reports, a snippet included twice, ``/dev/stdout``, ``ws_conn_age 0``."""
    conf = write_conf(
        tmp_path,
        "events {}\n"
        "http {\n"
        "    server {\n"
        "        listen 8443 ssl proxy_protocol;\n"
        "        http2 on;\n"
        "        ssl_certificate c.pem;\n"
        "        ssl_certificate_key k.pem;\n"
        "        ws_log /dev/stdout;\n"
        "        ws_conn_age 0;\n"
        "        location /a { include snippet.conf; proxy_pass http://127.0.0.1:1; }\n"
        "        location /b { include snippet.conf; proxy_pass http://127.0.0.1:2; }\n"
        "    }\n"
        "}\n",
        **{"snippet.conf": "proxy_read_timeout 7s;\n", "c.pem": "x", "k.pem": "x"},
    )
    config = load_config(conf)
    (server,) = config.servers
    assert [(lst.port, lst.ssl, lst.http2, lst.proxy_protocol) for lst in server.listens] == [
        (8443, True, True, True)
    ]
    assert server.ws.log_path == "/dev/stdout"
    assert server.ws.conn_age is None
    assert [loc.proxy.read_timeout for loc in server.locations] == [7.0, 7.0]
    assert not config.ignored


@pytest.mark.parametrize(
    ("directive", "value"),
    [
        ('ws_log_format "F";', ("F", None, None, None, None)),
        ('ws_log_format open "O";', (None, "O", None, None, None)),
        ('ws_log_format close "C";', (None, None, "C", None, None)),
        ('ws_log_format client "c";', (None, None, None, "c", None)),
        ('ws_log_format server "s";', (None, None, None, None, "s")),
        ('ws_log_format message "m";', (None, None, None, "m", "m")),
    ],
)
def test_ws_log_format_keywords(tmp_path: Path, directive: str, value: tuple[object, ...]) -> None:
    conf = write_conf(tmp_path, f"events {{}}\nhttp {{ server {{ {directive} }} }}\n")
    t = load_config(conf).servers[0].ws.templates
    assert (t.frame, t.open, t.close, t.client, t.server) == value


_SOURCES = [(CONFIGS / c / "nginx.conf").read_text() for c in GOOD_CASES]
_PIECES = list("{};\"' \n#$:/[]~=@") + ["ws_", "listen ", "location ", "server ", "if ("]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SOURCES),
    st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.booleans(), st.sampled_from(_PIECES)),
        min_size=1,
        max_size=4,
    ),
)
def test_broken_configs_only_raise_config_error(
    source: str, edits: list[tuple[float, bool, str]]
) -> None:
    """Whatever a typo does to a config, the answer is a ConfigError (or a
    config), never a traceback: the CLI prints str(ConfigError) and exits 1."""
    text = source
    for where, delete, piece in edits:
        pos = int(where * len(text))
        text = text[:pos] + text[pos + 1 :] if delete else text[:pos] + piece + text[pos:]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "nginx.conf")
        Path(path).write_text(text)
        try:
            load_config(path)
        except ConfigError as err:
            assert str(err)


# --------------------------------------------------------------------------
# ngxws check
# --------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in GOOD_CASES if (CONFIGS / c / "check.txt").exists()])
def test_check_report_golden(case: str) -> None:
    report = render_check_report(load(case))
    golden = (CONFIGS / case / "check.txt").read_text().replace("{dir}", case_dir(case))
    assert report == golden


def test_check_report_lists_every_ignored_directive() -> None:
    config = load("migration")
    report = render_check_report(config)
    harmless, changing = report.split("ignored, harmless")[1], report.split("ignored, harmless")[0]
    for item in config.ignored:
        where = f"{os.path.relpath(item.source.file, case_dir('migration'))}:{item.source.line}"
        assert f"{where}" in (harmless if item.harmless else changing)


# -- issue 4: paths, escapes, the rewrite subset, maps, types ------------------------


def test_conf_relative_and_prefix_relative_paths(tmp_path: Path) -> None:
    """include / auth_basic_user_file / ssl files: the conf's folder;
    pid / logs / ws_log: the prefix (-p), as nginx."""
    conf_dir = tmp_path / "etc"
    (conf_dir / "conf.d").mkdir(parents=True)
    (conf_dir / "conf.d" / "site.conf").write_text(
        "server { listen 127.0.0.1:8080; ws_log logs/ws.log;"
        " location / { auth_basic x; auth_basic_user_file conf.d/users; proxy_pass http://127.0.0.1:9; } }\n"
    )
    (conf_dir / "nginx.conf").write_text(
        "pid run/ngxws.pid;\nerror_log logs/error.log;\nevents {}\nhttp { include conf.d/*.conf; }\n"
    )
    prefix = tmp_path / "prefix"
    config = load_config(str(conf_dir / "nginx.conf"), str(prefix))
    server = config.servers[0]
    assert config.pid_path == str(prefix / "run/ngxws.pid")
    assert config.error_log == str(prefix / "logs/error.log")
    assert server.ws.log_path == str(prefix / "logs/ws.log")
    assert location(server, "/").access.auth_basic_user_file == str(conf_dir / "conf.d/users")


def test_ws_log_to_dev_stdout(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp { server { listen 8080; ws_log /dev/stdout; location / { proxy_pass http://127.0.0.1:9; } } }\n")
    assert load_config(str(conf)).servers[0].ws.log_path == "/dev/stdout"


def test_lines_container_and_module_configs_carry(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        """
load_module modules/ngx_http_websocket_stat_module.so;
user nginx;
daemon off;
events {}
http {
    resolver 127.0.0.11 valid=30s;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    map $host $backend { default 127.0.0.1:9000; }
    server {
        listen 8080;
        error_page 418 = @websocket;
        location / {
            if ($http_upgrade = "websocket") { return 418; }
            proxy_pass http://$backend;
        }
        location @websocket {
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_pass http://$backend;
        }
    }
}
"""
    )
    config = load_config(str(conf))
    root = location(config.servers[0], "/")
    first = root.rewrites[0]
    assert isinstance(first, IfStep) and first.condition == ("$http_upgrade", "=", "websocket")
    assert first.steps == (ReturnStep(Return(418)),)
    assert root.error_pages[0].codes == (418,) and root.error_pages[0].target == "@websocket"
    assert root.error_pages[0].response == 0
    assert root.proxy_pass is not None and root.proxy_pass.has_variables
    report = render_check_report(config)
    assert "if (1):" in report and "error_page (1):" in report
    assert "load_module -- ngxws has the websocket module built in" in report


def test_if_with_other_directives_is_a_nested_location(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp { server { listen 8080; location / {"
        " if (-f $request_filename) { rewrite ^ /x break; } return 204; } } }\n"
    )
    config = load_config(str(conf))
    first, second = location(config.servers[0], "/").rewrites
    assert isinstance(first, IfStep) and first.location is not None
    assert first.condition == ("-f", "$request_filename")
    assert [type(s).__name__ for s in first.steps] == ["RewriteStep"]
    assert second == ReturnStep(Return(204))
    assert [i.name for i in config.ignored] == []


def test_quoted_escapes_like_nginx(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        'events {}\nhttp { server { listen 8080;'
        ' location ~ \\.php$ { return 200 "a\\tb\\n\\"q\\" \\\\d \\x"; } } }\n'
    )
    loc = load_config(str(conf)).servers[0].locations[0]
    assert loc.pattern == "\\.php$"
    assert loc.return_ is not None and loc.return_.text == 'a\tb\n"q" \\d \\x'


def test_types_and_error_page_inheritance(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        """
events {}
http {
    types { text/html html; application/json json; }
    error_page 500 502 /50x.html;
    server {
        listen 8080;
        location /a/ { return 200 "x"; }
        location /b/ { error_page 404 =200 @x; return 404; }
        location @x { return 200 "fallback"; }
    }
}
"""
    )
    server = load_config(str(conf)).servers[0]
    a, b = location(server, "/a/"), location(server, "/b/")
    assert ("json", "application/json") in a.types
    assert a.error_pages[0].codes == (500, 502) and a.error_pages[0].response is None
    assert [p.codes for p in b.error_pages] == [(404,)]  # a level with its own replaces
    assert b.error_pages[0].response == 200


def test_hash_consistent_is_honoured(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp { upstream u { hash $request_uri consistent; server 127.0.0.1:1; server 127.0.0.1:2; }"
        " server { listen 8080; location / { proxy_pass http://u; } } }\n"
    )
    config = load_config(str(conf))
    assert config.ignored == ()
    (u,) = config.upstreams
    assert u.hash_consistent and [p.server for p in u.peers] == ["127.0.0.1:1", "127.0.0.1:2"]


def test_check_lists_honoured_directives() -> None:
    report = render_check_report(load("upstreams"))
    assert "honoured (" in report
    assert "  proxy_pass (6): " in report


# --------------------------------------------------------------------------
# nginx 1.22 forms: "ssl on;", ipv6only, proxy_ssl_verify's CA, send_timeout
# --------------------------------------------------------------------------


def test_ssl_on_makes_the_default_servers_sockets_tls(tmp_path: Path) -> None:
    """nginx asks the *default* server of an address whether ``ssl on`` is
    set (ngx_http_init_connection()); a non-default server's ``ssl on`` does
    not change the socket.  The directive warns whatever its value."""
    cert = CONFIGS / "ssl" / "cert.pem"
    key = CONFIGS / "ssl" / "key.pem"
    tls = f"ssl_certificate {cert}; ssl_certificate_key {key};"
    conf = write_conf(
        tmp_path,
        "events {}\n"
        "http {\n"
        f"    server {{ listen 8443; listen 8444; ssl on; {tls} }}\n"
        f"    server {{ listen 8444; server_name b.test; listen 8445; ssl off; }}\n"
        f"    server {{ listen 8445 default_server; server_name c.test; {tls}\n"
        "              ssl on; }\n"
        f"    server {{ listen 8446; server_name d.test; }}\n"
        f"    server {{ listen 8446; server_name e.test; ssl on; {tls} }}\n"
        "}\n",
    )
    config = load_config(conf)
    ssl_by_port = {lst.port: lst.ssl for s in config.servers for lst in s.listens}
    assert ssl_by_port == {8443: True, 8444: True, 8445: True, 8446: False}
    assert [s.ssl_on for s in config.servers] == [True, False, True, False, True]
    deprecated = 'the "ssl" directive is deprecated, use the "listen ... ssl" directive instead'
    assert config.warnings == (
        f"{deprecated} in {conf}:3",
        f"{deprecated} in {conf}:4",
        f"{deprecated} in {conf}:6",
        f"{deprecated} in {conf}:8",
    )
    assert ("ssl", Source(conf, 3)) in config.honoured
    assert not [i for i in config.ignored if i.name == "ssl"]


def test_ssl_on_at_http_level_is_inherited(tmp_path: Path) -> None:
    cert = CONFIGS / "ssl" / "cert.pem"
    key = CONFIGS / "ssl" / "key.pem"
    conf = write_conf(
        tmp_path,
        f"events {{}}\nhttp {{\n    ssl on; ssl_certificate {cert}; ssl_certificate_key {key};\n"
        "    server { listen 8443; }\n}\n",
    )
    (server,) = load_config(conf).servers
    assert server.ssl_on and server.listens[0].ssl


@pytest.mark.parametrize(
    ("level", "location"),
    [
        ("", "proxy_ssl_verify on; proxy_pass http://127.0.0.1:9000;"),  # plain: no TLS context
        ("proxy_ssl_verify on;", "return 200;"),  # no proxy_pass
        ("", "proxy_ssl_verify off; proxy_pass https://127.0.0.1:9443;"),
        # a nested location without a proxy_pass of its own is not checked
        ("", "proxy_pass https://127.0.0.1:9443; location /a/b { proxy_ssl_verify on; }"),
        (
            "",
            f"proxy_ssl_verify on; proxy_ssl_trusted_certificate {CONFIGS / 'ssl' / 'cert.pem'};"
            " proxy_pass https://127.0.0.1:9443;",
        ),
    ],
)
def test_proxy_ssl_verify_needs_a_ca_only_where_tls_is_spoken(
    tmp_path: Path, level: str, location: str
) -> None:
    conf = write_conf(
        tmp_path,
        f"events {{}}\nhttp {{\n  server {{ listen 8080; {level}\n  location /a {{ {location} }} }}\n}}\n",
    )
    load_config(conf)  # nginx -t accepts these (checked below where installed)
    if NGINX is not None:
        assert nginx_test(conf, str(tmp_path)) == "OK"


@pytest.mark.parametrize(
    "location",
    [
        "proxy_ssl_verify on; proxy_pass https://127.0.0.1:9443;",
        "proxy_ssl_verify on; proxy_pass http://127.0.0.1:9000$request_uri;",  # variables: maybe TLS
    ],
)
def test_proxy_ssl_verify_without_ca_is_refused(tmp_path: Path, location: str) -> None:
    conf = write_conf(
        tmp_path,
        f"events {{}}\nhttp {{\n  server {{ listen 8080;\n  location /a {{ {location} }} }}\n}}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert str(err.value) == "no proxy_ssl_trusted_certificate for proxy_ssl_verify"
    if NGINX is not None:
        assert nginx_test(conf, str(tmp_path)) == str(err.value)


def test_send_timeouts_are_honoured(tmp_path: Path) -> None:
    conf = write_conf(
        tmp_path,
        "events {}\nhttp {\n  send_timeout 20s;\n  server { listen 8080;\n"
        "  location / { proxy_send_timeout 1s; proxy_pass http://127.0.0.1:9000; } }\n}\n",
    )
    config = load_config(conf)
    (loc,) = config.servers[0].locations
    assert (loc.proxy.send_timeout, loc.send_timeout) == (1.0, 20.0)
    honoured = {name for name, _ in config.honoured}
    assert {"send_timeout", "proxy_send_timeout"} <= honoured
    assert not config.ignored


def test_ipv6only_off_listen_takes_ipv4_clients() -> None:
    """``[::]:PORT ipv6only=off``: one dual-stack socket, from both binders
    (the shared one and the per-worker ``SO_REUSEPORT`` group)."""
    import socket

    from ngxws.config.model import Listen
    from ngxws.listen_sockets import _bind_reuseport
    from ngxws.listeners import bind_listen

    for bind in (bind_listen, _bind_reuseport):
        for ipv6only, reachable in ((False, True), (True, False)):
            sock = bind(Listen(host="::", port=0, ipv6only=ipv6only))
            try:
                port = sock.getsockname()[1]
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == int(ipv6only)
                # whether *this* socket gets the IPv4 client: another process may
                # listen on 127.0.0.1 at the same port number (it is free in v4)
                try:
                    client: socket.socket | None = socket.create_connection(("127.0.0.1", port), timeout=2)
                except OSError:
                    client = None
                sock.settimeout(0.5)
                try:
                    sock.accept()[0].close()
                    accepted = True
                except OSError:  # timed out: nothing came to this socket
                    accepted = False
                if client is not None:
                    client.close()
                assert accepted is reachable, (bind, ipv6only)
            finally:
                sock.close()


def test_proxy_method_and_next_upstream_tries(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp { proxy_next_upstream_tries 3; server { listen 8080;"
        " location / { proxy_method $arg_m; proxy_pass http://127.0.0.1:1; }"
        " location /b/ { proxy_next_upstream_tries 0; proxy_pass http://127.0.0.1:1; } } }\n"
    )
    config = load_config(str(conf))
    a, b = config.servers[0].locations
    assert (a.proxy.method, a.proxy.next_upstream_tries) == ("$arg_m", 3)
    assert (b.proxy.method, b.proxy.next_upstream_tries) == (None, 0)
    assert config.ignored == ()
    for bad, said in (
        ("proxy_next_upstream_tries x;", '"proxy_next_upstream_tries" directive invalid number'),
        ("proxy_method GET; proxy_method POST;", '"proxy_method" directive is duplicate'),
    ):
        conf.write_text(f"events {{}}\nhttp {{ server {{ listen 8080; location / {{ {bad} }} }} }}\n")
        with pytest.raises(ConfigError, match=said):
            load_config(str(conf))


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ("proxy_cookie_flags a secure httponly samesite=lax nosecure;", 'invalid number of arguments in "proxy_cookie_flags"'),
        ("proxy_cookie_flags off; proxy_cookie_flags off;", '"proxy_cookie_flags" directive is duplicate'),
        ("proxy_cookie_flags a secure; proxy_cookie_flags off;", '"proxy_cookie_flags" directive is duplicate'),
        ("proxy_cookie_flags off; proxy_cookie_flags a secure;", '"proxy_cookie_flags" directive is duplicate'),
        ("proxy_cookie_flags on;", 'invalid parameter "on"'),
        ("proxy_cookie_flags ~(a secure;", "pcre2_compile"),
    ],
)
def test_proxy_cookie_flags_refusals(tmp_path: Path, lines: str, said: str) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{ server {{ listen 8080; location / {{ {lines} }} }} }}\n")
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(str(conf))


@pytest.mark.parametrize(
    ("block", "said"),
    [
        ("split_clients $a $v { 60% a; 50% b; }", "percent total is greater than 100%"),
        ("split_clients $a $v { 0.555% a; }", 'invalid percent value "0.555%"'),
        ("split_clients $a $v { 0% a; }", 'invalid percent value "0%"'),
        ("split_clients $a $v { 10 a; }", 'invalid percent value "10"'),
        ("split_clients $a v { 10% a; }", 'invalid variable name "v"'),
    ],
)
def test_split_clients_refusals(tmp_path: Path, block: str, said: str) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{ {block} server {{ listen 8080; }} }}\n")
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(str(conf))


def test_split_clients_shares_as_nginx_sums_them(tmp_path: Path) -> None:
    from ngxws.http.maps import compile_maps, murmur_hash2

    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp { split_clients $arg_k $v { 0.5% one; 2.% two; .25% three; * rest; }"
        " server { listen 8080; } }\n"
    )
    config = load_config(str(conf))
    (m,) = config.maps
    assert m.split == ((50 * 0xFFFFFFFF // 10000, "one"), (50 * 0xFFFFFFFF // 10000 + 200 * 0xFFFFFFFF // 10000, "two"),
                       (50 * 0xFFFFFFFF // 10000 + 200 * 0xFFFFFFFF // 10000 + 25 * 0xFFFFFFFF // 10000, "three"),
                       (0, "rest"))  # fmt: skip
    assert config.ignored == ()
    # MurmurHash2, seed 0 (Austin Appleby's reference values)
    assert [murmur_hash2(s) for s in (b"", b"a", b"abc", b"abcd")] == [0, 0x92685F5E, 0x13577C9B, 0x26873021]
    compiled = compile_maps(config.maps)["v"]
    assert all(compiled.lookup(k)[0] in ("one", "two", "three", "rest") for k in ("1", "2", "3"))
