"""Issue 10 item 6: access control ngxws does not enforce fails closed.

A directive that restricts access or authenticates in nginx (or in the
module that provides it) and that ngxws does not enforce makes ``ngxws
check`` and ``ngxws run`` exit 1 with file:line and the reason; naming it
with ``--allow-unenforced NAME`` runs anyway, with a warning on the
terminal and in the error log at every start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, free_port, wait_for, wait_port

from ngxws.config.directives import THIRD_PARTY_ACCESS, Handling, stock_rule
from ngxws.config.loader import ConfigError, load_config
from ngxws.http.request import RequestHead
from ngxws.http.rewrite import route
from ngxws.http.upstream_request import RequestVariables

CONF = """\
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port};
        error_log {log} info;
        location / {{
            {directive}
            return 200 "open\\n";
        }}
    }}
}}
"""

# (directive text, its name, line within the location) for every kind:
# stock, nginx plus, third-party (unknown to crossplane), and a skipped if.
REFUSED = [
    ("auth_jwt \"api\";", "auth_jwt"),
    ("auth_jwt_require $claim;", "auth_jwt_require"),
    ("access_by_lua_block { ngx.exit(403) }", "access_by_lua_block"),
    ("access_by_lua_file /etc/nginx/check.lua;", "access_by_lua_file"),
    ("auth_digest \"realm\";", "auth_digest"),
    ("auth_pam \"realm\";", "auth_pam"),
    ("auth_ldap \"realm\";", "auth_ldap"),
    ("auth_jwt_enabled on;", "auth_jwt_enabled"),
    ("modsecurity on;", "modsecurity"),
    ("secure_link $arg_md5,$arg_expires;", "secure_link"),
    ("secure_link_secret s3cret;", "secure_link_secret"),
    # limit_except is honoured: what its block holds is judged as anywhere else
    ("limit_except GET { auth_digest \"realm\"; }", "auth_digest"),
    ("proxy_ssl_crl crl.pem;", "proxy_ssl_crl"),
]


def _conf(tmp_path: Path, directive: str, port: int = 1) -> Path:
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(port=port, log=tmp_path / "error.log", directive=directive))
    return conf


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ngxws", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(("directive", "name"), REFUSED, ids=[n for _, n in REFUSED])
def test_refused_with_file_line_unless_allowed(tmp_path: Path, directive: str, name: str) -> None:
    conf = _conf(tmp_path, directive)
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert (info.value.file, info.value.line) == (str(conf), 7)
    assert str(info.value).startswith(f'"{name}" is access control ngxws does not enforce (')
    assert str(info.value).endswith(f"in {conf}:7; --allow-unenforced {name} to run anyway")
    config = load_config(str(conf), allow_unenforced=[name])
    assert [(i.name, i.source.line) for i in config.unenforced] == [(name, 7)]


@pytest.mark.parametrize(
    "directive",
    [
        "auth_jwt off;",
        "auth_digest off;",
        "ssl_ocsp off;",
        "modsecurity off;",
        "if ($x) { return 403; }",
        "if ($request_method = OPTIONS) { add_header Allow GET; return 204; }",
    ],
)
def test_off_or_enforced_loads(tmp_path: Path, directive: str) -> None:
    """``off`` is what ngxws does anyway; an ``if`` with only a return is run;
    a skipped ``if`` whose return does not refuse is only reported."""
    config = load_config(str(_conf(tmp_path, directive)))
    assert config.unenforced == ()


def test_table_review() -> None:
    """What the issue names fails closed; auth_request, satisfy, internal are honoured."""
    for name in ("auth_jwt", "secure_link", "auth_digest", "ssl_ocsp", "access_by_lua", "access_by_lua_block"):
        assert stock_rule(name, True).handling is Handling.UNENFORCED_ACCESS, name
    for name in ("auth_request", "auth_request_set", "satisfy", "internal"):
        assert stock_rule(name, True).handling is Handling.HONOURED, name
    assert all(r.handling is not Handling.IGNORED_CHANGES_BEHAVIOUR for r in THIRD_PARTY_ACCESS.values())


def test_check_exits_1_then_runs_with_the_option(tmp_path: Path) -> None:
    conf = _conf(tmp_path, 'auth_jwt "api";')
    refused = _cli("check", "-c", str(conf))
    assert refused.returncode == 1
    assert f'[emerg] "auth_jwt" is access control ngxws does not enforce (JSON Web Tokens are not validated) in {conf}:7; --allow-unenforced auth_jwt to run anyway' in refused.stderr
    allowed = _cli("check", "-c", str(conf), "--allow-unenforced", "auth_jwt")
    assert allowed.returncode == 0, allowed.stderr
    assert f'[warn] "auth_jwt" in {conf}:7 is NOT enforced' in allowed.stderr
    assert "access control NOT enforced (allowed with --allow-unenforced):" in allowed.stdout
    # ngxws -t takes the option too
    assert _cli("-t", "-c", str(conf), "--allow-unenforced", "auth_jwt").returncode == 0


def test_run_exits_1_with_nothing_listening(tmp_path: Path) -> None:
    port = free_port()
    conf = _conf(tmp_path, "access_by_lua_block { ngx.exit(403) }", port)
    refused = _cli("run", "-c", str(conf), "-p", str(tmp_path))
    assert refused.returncode == 1
    assert f'"access_by_lua_block" is access control ngxws does not enforce (Lua access handlers do not run) in {conf}:7' in refused.stderr
    assert "--allow-unenforced access_by_lua_block to run anyway" in refused.stderr


def test_run_with_the_option_warns_in_the_error_log(tmp_path: Path) -> None:
    port = free_port()
    conf = _conf(tmp_path, "access_by_lua_block { ngx.exit(403) }", port)
    main_log = tmp_path / "main-error.log"
    conf.write_text(f"error_log {main_log} info;\n" + conf.read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "ngxws", "run", "-c", str(conf), "-p", str(tmp_path),
         "--allow-unenforced", "access_by_lua_block"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        wait_port(port)
        warning = f'"access_by_lua_block" in {conf}:8 is NOT enforced (Lua access handlers do not run)'
        assert wait_for(lambda: main_log.exists() and warning in main_log.read_text(), timeout=10)
        assert "[warn]" in next(line for line in main_log.read_text().splitlines() if warning in line)
        # reload: said again, and the allowance carries over
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: main_log.read_text().count(warning) == 2, timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert warning in err.decode()  # and on the terminal


SET_FLAG = """\
events {}
http {
    server {
        listen 127.0.0.1:1;
        set $allowed 0;
        location / {
            if ($remote_addr = 10.0.0.1) { set $allowed 1; }
            if ($allowed = 0) { return 403; }
            return 200 "in\\n";
        }
        location /other/ { set $upstream http://127.0.0.1:9; return 200 "$upstream\\n"; }
    }
}
"""


def test_set_tested_by_a_return_is_run(tmp_path: Path) -> None:
    """The access-flag recipe: since issue 11 ngxws runs the sets and ifs
    (ngxws.http.rewrite) and nothing is left unenforced; the pure route()
    refuses and admits as nginx would."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(SET_FLAG)
    config = load_config(str(conf))
    assert config.unenforced == ()
    assert [i.name for i in config.ignored if i.name in ("set", "if")] == []
    server = config.servers[0]
    for addr, code in (("10.0.0.1", 200), ("10.0.0.2", 403)):
        head = RequestHead("GET", "/", "1.1", [("Host", "x")], True)
        v = RequestVariables(head, addr, 1, "127.0.0.1", 1, "")
        routed = route(server, v)
        assert routed.ret is not None and routed.ret.code == code


def test_directives_nginx_would_act_on_are_said_at_every_start(tmp_path: Path) -> None:
    """A config that runs is not different from nginx in silence: each
    directive ngxws ignores where nginx acts ("changes behaviour" in the
    migration report) is a [warn] line with file:line at every start, on the
    terminal and in the error log; harmless ones are not."""
    from harness import ngxws

    port = free_port()
    log = tmp_path / "error.log"
    conf = (
        f"error_log {log} warn;\nevents {{}}\nhttp {{\n    server {{\n        listen 127.0.0.1:{port};\n"
        "        ssi on;\n"  # line 6
        "        sub_filter 'a' 'b';\n"  # line 7
        "        ssi_types text/plain;\n"  # harmless: only with ssi
        "        sendfile on;\n"
        '        location / { return 200 "ok\\n"; }\n    }\n}\n'
    )
    with ngxws(conf, tmp_path, port) as srv:
        assert srv.get("/")[2] == b"ok\n"
        assert wait_for(lambda: log.exists() and "sub_filter" in log.read_text(), timeout=10)
    _code, _out, err = srv.stop()
    path = tmp_path / "nginx.conf"
    expected = [
        f'[warn] "ssi" in {path}:6 is ignored, nginx would act on it (SSI is not implemented)',
        f'[warn] "sub_filter" in {path}:7 is ignored, nginx would act on it (response bodies are passed unchanged)',
    ]
    for line in expected:
        assert line in err
        assert line.split("] ", 1)[1] in log.read_text()
    assert '"sendfile"' not in err and '"ssi_types"' not in err
