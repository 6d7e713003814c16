"""Static content (issue 12, item 1): the pure decisions of
``ngxws.http.static`` as tables, the config checks, and a 1 GiB file
served by a real ngxws with flat memory (the worker's VmRSS) and its last
byte by range.  The comparisons with nginx are in
``tests/differential/cases_static.py``."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from harness import Ngxws, assert_location_refused, free_port, read_head, wait_for

from ngxws.config.static import StaticConf
from ngxws.http.static import (
    Continue,
    FileInfo,
    Internal,
    Listing,
    Named,
    Redirect,
    Serve,
    Status,
    autoindex_html,
    content,
    etag_of,
    file_answer,
    map_uri_to_path,
    parse_ranges,
    safe_path,
    try_files,
)

ROOT = Path(__file__).resolve().parent.parent
MTIME = 1704164645  # Tue, 02 Jan 2024 03:04:05 GMT
TEN = FileInfo("file", 10, MTIME)


def fs(entries: dict[str, FileInfo]) -> object:
    """An injected stat over a table: missing paths are ENOENT."""

    def stat(path: str) -> FileInfo | int:
        return entries.get(path, errno.ENOENT)

    return stat


def no_vars(text: str) -> str:
    return text


# --- mapping URIs to paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "conf", "pattern", "modifier", "render", "path"),
    [
        ("/a.txt", StaticConf(root="/srv"), "/", "", no_vars, "/srv/a.txt"),
        ("/img/x.png", StaticConf(root="/data/", alias=True), "/img/", "", no_vars, "/data/x.png"),
        ("/img/x.png", StaticConf(root="/data", alias=True), "/img", "", no_vars, "/data/x.png"),
        ("/cap/x.txt", StaticConf(root="/d/$1.txt", alias=True, root_vars=True), r"^/cap/(.+)\.txt$", "~",
         lambda t: t.replace("$1", "x"), "/d/x.txt"),
        ("/u/x", StaticConf(root="/home/$1", root_vars=True), "~", "~", lambda t: t.replace("$1", "bob"), "/home/bob/u/x"),
    ],
)
def test_map_uri_to_path(uri: str, conf: StaticConf, pattern: str, modifier: str, render: object, path: str) -> None:
    assert map_uri_to_path(uri, conf, pattern, modifier, render) == path  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "ok"),
    [("/srv/a", True), ("/srv/../etc", False), ("/srv/a/../../x", False), ("/srv/a\x00b", False), ("/etc/x", False)],
)
def test_safe_path(path: str, ok: bool) -> None:
    assert safe_path("/srv", path) is ok


# --- the content phase ----------------------------------------------------------------

TREE = {
    "/srv/a.txt": TEN,
    "/srv/dir": FileInfo("dir", 4096, MTIME),
    "/srv/dir/index.html": FileInfo("file", 3, MTIME),
    "/srv/empty": FileInfo("dir", 4096, MTIME),
    "/srv/fifo": FileInfo("other", 0, MTIME),
}


@pytest.mark.parametrize(
    ("method", "uri", "args", "conf", "outcome"),
    [
        ("GET", "/a.txt", None, StaticConf(root="/srv"), Serve("/srv/a.txt", TEN)),
        ("HEAD", "/a.txt", None, StaticConf(root="/srv"), Serve("/srv/a.txt", TEN)),
        ("POST", "/a.txt", None, StaticConf(root="/srv"), Status(405)),
        ("PUT", "/a.txt", None, StaticConf(root="/srv"), Status(405)),
        ("GET", "/missing", None, StaticConf(root="/srv"), Status(404)),
        ("GET", "/fifo", None, StaticConf(root="/srv"), Status(404)),
        ("GET", "/dir", "x=1", StaticConf(root="/srv"), Redirect("/dir/?x=1")),
        ("GET", "/dir/", "x=1", StaticConf(root="/srv"), Internal("/dir/index.html", "x=1")),
        ("GET", "/dir/", None, StaticConf(root="/srv", index=("a.htm", "index.html")), Internal("/dir/index.html", None)),
        ("GET", "/dir/", None, StaticConf(root="/srv", index=("none", "/fallback.html")), Internal("/fallback.html", None)),
        ("GET", "/empty/", None, StaticConf(root="/srv"), Status(403)),
        ("GET", "/empty/", None, StaticConf(root="/srv", autoindex=True), Listing("/srv/empty/")),
        ("GET", "/nodir/", None, StaticConf(root="/srv"), Status(404)),
    ],
)
def test_content_phase(method: str, uri: str, args: str | None, conf: StaticConf, outcome: object) -> None:
    path = map_uri_to_path(uri, conf, "/", "", no_vars)
    assert content(method, uri, args, path, conf, fs(TREE)) == outcome  # type: ignore[arg-type]


def render_uri(uri: str) -> object:
    return lambda t: t.replace("$uri", uri)


@pytest.mark.parametrize(
    ("uri", "entries", "outcome"),
    [
        ("/a.txt", ("$uri", "=404"), Continue("/a.txt")),
        ("/nope", ("$uri", "=404"), Status(404)),
        ("/dir", ("$uri", "$uri/", "/index.html"), Continue("/dir/")),
        ("/nope", ("$uri", "$uri/", "/index.html?from=tf"), Internal("/index.html", "from=tf")),
        ("/nope", ("$uri", "@app"), Named("@app")),
        ("/a.txt/", ("$uri", "=404"), Status(404)),
    ],
)
def test_try_files(uri: str, entries: tuple[str, ...], outcome: object) -> None:
    conf = StaticConf(root="/srv", try_files=entries)
    assert try_files(uri, conf, "/", "", render_uri(uri), fs(TREE)) == outcome  # type: ignore[arg-type]


# --- validators, conditionals, ranges --------------------------------------------------


def test_etag_is_mtime_and_size_in_hex() -> None:
    assert etag_of(TEN) == '"65937d25-a"'


LM = "Tue, 02 Jan 2024 03:04:05 GMT"


@pytest.mark.parametrize(
    ("headers", "status", "offset", "length"),
    [
        ([], 200, 0, 10),
        ([("If-None-Match", '"65937d25-a"')], 304, 0, 0),
        ([("If-None-Match", 'W/"65937d25-a"')], 304, 0, 0),
        ([("If-None-Match", '"x"')], 200, 0, 10),
        ([("If-Modified-Since", LM)], 304, 0, 0),
        ([("If-Modified-Since", "Wed, 03 Jan 2024 00:00:00 GMT")], 200, 0, 10),
        ([("If-Unmodified-Since", "Mon, 01 Jan 2024 00:00:00 GMT")], 412, 0, 0),
        ([("If-Match", '"x"')], 412, 0, 0),
        ([("Range", "bytes=0-4")], 206, 0, 5),
        ([("Range", "bytes=-3")], 206, 7, 3),
        ([("Range", "bytes=9-")], 206, 9, 1),
        ([("Range", "bytes=10-")], 416, 0, 0),
        ([("Range", "bytes=0-6,2-8")], 200, 0, 10),  # several adding up to more: the whole file
        ([("Range", "bytes=1-2"), ("If-Range", '"x"')], 200, 0, 10),
        ([("Range", "bytes=1-2"), ("If-Range", LM)], 206, 1, 2),
    ],
)
def test_file_answer(headers: list[tuple[str, str]], status: int, offset: int, length: int) -> None:
    answer = file_answer(TEN, "text/plain", StaticConf(), headers)
    assert (answer.status, answer.offset, answer.length) == (status, offset, length)
    names = dict(answer.headers)
    if status in (200, 206):
        assert names["Content-Length"] == str(length)
        assert names["Last-Modified"] == LM and names["ETag"] == '"65937d25-a"'
    if status == 206:
        assert names["Content-Range"] == f"bytes {offset}-{offset + length - 1}/10"
    if status == 416:
        assert names == {"Content-Range": "bytes */10"}


@pytest.mark.parametrize(
    ("spec", "size", "result"),
    [
        ("0-0", 10, [(0, 1)]),
        (" 2 - 3 ", 10, [(2, 4)]),
        ("-0", 10, "416"),
        ("-20", 10, [(0, 10)]),
        ("5-2", 10, "416"),
        ("0-", 0, None),
        ("a-b", 10, "416"),
        ("1-2,5-6", 10, [(1, 3), (5, 7)]),
        ("99999999999999999999-", 10, "416"),
    ],
)
def test_parse_ranges(spec: str, size: int, result: object) -> None:
    assert parse_ranges(spec, size) == result


@pytest.mark.parametrize(
    ("spec", "max_ranges", "result"),
    [
        ("1-2,5-6", 2, [(1, 3), (5, 7)]),
        ("1-2,5-6,8-8", 2, None),  # one more than max_ranges: the whole file
        ("1-2", 1, [(1, 3)]),
        ("1-2,5-6", 1, None),
        ("0-0,1-1,2-2,3-3", None, [(0, 1), (1, 2), (2, 3), (3, 4)]),  # nginx 1.22: no allowance rule
    ],
)
def test_parse_ranges_max_ranges(spec: str, max_ranges: int | None, result: object) -> None:
    assert parse_ranges(spec, 10, max_ranges) == result


def test_multipart_answer_parts_add_up() -> None:
    """Several ranges: nginx's multipart/byteranges (ngx_http_range_multipart_header)."""
    numbers = iter([7])
    answer = file_answer(TEN, "text/plain", StaticConf(), [("Range", "bytes=0-1,-2")],
                         part_type="text/plain; charset=utf-8", boundary=numbers.__next__)  # fmt: skip
    b = "00000000000000000007"
    assert answer.status == 206 and answer.length == 0
    names = dict(answer.headers)
    assert names["Content-Type"] == f"multipart/byteranges; boundary={b}"
    assert "Content-Range" not in names and "Accept-Ranges" not in names
    assert answer.parts == (
        (f"\r\n--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/10\r\n\r\n".encode(), 0, 2),
        (f"\r\n--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 8-9/10\r\n\r\n".encode(), 8, 2),
    )
    assert answer.tail == f"\r\n--{b}--\r\n".encode()
    body = sum(len(p) + n for p, _, n in answer.parts) + len(answer.tail)
    assert names["Content-Length"] == str(body)


