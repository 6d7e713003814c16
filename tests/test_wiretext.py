"""Config text as bytes (``ngxws.config.wiretext``): byte text and back."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ngxws.config.loader import load_config
from ngxws.config.report import render_check_report
from ngxws.config.wiretext import shown, wire


def test_wire_is_the_utf8_bytes_one_char_each() -> None:
    assert wire("“stats”").encode("latin-1") == "“stats”".encode()
    assert wire("plain") == "plain"
    assert wire("é") == "\u00c3\u00a9"


@given(st.text())
def test_shown_undoes_wire(text: str) -> None:
    assert shown(wire(text)) == text
    assert wire(text).encode("latin-1") == text.encode("utf-8", "surrogateescape")


def test_config_strings_reach_the_model_as_byte_text(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        'events {}\nhttp {\n  server {\n    listen 127.0.0.1:1;\n    return 200 "héllo ✓";\n'
        '    location / { auth_basic "“stats”"; proxy_set_header X-A "café"; proxy_pass http://127.0.0.1:2; }\n'
        "  }\n}\n",
        encoding="utf-8",
    )
    config = load_config(str(conf))
    server = config.servers[0]
    assert server.return_ is not None and server.return_.text is not None
    assert server.return_.text.encode("latin-1") == "héllo ✓".encode()
    loc = server.locations[0]
    assert loc.access.auth_basic is not None
    assert loc.access.auth_basic.encode("latin-1") == "“stats”".encode()
    assert ("X-A", wire("café")) in loc.proxy.set_headers
    # ngxws check shows the text as written
    assert "  return 200 héllo ✓ (before any location)" in render_check_report(config)
