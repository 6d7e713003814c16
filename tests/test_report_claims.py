"""Every ``ngxws check`` claim about websocket locations holds on a running ngxws.

For each fixture config with a golden report (``tests/configs/*/check.txt``)
the conf is copied and rewritten through crossplane only where it ties it to
a machine: listens become free loopback ports, every upstream address (peers,
``unix:``, names, variables) a recording backend here, absolute log and pid
paths the temporary folder.  Then, for every proxied location the report
lists, a websocket upgrade is sent through ngxws and what the backend got is
held against the report's ``upgrade:`` lines:

- "Upgrade header is not passed on"  <=>  no Upgrade header reached it;
- '"Connection: close"'              <=>  it got ``Connection: close``;
- "HTTP/1.0"                         <=>  the request line says HTTP/1.0
  (else HTTP/1.1);
- always: a 101 answer opens the tunnel (a frame gets through).

The rewritten conf's report must make the same ``upgrade:`` claims as the
golden, so the claims checked are the golden's.  ``ws_stat`` locations must
answer the statistics page.  Named locations (``@name``) are reached only by
internal redirects; they are not requested.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import crossplane
import pytest
from harness import (
    ROOT,
    Ngxws,
    accept_in_threads,
    free_port,
    mask_frame,
    read_at_least,
    read_head,
    switching_protocols,
    upgrade_request,
)

from ngxws.config.loader import load_config
from ngxws.config.model import Location, Server
from ngxws.config.report import render_check_report

CONFIGS = ROOT / "tests" / "configs"
FIXTURES = sorted(p.name for p in CONFIGS.iterdir() if (p / "check.txt").exists())
# A request path for each regex location of the fixtures.
REGEX_SAMPLES = {"^/var/(?<rest>.*)$": "/var/x"}
FRAME = mask_frame(1, b"through the tunnel")


# --- a backend that records each request head and always answers 101 ------------------


@contextmanager
def recording_backend() -> Iterator[tuple[int, queue.Queue[tuple[bytes, bytes]]]]:
    """Each connection puts (request head, the bytes that followed it) on the queue."""
    got: queue.Queue[tuple[bytes, bytes]] = queue.Queue()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve(conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=10)
            conn.sendall(switching_protocols(head))
            conn.settimeout(10)
            try:
                rest = read_at_least(conn, rest, len(FRAME))
            except OSError:
                pass
            got.put((head, rest))

    accept_in_threads(srv, serve)
    try:
        yield int(srv.getsockname()[1]), got
    finally:
        srv.close()


# --- rewriting a fixture to run here ----------------------------------------------------


def _walk(block: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for stmt in block:
        yield stmt
        yield from _walk(stmt.get("block", []))


def _parse(path: Path) -> list[dict[str, Any]]:
    payload = crossplane.parse(
        str(path), single=True, comments=False, strict=False, check_ctx=False, check_args=False
    )
    assert payload["status"] == "ok", payload
    parsed: list[dict[str, Any]] = payload["config"][0]["parsed"]
    return parsed


def _proxy_target(url: str, upstreams: set[str], backend: int) -> str:
    """proxy_pass URL -> the same URI part, sent to the backend (plain http)."""
    rest = url.split("://", 1)[1]
    if rest.startswith("unix:"):
        uri = rest.split(":", 2)[2] if rest.count(":") >= 2 else ""
        return f"http://127.0.0.1:{backend}{uri}"
    host, slash, uri = rest.partition("/")
    if host.lower() in upstreams:
        return f"http://{host}{slash}{uri}"
    return f"http://127.0.0.1:{backend}{slash}{uri}"


def localize(case: str, tmp: Path, backend: int) -> Path:
    """Copy the fixture into ``tmp/conf`` and rewrite it; return the conf path."""
    root = tmp / "conf"
    shutil.copytree(CONFIGS / case, root)
    (tmp / "logs").mkdir()  # relative log paths resolve under the prefix, as nginx's
    files = [
        p for p in root.rglob("*") if p.is_file() and p.name not in ("check.txt", "mime.types")
    ]
    trees = {p: _parse(p) for p in files}
    upstreams = {
        s["args"][0].lower()
        for t in trees.values()
        for s in _walk(t)
        if s["directive"] == "upstream"
    }
    for path, tree in trees.items():
        in_upstream: set[int] = {
            id(s) for u in _walk(tree) if u["directive"] == "upstream" for s in u.get("block", [])
        }
        for s in _walk(tree):
            d, args = s["directive"], s["args"]
            if d == "listen":
                s["args"] = [f"127.0.0.1:{free_port()}"] + [
                    a for a in args if a == "default_server"
                ]
            elif d == "proxy_pass":
                s["args"] = [_proxy_target(args[0], upstreams, backend)]
            elif d == "server" and id(s) in in_upstream:
                s["args"] = [f"127.0.0.1:{backend}"] + [
                    a for a in args[1:] if "=" in a or a in ("backup", "down")
                ]
            elif d in ("ws_log", "pid", "error_log") and os.path.isabs(args[0]):
                s["args"] = [str(tmp / f"{d}-{os.path.basename(args[0])}"), *args[1:]]
        path.write_text(crossplane.build(tree, indent=4, header=False) + "\n")
    return root / "nginx.conf"


# --- the claims -------------------------------------------------------------------------


def _locations(locs: tuple[Location, ...]) -> Iterator[Location]:
    for loc in locs:
        yield loc
        yield from _locations(loc.locations)


def _request_path(loc: Location) -> str:
    if loc.modifier in ("", "^~", "="):
        return loc.pattern
    assert loc.pattern in REGEX_SAMPLES, f"add a sample path for location {loc.pattern}"
    return REGEX_SAMPLES[loc.pattern]


def _claims(report: str) -> list[list[str]]:
    """Per proxied location, in report order, its ``upgrade:`` lines."""
    out: list[list[str]] = []
    for line in report.splitlines():
        text = line.strip()
        if re.match(r"location .* -> ", text):
            out.append([])
        elif text.startswith("upgrade: "):
            out[-1].append(text)
    return out


def _host(server: Server) -> str:
    names = [
        n for n in server.server_names if n and n[0] not in "~*." and n != "_" and "*" not in n
    ]
    return names[0] if names else "localhost"


def _exchange(port: int, host: str, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(upgrade_request(path, host=host))
        head, rest = read_head(sock, timeout=10)
        assert head.startswith(b"HTTP/1.1 101"), (path, head)
        sock.sendall(FRAME)
        return rest


def _stats(port: int, host: str, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head, body = read_head(sock, timeout=10)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return head + b"\r\n\r\n" + body
            body += chunk


@pytest.mark.parametrize("case", FIXTURES)
def test_report_claims_hold_on_a_running_ngxws(case: str, tmp_path: Path) -> None:
    golden = (CONFIGS / case / "check.txt").read_text()
    with recording_backend() as (backend, got):
        conf = localize(case, tmp_path, backend)
        config = load_config(str(conf), str(tmp_path))
        report = render_check_report(config)
        claims = _claims(report)
        assert claims == _claims(golden), report  # the golden's claims are the ones checked
        first_port = config.servers[0].listens[0].port
        server = Ngxws(conf, tmp_path, first_port)
        try:
            checked = 0
            proxied = [
                (srv, loc)
                for srv in config.servers
                for loc in _locations(srv.locations)
                if loc.proxy_pass is not None
            ]
            assert len(proxied) == len(claims)
            for (srv, loc), lines in zip(proxied, claims, strict=True):
                if loc.modifier == "@":
                    continue  # reached only by internal redirects
                _exchange(srv.listens[0].port, _host(srv), _request_path(loc))
                head, after = got.get(timeout=10)
                request_line, _, fields = head.partition(b"\r\n")
                names = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (f.partition(b":") for f in fields.split(b"\r\n"))
                }
                where = f"{case}: location {loc.pattern}: {head!r}"
                said = " ".join(lines)
                assert ("Upgrade header is not passed on" in said) is (b"upgrade" not in names), (
                    where
                )
                assert ('"Connection: close"' in said) is (names.get(b"connection") == b"close"), (
                    where
                )
                version = b"HTTP/1.0" if "HTTP/1.0" in said else b"HTTP/1.1"
                assert request_line.endswith(b" " + version), where
                assert after == FRAME, where  # the 101 opened the tunnel
                checked += 1
            assert checked >= 1
            for srv in config.servers:
                for loc in _locations(srv.locations):
                    if loc.ws_stat:
                        answer = _stats(srv.listens[0].port, _host(srv), _request_path(loc))
                        assert answer.startswith(b"HTTP/1.1 200"), answer
                        assert b"\r\n\r\nWebSocket connections: " in answer, answer
        finally:
            server.stop()