def test_max_ranges_0_turns_ranges_off() -> None:
    answer = file_answer(TEN, "text/plain", StaticConf(max_ranges=0), [("Range", "bytes=1-2")])
    assert (answer.status, answer.offset, answer.length) == (200, 0, 10)
    assert "Accept-Ranges" not in dict(answer.headers)


# --- autoindex ------------------------------------------------------------------------


def test_autoindex_html_layout() -> None:
    long = "x" * 60
    body = autoindex_html(
        "/d/",
        [("b.txt", FileInfo("file", 3, MTIME)), ("sub", FileInfo("dir", 0, MTIME)), (".h", TEN), (long, TEN)],
    ).decode()
    lines = body.split("\r\n")
    assert lines[:3] == ["<html>", "<head><title>Index of /d/</title></head>", "<body>"]
    assert lines[3] == '<h1>Index of /d/</h1><hr><pre><a href="../">../</a>'
    assert lines[4] == '<a href="sub/">sub/</a>' + " " * 46 + " 02-Jan-2024 03:04" + " " * 19 + "-"
    assert lines[5] == '<a href="b.txt">b.txt</a>' + " " * 45 + " 02-Jan-2024 03:04" + " " * 19 + "3"
    assert lines[6].startswith(f'<a href="{long}">{"x" * 47}..&gt;</a> 02-Jan-2024')
    assert ".h" not in body
    assert body.endswith("</pre><hr></body>\r\n</html>\r\n")


