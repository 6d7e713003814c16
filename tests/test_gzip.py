"""The pure parts of gzip (ngxws.http.gzip_filter, ngxws.config.gzip):
ngx_http_gzip_accept_encoding's table, the MSIE 6 flag, the header-filter
test, ngx_http_gzip_ok's gzip_proxied rules, the head of a compressed
answer, the window/memory reduction and the bytes (zlib's gzip stream,
the same however the body is split), and the directives' inheritance read
from real conf files.  The answers themselves are compared with nginx in
tests/differential/cases_gzip.py."""

from __future__ import annotations

import gzip as gzip_module
import random
import zlib
from pathlib import Path

import pytest

from ngxws.config.gzip import GzipConf
from ngxws.config.loader import load_config
from ngxws.config.model import Location
from ngxws.http.gzip_filter import (
    GzipStream,
    accepted,
    accepts_gzip,
    compressed_headers,
    decide,
    eligible,
    gzip_body,
    is_msie6,
    memory,
)
from ngxws.http.request import RequestHead

ON = GzipConf(enabled=True)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("gzip", True),
        ("gzip, deflate", True),
        ("gzip,deflate,sdch", True),
        ("deflate, gzip", True),
        ("deflate,gzip", True),
        ("GZIP", True),
        ("gzip;q=0", False),
        ("gzip; q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=0.001", True),
        ("gzip;q=0.5, br", True),
        ("gzip;q=1", True),
        ("gzip;q=1.000", True),
        ("gzip;q=1.0001", False),  # more than three decimals
        ("gzip;q=1.5", False),
        ("gzip ;q=0", False),
        ("gzip;level=1", False),
        ("gzip;", True),
        ("x-gzip", False),
        ("gzipx", False),
        ("x-gzip, gzip", True),
        ("x-gzipgzip", True),  # nginx searches on right after a "gzip" that did not start a token
        ("deflate", False),
        ("gz", False),
        ("", False),
    ],
)
def test_accept_encoding(value: str, ok: bool) -> None:
    assert accepts_gzip(value) is ok


@pytest.mark.parametrize(
    ("ua", "msie6"),
    [
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", True),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)", False),
        ("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)", True),
        ("Mozilla/4.0 (compatible; MSIE 4.01; Windows 95)", True),
        ("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)", False),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1) Opera 8.0", False),
        ("MSIE 6.0", True),
        ("MSIE 6.", False),  # ngx_http_process_user_agent wants more than "MSIE 6."
        ("curl/8.0", False),
    ],
)
def test_msie6(ua: str, msie6: bool) -> None:
    assert is_msie6(ua) is msie6


def test_eligible() -> None:
    assert eligible(ON, 200, "text/html", 100)
    assert eligible(ON, 404, "text/html; charset=utf-8", -1)
    assert eligible(ON, 403, "TEXT/HTML", 20)
    assert not eligible(ON, 200, "text/html", 19)  # gzip_min_length 20
    assert not eligible(ON, 500, "text/html", 100)
    assert not eligible(ON, 206, "text/html", 100)
    assert not eligible(ON, 200, "text/plain", 100)
    assert not eligible(ON, 200, None, 100)
    assert not eligible(ON, 200, "text/html", 100, encoded=True)
    assert not eligible(GzipConf(), 200, "text/html", 100)
    assert eligible(GzipConf(enabled=True, types=None), 200, None, 100)  # gzip_types *
    # the type is cut only at a charset parameter (ngx_http_upstream_copy_content_type)
    assert eligible(ON, 200, 'text/html;  Charset="utf-8"', 100)
    assert not eligible(ON, 200, "text/html; level=1", 100)
    assert not eligible(ON, 200, "text/html; level=1; charset=utf-8", 100)
    assert not eligible(ON, 200, "text/html;", 100)


def _head(*headers: tuple[str, str], version: str = "1.1") -> RequestHead:
    return RequestHead("GET", "/", version, [("Host", "a"), *headers], True)


AE = ("Accept-Encoding", "gzip")
VIA = ("Via", "1.1 cdn")


def test_gzip_ok() -> None:
    assert accepted(ON, _head(AE), [])
    assert not accepted(ON, _head(), [])
    assert not accepted(ON, _head(AE, version="1.0"), [])
    assert accepted(GzipConf(enabled=True, http_version="1.0"), _head(AE, version="1.0"), [])
    assert not accepted(ON, _head(AE, VIA), [])  # gzip_proxied off
    msie = ("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)")
    assert accepted(ON, _head(AE, msie), [])
    assert not accepted(GzipConf(enabled=True, disable_msie6=True), _head(AE, msie), [])


