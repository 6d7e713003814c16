"""limit_req / limit_conn with ``worker_processes 2``: ngxws against Debian's nginx.

What ``cases_limits.py`` cannot say with one request after another: held
connections (websocket tunnels keep their limit_conn slot until they
close), bursts of concurrent requests (how many pass at once, how many are
delayed and by how much, how many are refused) and zones shared by both
workers.  Both servers run the same conf with two workers each (``listen
... reuseport``, so the kernel spreads connections over both), and the same
script is run against each; what it saw must agree, timing within generous
bounds.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from oracle import NGINX, ROOT, RecordingBackend, free_port, upgrade  # noqa: E402

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian nginx not installed")

CONF = """
daemon off;
worker_processes 2;
error_log @DIR@/error.log info;
pid @DIR@/run.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path @DIR@/tmp_body;
    proxy_temp_path @DIR@/tmp_proxy;
    fastcgi_temp_path @DIR@/tmp_fcgi;
    uwsgi_temp_path @DIR@/tmp_uwsgi;
    scgi_temp_path @DIR@/tmp_scgi;
    limit_conn_zone $http_x_key zone=conn:1m;
    limit_req_zone $http_x_key zone=fast:1m rate=10r/s;
    limit_req_zone $http_x_key zone=slow:1m rate=1r/m;
    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location /ws {
            limit_conn conn 2;
            proxy_pass http://127.0.0.1:@BACKEND@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /burst { limit_req zone=fast burst=5; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /nodelay { limit_req zone=fast burst=5 nodelay; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /delay { limit_req zone=fast burst=5 delay=2; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /status { limit_req zone=slow; limit_req_status 429; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /dry { limit_req zone=slow; limit_req_dry_run on; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /once { limit_req zone=slow; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /held { limit_conn conn 2; proxy_pass http://127.0.0.1:@BACKEND@; }
        location /helddry { limit_conn conn 2; limit_conn_dry_run on; proxy_pass http://127.0.0.1:@BACKEND@; }
    }
}
"""


class Server:
    """nginx or ngxws on CONF, two workers, in its own directory."""

    def __init__(self, kind: str, backend: int) -> None:
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"limits-{kind}-"))
        self.port = free_port()
        text = CONF.replace("@DIR@", str(self.dir)).replace("@PORT@", str(self.port))
        conf = self.dir / "nginx.conf"
        conf.write_text(text.replace("@BACKEND@", str(backend)))
        if kind == "nginx":
            cmd = [NGINX, "-p", f"{self.dir}/", "-c", str(conf)]
        else:
            cmd = [sys.executable, "-m", "ngxws", "run", "-c", str(conf), "-p", str(self.dir)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{kind} did not start: {self.proc.stderr.read() if self.proc.stderr else ''!r}"
                )
            if self.error_log().count("start worker process") >= 2:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    break
                except OSError:
                    pass
            time.sleep(0.05)
        time.sleep(0.3)  # both workers accepting

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def messages(self, marker: str) -> list[tuple[str, str]]:
        """(level, message) of the error log lines containing ``marker``,
        without the time, pid and nginx's connection number."""
        out = []
        for line in self.error_log().splitlines():
            m = re.match(r"^\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$", line)
            if m and marker in m.group(2):
                out.append((m.group(1), m.group(2)))
        return out

    def pids_logging(self, marker: str) -> set[str]:
        return {
            m.group(1)
            for line in self.error_log().splitlines()
            if marker in line and (m := re.match(r"^\S+ \S+ \[\w+\] (\d+)#", line))
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    backend = RecordingBackend("b0")
    started: dict[str, Server] = {}
    try:
        for kind in ("nginx", "ngxws"):
            started[kind] = Server(kind, backend.port)
        yield started
    finally:
        for server in started.values():
            server.stop()
        backend.close()


def request(path: str, key: str | None) -> bytes:
    extra = f"X-Key: {key}\r\n" if key is not None else ""
    return f"GET {path} HTTP/1.1\r\nHost: example.com\r\n{extra}Connection: close\r\n\r\n".encode()


def status_of(sock: socket.socket) -> int:
    """Read an answer's head; its status (0 when the connection closed first)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(4096)
        except OSError:
            return 0
        if not chunk:
            return 0
        buf += chunk
    return int(buf.split(b" ", 2)[1])


def one(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return status_of(sock)


def burst(port: int, path: str, key: str, n: int) -> list[tuple[int, float]]:
    """``n`` connections opened first, then one request written on each in a
    tight loop; (status, seconds from the first write to the answer) each."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    results: list[tuple[int, float]] = [(0, 0.0)] * n
    start = time.monotonic()
    try:
        for sock in socks:
            sock.sendall(request(path, key))

        def read(i: int) -> None:
            results[i] = (status_of(socks[i]), time.monotonic() - start)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        for sock in socks:
            sock.close()
    return results


# What nginx's arithmetic gives for 8 requests at once at rate=10r/s burst=5:
# excess 0, 1000, ..., 5000 pass (5000 <= burst), 6000 and 7000 are refused;
# a passed request waits (excess - delay) * 1000 / rate ms.
BURSTS = {
    "/burst": (1, [100, 200, 300, 400, 500], 2),  # no delay=: every excess waits
    "/nodelay": (6, [], 2),
    "/delay": (3, [100, 200, 300], 2),  # delay=2: excess up to 2000 goes at once
}


def classify(results: list[tuple[int, float]]) -> tuple[int, list[float], int]:
    """(passed at once, the delays of the delayed ones in ms, refused)."""
    at_once = sum(1 for s, t in results if s == 200 and t < 0.05)
    delayed = sorted(t * 1000 for s, t in results if s == 200 and t >= 0.05)
    refused = sum(1 for s, _ in results if s == 503)
    return at_once, delayed, refused


@pytest.mark.parametrize("path", list(BURSTS))
def test_burst_passes_delays_and_refuses_like_nginx(servers: dict[str, Server], path: str) -> None:
    want_now, want_delays, want_refused = BURSTS[path]
    seen = {}
    for kind, server in servers.items():
        at_once, delayed, refused = classify(burst(server.port, path, f"burst{path}-{kind}", 8))
        seen[kind] = (at_once, len(delayed), refused)
        print(kind, path, at_once, [round(d) for d in delayed], refused)
        assert (at_once, len(delayed), refused) == (want_now, len(want_delays), want_refused), (
            kind,
            delayed,
        )
        for got, want in zip(delayed, want_delays, strict=True):
            # the requests arrive over a few ms and the machine is shared:
            # generous bounds around nginx's formula
            assert want - 60 <= got <= want + 250, (kind, delayed)
    assert seen["nginx"] == seen["ngxws"]


def test_limit_req_zone_is_shared_by_both_workers(servers: dict[str, Server]) -> None:
    """rate=1r/m, no burst: of 16 connections with one key, exactly one passes,
    whichever worker each lands on; and both workers refused some."""
    for kind, server in servers.items():
        statuses = [one(server.port, request("/once", f"shared-{kind}")) for _ in range(16)]
        assert statuses.count(200) == 1 and statuses.count(503) == 15, (kind, statuses)
        assert len(server.pids_logging('by zone "slow"')) == 2, kind


def test_status_dry_run_and_empty_key(servers: dict[str, Server]) -> None:
    seen = {}
    for kind, server in servers.items():
        seen[kind] = (
            [one(server.port, request("/status", f"st-{kind}")) for _ in range(3)],
            [one(server.port, request("/dry", f"dry-{kind}")) for _ in range(3)],
            [one(server.port, request("/once", None)) for _ in range(3)],
        )
    assert seen["nginx"] == ([200, 429, 429], [200, 200, 200], [200, 200, 200])
    assert seen["ngxws"] == seen["nginx"]


def test_websocket_tunnels_hold_limit_conn_slots(servers: dict[str, Server]) -> None:
    """limit_conn conn 2: two open tunnels hold both slots (a third upgrade
    gets 503, another key is not affected); closing one gives its slot back."""
    seen = {}
    for kind, server in servers.items():
        key = f"ws-{kind}"
        data = upgrade("/ws", extra=f"X-Key: {key}\r\n")
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(2)]
        got = []
        for sock in held:
            sock.sendall(data)
            got.append(status_of(sock))
        got.append(one(server.port, data))  # over the limit
        other = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        other.sendall(upgrade("/ws", extra=f"X-Key: other-{kind}\r\n"))
        got.append(status_of(other))
        held.pop().close()  # the tunnel ends: its slot is free again
        deadline = time.monotonic() + 3
        status = 503
        sock = None
        while status == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(data)
            status = status_of(sock)
            if status != 101:
                sock.close()
        got.append(status)
        got.append(one(server.port, data))  # full again
        for s in (*held, other, sock):
            if s is not None:
                s.close()
        seen[kind] = got
    assert seen["nginx"] == [101, 101, 503, 101, 101, 503]
    assert seen["ngxws"] == seen["nginx"]


