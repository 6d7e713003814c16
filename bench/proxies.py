"""The proxies under test: one nginx.conf for both, and their processes.

Both sides read the same file (:func:`render_conf`).  Only workloads W2 and
W8 add ``ws_log``/``ws_log_format`` to the server block, and only for ngxws:
plain nginx rejects those directives, so W2's nginx side runs W1's conf (see
``workloads.py``).  W8 also adds a status page (``ws_stat`` for ngxws,
``stub_status`` for nginx) and turns nginx's ``access_log`` on.

A :class:`ProxyProcess` is started in its own session, pinned with
``sched_setaffinity`` before exec (so nginx's workers inherit the pinning),
with stdout/stderr going to files in its prefix directory; every wait on it is
bounded, and :meth:`ProxyProcess.stop` ends with SIGKILL to its own process
group.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import procfs
from bench.static_load import STATIC_ROOT

NGXWS = "ngxws"
NGINX = "nginx"

DEFAULT_NGXWS_CMD = "{python} -m ngxws run -c {conf} -p {prefix}"

# The per-frame line of W2: the variables a real deployment logs.
WS_LOG_FORMAT = (
    "$time_local $remote_addr:$remote_port $request_id $ws_packet_source "
    "opcode=$ws_opcode size=$ws_payload_size age=$ws_conn_age"
)


@dataclass(frozen=True)
class ConfSpec:
    """What varies between the generated confs."""

    listen_port: int
    backend_port: int
    workers: int
    prefix: Path
    ws_log: Path | None = None
    # W8: a status page at /stat (ngxws: ws_stat; nginx: stub_status) ...
    stat_page: str | None = None
    # ... and, for nginx, an access_log (one line per request) instead of "off"
    access_log: Path | None = None


def render_conf(spec: ConfSpec) -> str:
    """The nginx.conf both proxies read (ws_log variant for ngxws only)."""
    prefix = spec.prefix
    ws_lines = ""
    if spec.ws_log is not None:
        ws_lines = f'        ws_log {spec.ws_log};\n        ws_log_format "{WS_LOG_FORMAT}";\n'
    stat = ""
    if spec.stat_page is not None:
        stat = f"        location = /stat {{ {spec.stat_page}; }}\n"
    access_log = f"access_log {spec.access_log}" if spec.access_log is not None else "access_log off"
    return (
        "daemon off;\n"
        f"worker_processes {spec.workers};\n"
        "worker_rlimit_nofile 20000;\n"
        f"pid {prefix / 'proxy.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "\n"
        "events {\n"
        "    worker_connections 20000;\n"
        "}\n"
        "\n"
        "http {\n"
        f"    {access_log};\n"
        "    sendfile on;\n"  # as Debian's nginx.conf (nginx's default is off); W10
        "    server {\n"
        f"        listen 127.0.0.1:{spec.listen_port};\n"
        f"{ws_lines}"
        f"{stat}"
        # W9/W10: static files (bench/static_load.py writes them)
        f"        location /static/ {{ alias {STATIC_ROOT}/; }}\n"
        "        location / {\n"
        f"            proxy_pass http://127.0.0.1:{spec.backend_port};\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Upgrade $http_upgrade;\n"
        '            proxy_set_header Connection "upgrade";\n'
        "            proxy_read_timeout 3600s;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def proxy_command(
    side: str, conf: Path, prefix: Path, *, nginx_bin: str, ngxws_cmd: str
) -> list[str]:
    """The argv that starts ``side`` on ``conf``."""
    if side == NGINX:
        # The conf already says "daemon off;", so no -g (nginx rejects duplicates);
        # -e keeps nginx away from /var/log/nginx before it reads the conf.
        return [nginx_bin, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
    fields = {"python": sys.executable, "conf": str(conf), "prefix": str(prefix)}
    return [part.format(**fields) for part in shlex.split(ngxws_cmd)]


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to 0, read it, release it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProxyFailed(Exception):
    """The proxy did not start, or died: the cell becomes an error, never a hang."""


def _pin_to(cpus: set[int] | None) -> Callable[[], None] | None:
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


class ProxyProcess:
    """One running proxy (nginx master or ngxws) and its process group."""

    def __init__(
        self,
        side: str,
        argv: list[str],
        prefix: Path,
        port: int,
        *,
        cpus: set[int] | None,
        cwd: Path,
    ) -> None:
        self.side = side
        self.argv = argv
        self.prefix = prefix
        self.port = port
        self._stdout = open(prefix / "stdout.log", "wb")  # closed in stop()
        self._stderr = open(prefix / "stderr.log", "wb")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,
            preexec_fn=_pin_to(cpus),
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        """True while the main process has not exited."""
        return self.proc.poll() is None

    def failure(self) -> str:
        """Why the proxy is not usable: exit status and the tail of its logs."""
        code = self.proc.poll()
        status = "is running" if code is None else f"exited with code {code}"
        tails = []
        for name in ("stderr.log", "error.log", "stdout.log"):
            path = self.prefix / name
            if path.exists():
                lines = path.read_text(errors="replace").strip().splitlines()[-4:]
                if lines:
                    tails.append(f"{name}: " + " | ".join(lines))
        return f"{self.side} {status}" + ("; " + "; ".join(tails) if tails else "")

    def tree(self) -> list[int]:
        """The proxy's processes now (master + workers for nginx)."""
        return procfs.process_tree(self.pid)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the listen port accepts; raise :class:`ProxyFailed` on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise ProxyFailed(self.failure())
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), timeout=1.0
                )
            except (OSError, asyncio.TimeoutError):
                if time.monotonic() > deadline:
                    raise ProxyFailed(
                        f"{self.side} did not accept on 127.0.0.1:{self.port} within {timeout:.0f}s; "
                        + self.failure()
                    ) from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (fast shutdown in nginx), then SIGKILL to the group after ``timeout``."""
        try:
            members = self.tree()
            if self.alive():
                self.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while self.alive() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            if self.alive():
                # Not reaped yet, so the group id is still ours (start_new_session).
                os.killpg(self.pid, signal.SIGKILL)
                try:
                    self.proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
            else:
                # The leader is gone: kill only its former members still in its group.
                for pid in members[1:]:
                    if procfs.process_group(pid) == self.pid:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            return self.proc.poll()
        finally:
            self._stdout.close()
            self._stderr.close()


def nginx_version(nginx_bin: str) -> str:
    """``nginx -v`` output, e.g. ``nginx/1.22.1``."""
    try:
        out = subprocess.run(
            [nginx_bin, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (out.stderr or out.stdout).strip().removeprefix("nginx version: ")
