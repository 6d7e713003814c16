"""Bad rewrite-module config is refused as nginx 1.22 refuses it (the
messages below are ``nginx -t``'s, recorded from Debian's nginx), with
file:line and nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from ngxws.config.loader import ConfigError, load_config

BAD = [
    ("rewrite ^ /x foo;", 'invalid parameter "foo"'),
    ("rewrite ^(a /x;", 'pcre2_compile() failed: missing closing parenthesis in "^(a"'),
    ('rewrite ^ "";', "empty replacement"),
    ("set x 1;", 'invalid variable name "x"'),
    ("if ($a foo b) { return 200; }", 'unexpected "foo" in condition'),
    ("if (-q /x) { return 200; }", 'invalid condition "-q"'),
    ("if (abc) { return 200; }", 'invalid condition "abc"'),
    ("if (!$a) { return 200; }", 'invalid condition "!$a"'),
    ('if ($a ~ "(") { return 200; }', 'pcre2_compile() failed: missing closing parenthesis in "("'),
]


@pytest.mark.parametrize(("directive", "message"), BAD, ids=[d for d, _ in BAD])
def test_refused_like_nginx(tmp_path: Path, directive: str, message: str) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{ server {{ listen 127.0.0.1:1; location / {{\n{directive}\n}} }} }}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert str(info.value) == f"{message} in {conf}:3"