@pytest.mark.parametrize(
    ("words", "asked", "response", "ok"),
    [
        ({"any"}, [], [], True),
        ({"off", "any"}, [], [], False),
        ({"auth"}, [("Authorization", "Basic x")], [], True),
        ({"auth"}, [], [], True),  # nothing else declines either
        ({"expired"}, [], [("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")], True),
        ({"expired"}, [], [("Expires", "Thu, 31 Dec 2037 23:55:55 GMT")], False),
        ({"no-cache"}, [], [("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")], False),  # Expires decides
        ({"expired"}, [], [("Expires", "soon")], False),
        ({"no-cache"}, [], [("Cache-Control", "private, no-cache")], True),
        ({"no-store"}, [], [("Cache-Control", "max-age=0"), ("Cache-Control", "No-Store")], True),
        ({"private"}, [], [("Cache-Control", "no-cache")], False),
        ({"no-cache"}, [], [("Cache-Control", "no-cache=set-cookie")], False),
        ({"no_last_modified"}, [], [("Last-Modified", "Mon, 01 Jan 2001 00:00:00 GMT")], False),
        ({"no_etag"}, [], [("ETag", '"x"')], False),
        ({"no_etag"}, [], [], True),
    ],
)
def test_gzip_proxied(
    words: set[str], asked: list[tuple[str, str]], response: list[tuple[str, str]], ok: bool
) -> None:
    conf = GzipConf(enabled=True, proxied=frozenset(words))
    assert accepted(conf, _head(AE, VIA, *asked), response, now=1_700_000_000) is ok


def test_gzip_disable_regexes_after_proxied() -> None:
    import re

    conf = GzipConf(enabled=True, disable=(re.compile("bot", re.I),))
    assert not accepted(conf, _head(AE, ("User-Agent", "GoodBOT")), [])
    assert accepted(conf, _head(AE, ("User-Agent", "browser")), [])
    assert accepted(conf, _head(AE), [])  # no User-Agent: nothing to match


def test_decide_vary_without_accept_encoding() -> None:
    conf = GzipConf(enabled=True, vary=True)
    headers = [("Content-Type", "text/html")]
    assert decide(conf, _head(), 200, headers, 100) == (True, None)
    assert decide(conf, _head(AE), 200, headers, 100) == (True, conf)
    assert decide(conf, _head(AE), 200, [("Content-Type", "image/png")], 100) == (False, None)


def test_compressed_headers() -> None:
    headers = [
        ("Content-Type", "text/html"), ("Content-Length", "100"), ("Last-Modified", "x"),
        ("ETag", '"abc"'), ("Accept-Ranges", "bytes"), ("X-A", "1"),
    ]  # fmt: skip
    assert compressed_headers(headers) == [
        ("Content-Type", "text/html"), ("Last-Modified", "x"), ("ETag", 'W/"abc"'), ("X-A", "1"),
        ("Content-Encoding", "gzip"),
    ]  # fmt: skip
    assert compressed_headers([("ETag", 'W/"abc"')]) == [("ETag", 'W/"abc"'), ("Content-Encoding", "gzip")]
    assert compressed_headers([("ETag", "abc")]) == [("Content-Encoding", "gzip")]


@pytest.mark.parametrize(
    ("length", "expected"),
    [(-1, (15, 8)), (0, (15, 8)), (1, (9, 2)), (20, (9, 2)), (5000, (13, 6)), (16122, (15, 8)), (16121, (14, 7))],
)
def test_memory(length: int, expected: tuple[int, int]) -> None:
    assert memory(ON, length) == expected


@pytest.mark.parametrize(("level", "xfl"), [(1, 4), (5, 0), (9, 2)])
def test_gzip_header_and_roundtrip(level: int, xfl: int) -> None:
    body = b"hello gzip " * 500
    data = gzip_body(GzipConf(enabled=True, level=level), body)
    # zlib's gzip header as nginx 1.22 gets it: no mtime, XFL by level, OS 3 (Unix)
    assert data[:10] == bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, xfl, 3])
    assert gzip_module.decompress(data) == body
    assert int.from_bytes(data[-8:-4], "little") == zlib.crc32(body)
    assert int.from_bytes(data[-4:], "little") == len(body)


def test_stream_independent_of_how_the_body_is_split() -> None:
    rng = random.Random(7)
    body = b"".join(b"%d " % rng.randrange(1000) for _ in range(100_000))
    whole = gzip_body(ON, body)
    for _ in range(5):
        stream, out, at = GzipStream(ON, len(body)), [], 0
        while at < len(body):
            step = rng.randrange(1, 70_000)
            out.append(stream.compress(body[at : at + step]))
            at += step
        out.append(stream.finish())
        assert b"".join(out) == whole