def test_limit_conn_counts_requests_in_progress(servers: dict[str, Server]) -> None:
    """Three requests held by a slow backend (1.5 s) at limit_conn 2: the
    third is refused while the others run; with dry run all three pass."""
    seen = {}
    for kind, server in servers.items():
        seen[kind] = [
            sorted(s for s, _t in burst(server.port, path, f"held-{kind}", 3))
            for path in ("/held/slow", "/helddry/slow")
        ]
    assert seen["nginx"] == [[200, 200, 503], [200, 200, 200]]
    assert seen["ngxws"] == seen["nginx"]


def test_error_log_lines_like_nginx(servers: dict[str, Server]) -> None:
    """nginx's words at the default level: refusals at [error], delays one
    level lower ([warn]), dry runs say so.  (Runs after the tests above.)"""
    for marker in ("limiting requests", "delaying request", "limiting connections"):
        lines = {kind: sorted(set(s.messages(marker))) for kind, s in servers.items()}

        # excess values depend on arrival times: compare the deterministic ones
        # (rate=1r/m) exactly and the others by shape
        def shape(items: list[tuple[str, str]]) -> set[tuple[str, str]]:
            return {(lvl, re.sub(r"excess: \d+\.\d{3}", "excess: N", msg)) for lvl, msg in items}

        assert lines["nginx"], marker
        assert shape(lines["ngxws"]) == shape(lines["nginx"]), marker
    dry = [m for _lvl, m in servers["ngxws"].messages("dry run")]
    assert any('limiting requests, dry run, excess: 1.000 by zone "slow"' in m for m in dry)
