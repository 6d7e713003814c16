"""``gzip_static`` (ngx_http_gzip_static_module): its directive through the
loader (inheritance, nginx's enum slot) and the pure decision
``ngxws.http.static.precompressed`` -- ngx_http_gzip_static_handler()'s
order of tests as a table over a stat of fake files.  The bytes on the wire
are compared with nginx in tests/differential/cases_gzip_static.py.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from ngxws.config.loader import load_config
from ngxws.http.static import FileInfo, Serve, Status, precompressed

FILES: dict[str, FileInfo | int] = {
    "/r/a.txt.gz": FileInfo("file", 30, 1000),
    "/r/d.txt.gz": FileInfo("dir", 0, 1000),
    "/r/fifo.txt.gz": FileInfo("other", 0, 1000),
    "/r/locked.txt.gz": errno.EACCES,
    "/r/long.txt.gz": errno.ENAMETOOLONG,
}


def _stat(path: str) -> FileInfo | int:
    return FILES.get(path, errno.ENOENT)


GZ = Serve("/r/a.txt.gz", FileInfo("file", 30, 1000))

# mode, method, uri, accepts gzip, gzip_vary -> (outcome, r->gzip_vary)
TABLE = [
    ("off", "GET", "/a.txt", True, True, None, False),
    ("on", "GET", "/a.txt", True, False, GZ, True),
    ("on", "HEAD", "/a.txt", True, False, GZ, True),
    ("on", "POST", "/a.txt", True, True, None, False),
    ("on", "GET", "/a.txt/", True, True, None, False),  # a URI ending in "/": the index's business
    ("on", "GET", "/a.txt", False, False, None, False),  # not asked for gzip, no Vary to set: not even a stat
    ("on", "GET", "/a.txt", False, True, None, True),  # the .gz exists: Vary on the plain file
    ("on", "GET", "/none.txt", False, True, None, False),
    ("on", "GET", "/none.txt", True, True, None, False),
    ("on", "GET", "/d.txt", True, True, None, True),  # a directory: declined, the Vary stays
    ("on", "GET", "/fifo.txt", True, False, Status(404), True),  # "... is not a regular file"
    ("on", "GET", "/locked.txt", True, True, None, False),  # logged by nginx, declined before the Vary
    ("on", "GET", "/long.txt", True, True, None, False),
    ("always", "GET", "/a.txt", False, False, GZ, False),  # no ngx_http_gzip_ok(), no Vary
    ("always", "GET", "/a.txt", True, True, GZ, False),
    ("always", "GET", "/d.txt", False, True, None, False),
    ("always", "GET", "/fifo.txt", False, False, Status(404), False),
]


@pytest.mark.parametrize(("mode", "method", "uri", "ok", "vary", "outcome", "gzip_vary"), TABLE)
def test_precompressed(
    mode: str, method: str, uri: str, ok: bool, vary: bool, outcome: Serve | Status | None, gzip_vary: bool
) -> None:
    asked: list[bool] = []

    def accepted() -> bool:
        asked.append(ok)
        return ok

    found, made_vary, tested = precompressed(mode, method, uri, "/r" + uri, accepted, vary, _stat)
    assert (found, made_vary) == (outcome, gzip_vary)
    # ngx_http_gzip_ok() is asked for "on" only, after the method and URI tests
    assert asked == ([ok] if mode == "on" and method in ("GET", "HEAD") and not uri.endswith("/") else [])
    assert tested == (asked[0] if asked else None)  # the answer kept for the gzip filter


def test_directive_inherited_and_caseless(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("""events {}
http {
    gzip_static ON;
    server {
        listen 8080;
        location /a { }
        location /b { gzip_static always; }
        location /c { gzip_static off; }
    }
    server {
        listen 8081;
        gzip_static off;
        location /d { }
    }
}
""")
    config = load_config(str(conf))
    static = {loc.pattern: loc.gzip.static for server in config.servers for loc in server.locations}
    assert static == {"/a": "on", "/b": "always", "/c": "off", "/d": "off"}
    assert not [i.name for i in config.ignored]  # honoured: not in the report's ignored list
