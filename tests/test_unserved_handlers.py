"""Content handlers ngxws cannot run fail closed (issue 11).

``uwsgi_pass``, ``fastcgi_pass``, ``scgi_pass``, ``grpc_pass``,
``memcached_pass``, ``perl`` and ``js_content`` make nginx serve their
location; ngxws would answer 404 there (accepted, then wrong).  So a config
with one is refused with file:line and the reason, exit 1, unless
``--allow-unenforced NAME`` names it: then the location answers 502 (an
unreachable backend, as nginx would say) and the start warning says so.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from harness import ROOT, Ngxws, free_port

from ngxws.config.directives import UNSERVED_HANDLERS, Handling, stock_rule
from ngxws.config.loader import ConfigError, load_config

CONF = """\
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port};
        location /app/ {{
            {directive}
        }}
        location /other/ {{
            return 200 "other\\n";
        }}
    }}
}}
"""

# (directive text, its name, the reason in the refusal); line 6 of CONF
HANDLERS = [
    ("uwsgi_pass 127.0.0.1:9;", "uwsgi_pass", "the uwsgi protocol is not implemented"),
    ("fastcgi_pass 127.0.0.1:9;", "fastcgi_pass", "the FastCGI protocol is not implemented"),
    ("scgi_pass 127.0.0.1:9;", "scgi_pass", "the SCGI protocol is not implemented"),
    ("grpc_pass grpc://127.0.0.1:9;", "grpc_pass", "gRPC proxying is not implemented"),
    ("memcached_pass 127.0.0.1:9;", "memcached_pass", "the memcached protocol is not implemented"),
    ("perl Handler::handler;", "perl", "embedded Perl is not implemented"),
    ("js_content app.handle;", "js_content", "njs (JavaScript) handlers are not implemented"),
]


def _conf(tmp_path: Path, directive: str, port: int = 1) -> Path:
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(port=port, directive=directive))
    return conf


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ngxws", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_the_table_names_every_handler() -> None:
    assert {name for _, name, _ in HANDLERS} == UNSERVED_HANDLERS
    for name in UNSERVED_HANDLERS:
        assert stock_rule(name, True).handling is Handling.UNENFORCED_ACCESS, name


@pytest.mark.parametrize(("directive", "name", "reason"), HANDLERS, ids=[n for _, n, _ in HANDLERS])
def test_refused_with_file_line_unless_allowed(
    tmp_path: Path, directive: str, name: str, reason: str
) -> None:
    conf = _conf(tmp_path, directive)
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert str(info.value) == (
        f'"{name}" is not supported by ngxws ({reason}) in {conf}:6; '
        f"--allow-unenforced {name} to run anyway (its location answers 502)"
    )
    config = load_config(str(conf), allow_unenforced=[name])
    assert [(i.name, i.source.line) for i in config.unenforced] == [(name, 6)]
    app, other = config.servers[0].locations
    assert (app.unserved_handler, other.unserved_handler) == (name, None)


def test_inside_an_if_it_is_refused_too(tmp_path: Path) -> None:
    """nginx runs the handler when the condition holds; ngxws skips the if."""
    conf = _conf(tmp_path, "if ($arg_x) { uwsgi_pass 127.0.0.1:9; }")
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert (info.value.file, info.value.line) == (str(conf), 6)
    assert str(info.value).startswith('"uwsgi_pass" is not supported by ngxws (')


def test_check_exits_1_and_names_the_option(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "uwsgi_pass 127.0.0.1:9;")
    refused = _cli("check", "-c", str(conf))
    assert refused.returncode == 1
    assert (
        f'[emerg] "uwsgi_pass" is not supported by ngxws (the uwsgi protocol is not implemented) '
        f"in {conf}:6; --allow-unenforced uwsgi_pass" in refused.stderr
    )
    allowed = _cli("check", "-c", str(conf), "--allow-unenforced", "uwsgi_pass")
    assert allowed.returncode == 0, allowed.stderr
    assert f'[warn] "uwsgi_pass" in {conf}:6 is NOT served (' in allowed.stderr
    assert "content handlers NOT served (allowed with --allow-unenforced):" in allowed.stdout
    assert "access control NOT enforced" not in allowed.stdout


def test_run_with_the_option_answers_502_there(tmp_path: Path) -> None:
    port = free_port()
    conf = _conf(tmp_path, "uwsgi_pass 127.0.0.1:9;", port)
    main_log = tmp_path / "main-error.log"
    conf.write_text(f"error_log {main_log} info;\n" + conf.read_text())
    assert _cli("run", "-c", str(conf), "-p", str(tmp_path)).returncode == 1
    px = Ngxws(conf, tmp_path, port, args=("--allow-unenforced", "uwsgi_pass"))
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(px.url("/app/x"), timeout=5)
        assert answer.value.code == 502
        with urllib.request.urlopen(px.url("/other/"), timeout=5) as ok:
            assert ok.read() == b"other\n"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(px.url("/nowhere"), timeout=5)
        assert missing.value.code == 404
    finally:
        code, _, err = px.stop()
    assert code == 0, err
    warning = f'"uwsgi_pass" in {conf}:7 is NOT served (the uwsgi protocol is not implemented'
    assert warning in err  # on the terminal, and in the error log
    assert warning in main_log.read_text()