# --- config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("location / { root /a; alias /b/; }", '"alias" directive is duplicate, "root" directive was specified earlier'),
        ("location / { root /a; root /b; }", '"root" directive is duplicate'),
        ("location @x { alias /b/; }", 'the "alias" directive cannot be used inside the named location'),
        ("location / { try_files $uri; }", 'invalid number of arguments in "try_files" directive'),
        ("location / { root $document_root/x; }", 'the $document_root variable cannot be used in the "root" directive'),
        ("location / { autoindex maybe; }", 'invalid value "maybe" in "autoindex" directive'),
        ("location / { max_ranges -1; }", '"max_ranges" directive invalid number'),
        ("location / { max_ranges 1; max_ranges 2; }", '"max_ranges" directive is duplicate'),
    ],
)
def test_bad_static_config_is_refused_with_file_and_line(tmp_path: Path, block: str, message: str) -> None:
    assert_location_refused(tmp_path, block, message)


# --- a 1 GiB file: flat memory, the last byte by range -----------------------------------

GiB = 1024**3


def worker_pid(server: Ngxws) -> int:
    master = server.proc.pid
    found: list[int] = []

    def children() -> bool:
        try:
            found.extend(int(x) for x in Path(f"/proc/{master}/task/{master}/children").read_text().split())
        except OSError:
            pass
        return bool(found)

    assert wait_for(children, timeout=10)
    return found[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def serve_root(tmp_path: Path, docroot: Path) -> tuple[Ngxws, int]:
    """ngxws, one worker, serving ``docroot`` as its root on a free port."""
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\nevents {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{port};\n"
        f"  root {docroot};\n  location / {{ }}\n }}\n}}\n"
    )
    return Ngxws(conf, tmp_path, port), port


def test_one_gib_file_with_flat_memory_and_its_last_byte(tmp_path: Path) -> None:
    docroot = tmp_path / "www"
    docroot.mkdir()
    big = docroot / "big.bin"
    with open(big, "wb") as f:  # sparse but for the last byte
        f.truncate(GiB - 1)
        f.seek(GiB - 1)
        f.write(b"Z")
    server, port = serve_root(tmp_path, docroot)
    try:
        pid = worker_pid(server)
        # one small request first, so the baseline has the code paths loaded
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\nConnection: close\r\n\r\n")
            read_head(s)
        baseline = rss_kib(pid)
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], rss_kib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        received = 0
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head, rest = read_head(s)
            assert head.startswith(b"HTTP/1.1 200 ") and f"Content-Length: {GiB}".encode() in head
            received = len(rest)
            last = rest[-1:]
            deadline = time.monotonic() + 300
            while received < GiB and time.monotonic() < deadline:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
                last = chunk[-1:]
        elapsed = time.monotonic() - start
        done.set()
        sampler.join(5)
        assert received == GiB and last == b"Z"
        growth = peak[0] - baseline
        print(f"\n1 GiB in {elapsed:.2f}s; worker VmRSS {baseline} kB, peak growth {growth} kB")
        assert growth < 20 * 1024, f"worker VmRSS grew {growth} kB"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-1\r\nConnection: close\r\n\r\n")
            head, rest = read_head(s)
            while len(rest) < 1:
                more = s.recv(10)
                if not more:
                    break
                rest += more
        assert head.startswith(b"HTTP/1.1 206 ")
        assert f"Content-Range: bytes {GiB - 1}-{GiB - 1}/{GiB}".encode() in head
        assert rest == b"Z"
    finally:
        code, _, err = server.stop()
    assert code == 0, err