def test_stream_sync_flush_still_decompresses() -> None:
    stream = GzipStream(ON, -1, flush=True)
    first = stream.compress(b"a" * 1000)
    assert zlib.decompressobj(31).decompress(first) == b"a" * 1000  # usable at once
    assert gzip_module.decompress(first + stream.compress(b"b" * 10) + stream.finish()) == b"a" * 1000 + b"b" * 10


# -- the directives, from real conf files --------------------------------------------


def _locations(tmp_path: Path, http: str) -> dict[str, Location]:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{\n{http}\n}}\n")
    config = load_config(str(conf))
    return {loc.pattern: loc for server in config.servers for loc in server.locations}


def test_inheritance(tmp_path: Path) -> None:
    locs = _locations(tmp_path, """
        gzip on;
        gzip_types text/plain;
        gzip_proxied expired;
        gzip_proxied no-cache;
        gzip_disable "bot" msie6;
        gzip_comp_level 4;
        server {
            listen 8080;
            gzip_vary on;
            location /a { }
            location /b { gzip_types application/json; gzip_disable "spider"; gzip_proxied any; }
            location /c { gzip_types image/png *; gzip off; gzip_http_version 1.0; gzip_min_length 1k; }
        }
    """)  # fmt: skip
    a, b, c = locs["/a"].gzip, locs["/b"].gzip, locs["/c"].gzip
    assert (a.enabled, a.level, a.vary, a.min_length, a.http_version) == (True, 4, True, 20, "1.1")
    assert a.types == frozenset({"text/html", "text/plain"})
    assert a.proxied == frozenset({"expired", "no-cache"})  # ORed within the block
    assert ([r.pattern for r in a.disable], a.disable_msie6) == (["bot"], True)
    assert b.types == frozenset({"text/html", "application/json"})  # replaced, text/html kept
    assert ([r.pattern for r in b.disable], b.disable_msie6) == (["spider"], True)  # msie6 inherited
    assert b.proxied == frozenset({"any"})
    assert (c.enabled, c.types, c.http_version, c.min_length) == (False, None, "1.0", 1024)


def test_duplicate_mime_type_warns(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n    gzip_types text/html Text/Plain text/plain;\n}\n")
    config = load_config(str(conf))
    assert any('duplicate MIME type "text/html"' in w for w in config.warnings)
    assert any(f'duplicate MIME type "text/plain" in {conf}:3' in w for w in config.warnings)


def test_gzip_is_honoured_in_the_report(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n    gzip on;\n    gzip_types text/css;\n    gzip_buffers 16 8k;\n}\n")
    config = load_config(str(conf))
    assert [i.name for i in config.ignored] == ["gzip_buffers"]
    assert config.ignored[0].harmless


# -- ngxws's own answers: its error page and the ws_stat page --------------------------


def _raw_get(port: int, path: str, extra: str = "") -> tuple[str, bytes]:
    import socket
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from harness import read_until_closed

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n{extra}Connection: close\r\n\r\n".encode())
        data = read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1") + "\r\n", body


def _dechunk(body: bytes) -> bytes:
    out, at = b"", 0
    for _ in range(10_000):
        end = body.index(b"\r\n", at)
        size = int(body[at:end], 16)
        if size == 0:
            return out
        out += body[end + 2 : end + 2 + size]
        at = end + 2 + size + 2
    raise AssertionError("too many chunks")


def test_own_pages_compressed(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from harness import ngxws
    from ports import free_port

    from ngxws.http.responses import error_body

    port = free_port()
    conf = f"""
events {{}}
http {{
    gzip on;
    gzip_types text/plain;
    server {{
        listen 127.0.0.1:{port};
        location = /websocket_status {{ ws_stat; gzip_vary on; }}
        location /nothing/ {{ return 404; }}
    }}
}}
"""
    with ngxws(conf, tmp_path, port):
        head, body = _raw_get(port, "/nothing/x", "Accept-Encoding: gzip\r\n")
        assert head.startswith("HTTP/1.1 404 ")
        assert "\r\nContent-Encoding: gzip" in head and "Transfer-Encoding: chunked" in head
        assert "Content-Length" not in head
        assert gzip_module.decompress(_dechunk(body)) == error_body(404)
        head, body = _raw_get(port, "/websocket_status", "Accept-Encoding: gzip\r\n")
        assert "\r\nContent-Encoding: gzip" in head and "\r\nVary: Accept-Encoding\r\n" in head
        assert gzip_module.decompress(_dechunk(body)).startswith(b"WebSocket connections:")
        head, body = _raw_get(port, "/websocket_status")  # no Accept-Encoding: plain, Vary all the same
        assert "Content-Encoding" not in head and "\r\nVary: Accept-Encoding\r\n" in head
        assert body.startswith(b"WebSocket connections:")
