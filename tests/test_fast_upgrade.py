"""Issue 13 item 1: upgrades answered by callbacks (ngxws.proxy.fast_upgrade).

- which upgrade targets the callback path carries out (``fast_target``:
  a pure reading of a real conf's locations; which requests reach a
  location's upgrade at all is the engine's, tests/test_engine.py);
- end to end, what the callbacks do where nothing waits in a task: the
  connect timeout (a backend whose accept queue is full: the SYN gets no
  answer) and the response-head timeout give 504 with nginx's error-log
  lines, a refused connect 502 and the next peer, the same as before.
The rest of the upgrade behaviour (cap, h2c, early bytes, the client
leaving while it waits) is tests/test_upgrade.py's, and the comparison with
nginx tests/differential/cases_fast_upgrade.py's."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import (
    free_port,
    ngxws,
    read_head,
    upgrade_request,
    wait_for,
    ws_backend,
)

from ngxws.config.loader import load_config
from ngxws.proxy.fast_upgrade import fast_target
from ngxws.routing.locations import match_location
from ngxws.routing.servers import virtual_hosts

UPGRADE = """
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
"""

CONF = f"""
events {{}}
http {{
    upstream pool {{ server 127.0.0.1:9; server 127.0.0.1:10; }}
    limit_req_zone $binary_remote_addr zone=z:1m rate=10r/s;
    map $http_x_to $target {{ default 127.0.0.1:9; }}
    server {{
        listen 127.0.0.1:8080;
        server_name plain.test;
        location /plain/ {{ {UPGRADE} proxy_pass http://127.0.0.1:9; }}
        location /pool/ {{ {UPGRADE} proxy_pass http://pool; }}
        location /uri/ {{ {UPGRADE} proxy_pass http://127.0.0.1:9/other/; }}
        location ~ ^/re/(.*)$ {{ {UPGRADE} proxy_pass http://127.0.0.1:9; }}
        location /realip/ {{ set_real_ip_from 127.0.0.1; {UPGRADE} proxy_pass http://127.0.0.1:9; }}
        location /basic/ {{ auth_basic "x"; auth_basic_user_file /dev/null; proxy_pass http://127.0.0.1:9; }}
        location /deny/ {{ deny 10.0.0.0/8; proxy_pass http://127.0.0.1:9; }}
        location /limited/ {{ limit_req zone=z; proxy_pass http://127.0.0.1:9; }}
        location /rewritten/ {{ rewrite ^ /plain/ last; }}
        location /ret/ {{ return 200 "x"; }}
        location /if/ {{ if ($http_x_a) {{ return 418; }} proxy_pass http://127.0.0.1:9; }}
        location /var/ {{ proxy_pass http://$target; }}
        location /tls/ {{ proxy_pass https://127.0.0.1:9; }}
        location /unix/ {{ proxy_pass http://unix:/tmp/nothing.sock; }}
        location /internal/ {{ internal; proxy_pass http://127.0.0.1:9; }}
        location /stats {{ ws_stat; }}
        location /static/ {{ root /tmp; }}
    }}
    server {{
        listen 127.0.0.1:8080;
        server_name scripted.test;
        rewrite ^/old/(.*)$ /plain/$1 last;
        location /plain/ {{ proxy_pass http://127.0.0.1:9; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def vhosts(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    conf = tmp_path_factory.mktemp("fast") / "nginx.conf"
    conf.write_text(CONF)
    table = virtual_hosts(load_config(str(conf)))
    (_, vh), = table.values()
    return vh


def location(vhosts, path: str, host: str = "plain.test"):  # type: ignore[no-untyped-def]
    server = vhosts.select(host)
    match = match_location(server.locations, path)
    assert match is not None
    return match.location


@pytest.mark.parametrize("path", [
    "/plain/a", "/pool/a", "/uri/a", "/re/a", "/realip/a",
    # access, limits and scripts are the engine's, before the upgrade is decided
    "/basic/a", "/deny/a", "/limited/a", "/if/a", "/internal/a",
])
def test_fixed_plain_http_targets_take_the_callback_path(vhosts, path: str) -> None:  # type: ignore[no-untyped-def]
    assert fast_target(location(vhosts, path))


@pytest.mark.parametrize("path", ["/var/a", "/tls/a", "/unix/a", "/ret/a", "/stats", "/static/a", "/rewritten/a"])
def test_other_targets_stay_on_the_general_path(vhosts, path: str) -> None:  # type: ignore[no-untyped-def]
    assert not fast_target(location(vhosts, path))


# --- end to end -------------------------------------------------------------------------


def conf(port: int, log: Path, locations: str, upstreams: str = "") -> str:
    return f"""
error_log {log} info;
events {{ worker_connections 1024; }}
http {{
    {upstreams}
    server {{
        listen 127.0.0.1:{port};
        location /websocket_status {{ ws_stat; }}
        {locations}
    }}
}}
"""


@contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: a connect to it gets no SYN-ACK
    (the kernel drops the SYN), so it can only time out."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = int(lsock.getsockname()[1])
    fillers = []
    try:
        for _ in range(8):  # bounded: the queue of a backlog of 0 holds one or two
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.2)
        yield port
    finally:
        for s in fillers:
            s.close()
        lsock.close()


@contextmanager
def silent_backend() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts, reads, never answers."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except OSError:
                continue
            conns.append(c)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(lsock.getsockname()[1]), conns
    finally:
        stop.set()
        t.join(5)
        for c in conns:
            c.close()
        lsock.close()


def answer(port: int, path: str) -> bytes:
    """The response head (a failed upgrade keeps a keep-alive connection, as nginx)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(upgrade_request(path))
        got, _ = read_head(c, timeout=10)
        return got


def test_connect_timeout_is_504_with_nginx_line(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    with full_backlog() as dead:
        loc = f"location / {{ {UPGRADE} proxy_connect_timeout 1s; proxy_pass http://127.0.0.1:{dead}; }}"
        with ngxws(conf(port := free_port(), log, loc), tmp_path, port):
            t0 = time.monotonic()
            got = answer(port, "/x")
            elapsed = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 504 "), got[:80]
    assert 0.8 < elapsed < 8, elapsed
    text = log.read_text()
    assert f"upstream timed out (connect) to 127.0.0.1:{dead} while proxying GET /x HTTP/1.1" in text, text


def test_connect_timeout_tries_the_next_peer(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    with full_backlog() as dead, ws_backend() as live:
        ups = f"upstream pool {{ server 127.0.0.1:{dead}; server 127.0.0.1:{live}; }}"
        loc = f"location / {{ {UPGRADE} proxy_connect_timeout 1s; proxy_pass http://pool; }}"
        with ngxws(conf(port := free_port(), log, loc, ups), tmp_path, port):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(upgrade_request("/x"))
                got, _ = read_head(c, timeout=10)
    assert got.startswith(b"HTTP/1.1 101 "), got


def test_response_head_timeout_is_504_and_closes_the_upstream(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    with silent_backend() as (backend, conns):
        loc = f"location / {{ {UPGRADE} proxy_read_timeout 1s; proxy_pass http://127.0.0.1:{backend}; }}"
        with ngxws(conf(port := free_port(), log, loc), tmp_path, port):
            got = answer(port, "/y")
            assert wait_for(lambda: len(conns) == 1)
            conns[0].settimeout(5)
            head = b""
            for _ in range(100):  # bounded: the request head, then the proxy's close
                chunk = conns[0].recv(65536)
                if not chunk:
                    break
                head += chunk
    assert got.startswith(b"HTTP/1.1 504 "), got[:80]
    assert head.startswith(b"GET /y HTTP/1.1\r\n"), head
    assert "upstream timed out while reading response header while proxying GET /y HTTP/1.1" in log.read_text()


def test_refused_connect_is_502_and_the_next_peer_answers(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    dead = free_port()
    with ws_backend() as live:
        ups = f"upstream pool {{ server 127.0.0.1:{dead}; server 127.0.0.1:{live}; }}"
        locs = (f"location /one/ {{ {UPGRADE} proxy_pass http://127.0.0.1:{dead}; }}\n"
                f"location /pool/ {{ {UPGRADE} proxy_pass http://pool; }}")
        with ngxws(conf(port := free_port(), log, locs, ups), tmp_path, port):
            assert answer(port, "/one/").startswith(b"HTTP/1.1 502 ")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(upgrade_request("/pool/"))
                got, _ = read_head(c, timeout=10)
            assert got.startswith(b"HTTP/1.1 101 "), got
    text = log.read_text()
    assert f"connect() to 127.0.0.1:{dead} failed (" in text and "while proxying GET /one/ HTTP/1.1" in text


def test_the_connect_timer_moves_on_to_the_response_head(tmp_path: Path) -> None:
    """proxy_connect_timeout shorter than proxy_read_timeout: the one timer
    fires once the connect is long done and waits out the rest of the
    head's time (504 after ~2 s, not ~1 s)."""
    log = tmp_path / "error.log"
    with silent_backend() as (backend, _):
        loc = (f"location / {{ {UPGRADE} proxy_connect_timeout 1s; proxy_read_timeout 2s; "
               f"proxy_pass http://127.0.0.1:{backend}; }}")
        with ngxws(conf(port := free_port(), log, loc), tmp_path, port):
            t0 = time.monotonic()
            got = answer(port, "/z")
            elapsed = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 504 "), got[:80]
    assert 1.7 < elapsed < 10, elapsed
    assert "upstream timed out while reading response header while proxying GET /z HTTP/1.1" in log.read_text()
