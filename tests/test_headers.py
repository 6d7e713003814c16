"""add_header / expires: the settings nginx refuses (with nginx -t's own
words as the oracle), inheritance in the built model, and the pure filter's
expires arithmetic (ngx_http_set_expires) at a fixed clock."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from ngxws.config.headers import Expires, HeadersConf, parse_expires
from ngxws.config.loader import ConfigError, load_config
from ngxws.http.headers_filter import apply_headers

sys.path.insert(0, str(Path(__file__).parent))
from test_config import nginx_test  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _conf(tmp_path: Path, body: str) -> str:
    path = tmp_path / "nginx.conf"
    path.write_text(f"events {{}}\nhttp {{\n    server {{\n        listen 127.0.0.1:8080;\n{body}\n    }}\n}}\n")
    return str(path)


@pytest.mark.parametrize(
    "body",
    [
        "expires 1h; expires 2h;",
        "expires abc;",
        'expires "@25h";',
        "expires later 1h;",
        'expires modified "@1h";',
        "add_header X-A a sometimes;",
        "location / { expires -; }",
    ],
)
def test_refused_like_nginx(tmp_path: Path, body: str) -> None:
    conf = _conf(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    want = nginx_test(conf, str(tmp_path))
    assert want != "OK"
    assert str(err.value) == want


def test_inheritance(tmp_path: Path) -> None:
    conf = _conf(tmp_path, """
        add_header X-A a;
        expires 1h;
        location /keep/ { }
        location /own/ { add_header X-B b always; expires off; location /own/in/ { expires max; } }
    """)  # fmt: skip
    (server,) = load_config(conf).servers
    keep, own = server.locations
    assert keep.headers == HeadersConf((("X-A", "a", False),), Expires("access", 3600))
    assert own.headers == HeadersConf((("X-B", "b", True),), None)
    assert own.locations[0].headers == HeadersConf((("X-B", "b", True),), Expires("max"))


NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


def _exp(conf: Expires, status: int = 200, headers: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    return apply_headers(HeadersConf((), conf), status, headers or [], lambda t: t, now=NOW)


def test_expires_values() -> None:
    assert _exp(Expires("access", 60)) == [("Expires", "Tue, 14 Nov 2023 22:14:20 GMT"), ("Cache-Control", "max-age=60")]
    assert _exp(Expires("access", -60)) == [("Expires", "Tue, 14 Nov 2023 22:12:20 GMT"), ("Cache-Control", "no-cache")]
    assert _exp(Expires("access", 0)) == [("Expires", "Tue, 14 Nov 2023 22:13:20 GMT"), ("Cache-Control", "max-age=0")]
    assert _exp(Expires("epoch")) == [("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"), ("Cache-Control", "no-cache")]
    lm = [("Last-Modified", "Tue, 14 Nov 2023 22:00:00 GMT")]
    assert _exp(Expires("modified", 3600), headers=lm)[1:] == [
        ("Expires", "Tue, 14 Nov 2023 23:00:00 GMT"), ("Cache-Control", "max-age=2800"),
    ]  # fmt: skip
    assert _exp(Expires("access", 60), status=404) == []
    replaced = _exp(Expires("max"), headers=[("Cache-Control", "private"), ("Expires", "0")])
    # ngx_http_set_expires(): both set where they stand
    assert replaced == [("Cache-Control", "max-age=315360000"), ("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")]


def test_expires_from_a_variable() -> None:
    assert parse_expires("1d", False) == Expires("access", 86400)
    assert parse_expires("@1h", True) == 'daily time cannot be used with "modified" parameter'
    conf = Expires("access", 0, "$arg_e")
    got = apply_headers(HeadersConf((), conf), 200, [], lambda t: "epoch", now=NOW)
    assert got == [("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"), ("Cache-Control", "no-cache")]
    assert apply_headers(HeadersConf((), conf), 200, [], lambda t: "junk", now=NOW) == []
    assert apply_headers(HeadersConf((), conf), 200, [], lambda t: "off", now=NOW) == []


def test_charset_recoding_refused(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "charset utf-8;\n        location / { source_charset koi8-r; }")
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert str(err.value) == (
        'ngxws does not recode responses: "source_charset koi8-r" differs from "charset utf-8"'
        f" in {conf}:6"
    )
    conf = _conf(tmp_path, "charset utf-8; override_charset on;")
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    assert str(err.value) == f'"override_charset on" would recode responses, which ngxws does not do in {conf}:5'


def test_charset_settings(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "charset utf-8; source_charset UTF-8;\n        location / { charset_types application/json; }")
    (server,) = load_config(conf).servers
    (loc,) = server.locations
    assert loc.headers.charset == "utf-8"
    assert loc.headers.charset_types == frozenset({"text/html", "application/json"})
