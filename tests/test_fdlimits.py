"""Out of file descriptors: ngxws next to Debian's nginx on the same conf.

``worker_rlimit_nofile 40`` makes the limit small; the test then holds idle
client connections until the worker has exactly one descriptor left (read
from ``/proc/PID/fd``), so the next request's ``accept()`` takes the last
one and its upstream ``socket()`` fails with EMFILE.  Both servers must
answer the same status and log nginx's alert line.  Then, with every
descriptor taken, a connection beyond the limit must neither crash nor spin
the worker, and once held connections are closed a request is answered again.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import ROOT, accept_in_threads, free_port, wait_for, wait_port

from ngxws.config.loader import ConfigError, load_config

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LIMIT = 40


@contextmanager
def http_backend() -> Iterator[int]:
    """Answers every request with a small 200 and closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def one(conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            except OSError:
                pass

    accept_in_threads(srv, one)
    try:
        yield int(srv.getsockname()[1])
    finally:
        srv.close()


def conf(port: int, backend: int, d: Path) -> str:
    return f"""
worker_processes 1;
daemon off;
pid {d}/proxy.pid;
error_log {d}/error.log info;
worker_rlimit_nofile {LIMIT};
events {{ worker_connections 1000; }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://127.0.0.1:{backend}; }}
    }}
}}
"""


def start(which: str, d: Path, port: int) -> subprocess.Popen[bytes]:
    if which == "nginx":
        argv = [NGINX, "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")]
    else:
        argv = [sys.executable, "-m", "ngxws", "run", "-c", str(d / "nginx.conf"), "-p", str(d)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port)
    return proc


def worker_of(pid: int) -> int:
    found: list[int] = []

    def one() -> bool:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        found[:] = [int(x) for x in out.split()]
        return len(found) == 1

    assert wait_for(one, 10), found
    return found[0]


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def request(port: int, timeout: float = 5.0) -> bytes:
    """The status line of a GET, or b"" when the connection ends without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return data.split(b"\r\n", 1)[0]


def exhaust(which: str, tmp_path: Path) -> dict[str, object]:
    d = tmp_path / which
    d.mkdir()
    port = free_port()
    with http_backend() as backend:
        (d / "nginx.conf").write_text(conf(port, backend, d))
        proc = start(which, d, port)
        held: list[socket.socket] = []
        try:
            worker = worker_of(proc.pid)
            limit_line = [
                line for line in Path(f"/proc/{worker}/limits").read_text().splitlines()
                if line.startswith("Max open files")
            ][0]
            assert request(port) == b"HTTP/1.1 200 OK"
            time.sleep(0.5)  # the request's sockets are closed
            base = fds(worker)
            # Hold idle connections until the worker has one descriptor left.
            for _ in range(LIMIT):
                if base + len(held) >= LIMIT - 1:
                    break
                held.append(socket.create_connection(("127.0.0.1", port)))
                assert wait_for(lambda: fds(worker) == base + len(held), 5)
            assert fds(worker) == LIMIT - 1, (fds(worker), len(held), os.listdir(f"/proc/{worker}/fd"))
            status = request(port)  # its accept takes the last descriptor
            # Every descriptor taken: one more connection must not crash or spin.
            extra = socket.create_connection(("127.0.0.1", port))
            ticks = cpu_ticks(worker)
            time.sleep(1.0)
            spun = cpu_ticks(worker) - ticks
            alive = proc.poll() is None and os.path.exists(f"/proc/{worker}")
            for c in held[:10]:
                c.close()
            extra.close()
            answered = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                answered = request(port)
                if answered == b"HTTP/1.1 200 OK":
                    break
                time.sleep(0.2)
        finally:
            for c in held:
                c.close()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    return {
        "limit": limit_line.split()[3:5],
        "status": status,
        "spun_ticks": spun,
        "alive": alive,
        "answered": answered,
        "log": (d / "error.log").read_text(),
    }


_SOCKET_ALERT = re.compile(
    r"\[alert\] \d+#\d+: (\*\d+ )?socket\(\) failed \(24: Too many open files\) while connecting to upstream"
)


@pytest.mark.skipif(not os.path.exists(NGINX), reason="Debian nginx is the oracle")
def test_fd_exhaustion_matches_nginx(tmp_path: Path) -> None:
    ours = exhaust("ngxws", tmp_path)
    theirs = exhaust("nginx", tmp_path)
    for result in (ours, theirs):
        assert result["limit"] == [str(LIMIT), str(LIMIT)]  # worker_rlimit_nofile, soft and hard
        assert result["alive"]
        assert isinstance(result["spun_ticks"], int) and result["spun_ticks"] < 50  # < 0.5 s of 1 s
        assert result["answered"] == b"HTTP/1.1 200 OK"
        assert _SOCKET_ALERT.search(str(result["log"])), result["log"]
    # nginx 1.22: socket() failing is NGX_ERROR -> 500 (not 502: no peer was tried)
    assert ours["status"] == theirs["status"] == b"HTTP/1.1 500 Internal Server Error"


def test_worker_rlimit_nofile_needs_a_number(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("worker_rlimit_nofile lots;\nevents {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(tmp_path / "nginx.conf"))
    assert str(err.value) == (
        f'"worker_rlimit_nofile" directive invalid number in {tmp_path / "nginx.conf"}:1'
    )
    (tmp_path / "nginx.conf").write_text("worker_rlimit_nofile 4096;\nevents {}\n")
    assert load_config(str(tmp_path / "nginx.conf")).worker_rlimit_nofile == 4096