def test_symlinked_root_and_no_escape_through_the_uri(tmp_path: Path) -> None:
    """Paths above the root never reach the file system: nginx's 400s."""
    (tmp_path / "www").mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "www" / "in.txt").write_text("in")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{port};\n  root {tmp_path / 'www'};\n"
        "  location / { }\n }\n}\n"
    )
    server = Ngxws(conf, tmp_path, port)
    try:
        for target, status in [
            ("/in.txt", 200), ("/../secret.txt", 400), ("/%2e%2e/secret.txt", 400),
            ("/%2E%2E%2fsecret.txt", 400), ("/in.txt%00", 400), ("/x/..%2f..%2fsecret.txt", 400),
        ]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                head, _ = read_head(s)
            assert head.startswith(f"HTTP/1.1 {status} ".encode()), (target, head)
    finally:
        server.stop()
    assert os.path.exists(tmp_path / "secret.txt")


def test_read_small_reads_what_is_there(tmp_path: Path) -> None:
    """A short answer's body read to go out with its head in one write: the
    range asked, fewer bytes when the file was cut meanwhile (the caller
    then closes, as nginx does when sendfile comes up short), None when it
    cannot be opened."""
    from ngxws.proxy.static_send import SMALL_FILE, read_small

    f = tmp_path / "a.txt"
    f.write_bytes(b"0123456789")
    assert read_small(str(f), 0, 10) == b"0123456789"
    assert read_small(str(f), 3, 4) == b"3456"
    assert read_small(str(f), 6, 10) == b"6789"  # truncated after the stat
    assert read_small(str(tmp_path / "gone.txt"), 0, 10) is None
    assert SMALL_FILE >= 1024  # bench W9's 1 KiB file goes this way


def test_small_and_large_files_over_keep_alive_http_0_9_and_head(tmp_path: Path) -> None:
    """Head and body of a short file in one write, of a longer one by
    sendfile: the same bytes on one keep-alive connection, a HEAD gets the
    head alone, HTTP/0.9 the body alone."""
    docroot = tmp_path / "www"
    docroot.mkdir()
    small = bytes(range(256)) * 4  # 1 KiB, with \r\n\r\n-free binary bytes
    large = b"L" * (64 * 1024 + 3)
    (docroot / "small.bin").write_bytes(small)
    (docroot / "large.bin").write_bytes(large)
    (docroot / "crlf.txt").write_bytes(b"a\r\n\r\nb")
    server, port = serve_root(tmp_path, docroot)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for name, body in (("small.bin", small), ("large.bin", large), ("small.bin", small)):
                s.sendall(f"GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head, rest = read_head(s)
                assert head.startswith(b"HTTP/1.1 200 OK\r\n") and f"Content-Length: {len(body)}".encode() in head
                while len(rest) < len(body):
                    rest += s.recv(1 << 16)
                assert rest == body
            s.sendall(b"HEAD /small.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head, rest = read_head(s)
            assert b"Content-Length: 1024" in head and rest == b"" and s.recv(100) == b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /crlf.txt\r\n")  # HTTP/0.9: no head, the body as it is
            got = b""
            while chunk := s.recv(100):
                got += chunk
            assert got == b"a\r\n\r\nb"
    finally:
        server.stop()
