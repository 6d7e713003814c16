"""``stub_status`` against Debian's nginx: the same page for the same
connections, scene by scene.

Both servers run one conf: the status page, a plain ``return`` location and
a websocket location proxied to a recording backend.  Each scene opens (or
keeps) connections in a given state -- idle from the start, one with half a
request head sent, one idle after a keep-alive request, an open websocket
tunnel -- and then reads the page on a connection of its own.  What must be
equal: the page's text with the numbers taken out, the active / reading /
writing / waiting numbers, and how far accepts, handled and requests moved
since the first page (their absolute values include the harness's own
"is it listening yet" connections, which differ per server).  Also the
answers to HEAD and POST on the page.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from oracle import NGINX, WS_FRAME, Group, Running, _read_response, get, req, upgrade  # noqa: E402

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian nginx not installed")

GROUP = Group("stub-status", """
    server {
        listen 127.0.0.1:@L0@;
        location = /basic_status { stub_status; }
        location = /tagged { stub_status; add_header X-Status on; }
        location = /vars {
            add_header X-Active $connections_active;
            return 200 "r=$connections_reading w=$connections_writing k=$connections_waiting\n";
        }
        location /plain/ { return 200 "plain\\n"; }
        location /ws/ {
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://127.0.0.1:@B0@;
        }
    }
""")

_PAGE = re.compile(
    rb"Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \n"
    rb"Reading: (\d+) Writing: (\d+) Waiting: (\d+) \n"
)
SETTLE = 0.3  # for a server to take in what a scene did (accept, read, close)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    r = Running(GROUP)
    yield r
    r.close()


def _connect(running: Running, kind: str) -> socket.socket:
    _family, addr = running.sides[kind].address("L0")
    sock = socket.create_connection(addr, timeout=5)  # type: ignore[arg-type]
    return sock


def _ask(running: Running, kind: str, request: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    sock = _connect(running, kind)
    try:
        sock.sendall(request)
        resp, _ = _read_response(sock, b"", request.startswith(b"HEAD "))
        assert resp is not None
        return resp.status, [(n.lower(), v) for n, v in resp.headers], resp.body
    finally:
        sock.close()


def _page(running: Running, kind: str, path: str = "/basic_status") -> tuple[int, ...]:
    status, headers, body = _ask(running, kind, get(path))
    assert status == 200, (kind, status, body)
    m = _PAGE.fullmatch(body)
    assert m is not None, (kind, body)
    return tuple(int(x) for x in m.groups())


def _scenes(running: Running, kind: str) -> list[tuple[str, tuple[int, ...]]]:
    """Every scene's page on one side: (active, accepts, handled, requests
    as moved since the first page, reading, writing, waiting)."""
    held: list[socket.socket] = []
    out: list[tuple[str, tuple[int, ...]]] = []
    time.sleep(SETTLE)
    first = _page(running, kind)

    def look(scene: str) -> None:
        time.sleep(SETTLE)
        ac, ap, hn, rq, rd, wr, wa = _page(running, kind)
        out.append((scene, (ac, ap - first[1], hn - first[2], rq - first[3], rd, wr, wa)))

    try:
        look("alone")
        for _ in range(2):
            held.append(_connect(running, kind))
        look("two idle connections")
        held[0].sendall(b"GET /plain/ HTTP/1.1\r\nHost: exa")
        look("one sent half a head")
        held[0].sendall(b"mple.com\r\n\r\n")
        _read_response(held[0], b"", False)
        look("its request answered, kept alive")
        tunnel = _connect(running, kind)
        held.append(tunnel)
        tunnel.sendall(upgrade("/ws/a"))
        resp, _ = _read_response(tunnel, b"", False)
        assert resp is not None and resp.status == 101
        tunnel.sendall(WS_FRAME)
        tunnel.recv(len(WS_FRAME))
        look("a websocket tunnel open")
        tunnel.close()
        held.remove(tunnel)
        look("the tunnel closed")
        for sock in held:
            sock.close()
        held.clear()
        look("everything closed")
    finally:
        for sock in held:
            sock.close()
    return out


def test_pages_agree_scene_by_scene(running: Running) -> None:
    nginx = _scenes(running, "nginx")
    ngxws = _scenes(running, "ngxws")
    assert ngxws == nginx
    # and nginx's own numbers say what the scenes were (the harness is right)
    assert dict(nginx)["two idle connections"][0] == 3
    assert dict(nginx)["a websocket tunnel open"][5] == 2


def test_the_page_s_answer_agrees(running: Running) -> None:
    def masked(kind: str, request: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        status, headers, body = _ask(running, kind, request)
        kept = [(n, v) for n, v in headers if n not in ("date", "content-length", "server")]
        body = re.sub(rb"<hr><center>[^<]*</center>", b"<hr><center>(signature)</center>", body)
        return status, kept, re.sub(rb"\d+", b"N", body)

    for request in (
        get("/basic_status"),
        get("/tagged"),
        get("/vars"),
        req("HEAD", "/basic_status"),
        req("POST", "/basic_status", body=b"x=1", headers="Content-Type: text/plain\r\n"),
        req("DELETE", "/basic_status"),
    ):
        assert masked("ngxws", request) == masked("nginx", request), request
    # the $connections_* variables, numbers and all (nothing else is open now)
    time.sleep(SETTLE)
    exact = {kind: _ask(running, kind, get("/vars")) for kind in ("nginx", "ngxws")}
    assert exact["nginx"][2] == b"r=0 w=1 k=0\n" and ("x-active", "1") in exact["nginx"][1]
    assert exact["ngxws"][2] == exact["nginx"][2] and ("x-active", "1") in exact["ngxws"][1]
