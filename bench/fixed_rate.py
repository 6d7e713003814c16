"""Proxy CPU per unit of work at a fixed offered rate, ngxws against nginx.

    python -m bench.fixed_rate churn RATE [SECONDS] [ROUNDS]
    python -m bench.fixed_rate echo RATE [SECONDS] [ROUNDS]

``churn``: W5's connection (upgrade + 64 B text frame + close, the
server's close frame awaited), one started every 1/RATE s, each on its own
(at most 256 at once).  ``echo``: W4's 100 upgraded connections, 100 B text
frames sent at RATE per second in all, evenly spread (``tick_frames``, as
W7), each echoed by the backend.

Why: ``make bench``'s W4 and W5 cells run closed loops that saturate the
load CPU, so their rates say what the load side pays, and who waits for
whom changes what each proxy pays in wake-ups (bench/PROFILE.md, "W4 and
W5 at a fixed offered rate").  Below saturation both proxies get the same
offered work and the CPU each spends on it compares directly.

As ``make bench`` with ``--workers 1``: one backend (``bench.backend``) and
this process on CPU 1, ngxws and Debian's nginx on the bench's conf
(worker_processes 1) on CPU 0, cells alternating which proxy goes first;
the CPU is read from ``/proc`` around each cell (master and workers, as
``bench.ab``).  Prints each cell and the medians.  Bounded: ROUNDS x 2
cells of SECONDS each, every connection and the cell itself with a timeout.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.ab import _cpu_seconds, _free_port, _one, _wait_listening, start_backend, stop_all
from bench.loadgen import IdleClient, abort_all, open_clients, tick_frames
from bench.proxies import DEFAULT_NGXWS_CMD, NGINX, NGXWS, ConfSpec, proxy_command, render_conf
from bench.wire import Opcode, client_frame, close_payload, server_frame, upgrade_request

ECHO_CONNS = 100


class _Echoed(IdleClient):
    """Counts the bytes echoed to it (``got``: shared by all of a cell's clients)."""

    def __init__(self, request: bytes, got: list[int]) -> None:
        super().__init__(request)
        self._got = got

    def on_ws_data(self, data: bytes) -> None:
        self._got[0] += len(data)
MAX_IN_FLIGHT = 256  # churn: a proxy that falls behind is not flooded with connects


async def _churn(port: int, rate: float, seconds: float) -> tuple[float, float]:
    """Connections started at ``rate``; (completed, seconds the cell took)."""
    request = upgrade_request("/sink", f"127.0.0.1:{port}")
    frames = client_frame(Opcode.TEXT, b"\x42" * 64) + client_frame(Opcode.CLOSE, close_payload())
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    done = 0
    running: set[asyncio.Future[None]] = set()

    async def one() -> None:
        nonlocal done
        try:
            ok = await _one(port, request, frames)
        except (OSError, asyncio.TimeoutError):
            return
        done += ok  # after the await: a += across it would lose counts

    start = loop.time()
    for n in range(total):
        due = start + n / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        while len(running) >= MAX_IN_FLIGHT:
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.ensure_future(one())
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running, timeout=10.0)
    return float(done), loop.time() - start


async def _echo(port: int, rate: float, seconds: float, pid: int) -> tuple[float, float, float]:
    """Frames at ``rate`` over ``ECHO_CONNS`` tunnels; (round trips completed
    in the window, its seconds, the proxy's CPU seconds in it)."""
    frame = client_frame(Opcode.TEXT, b"\x42" * 100)
    reply = len(server_frame(Opcode.TEXT, b"\x42" * 100))
    request = upgrade_request(f"/echo?fixed={len(frame)}", f"127.0.0.1:{port}")
    got = [0]
    clients = await open_clients(lambda: _Echoed(request, got), "127.0.0.1", port, ECHO_CONNS)
    stop = asyncio.Event()
    ticker = asyncio.ensure_future(tick_frames(clients, frame, rate / ECHO_CONNS, stop))
    try:
        await asyncio.sleep(0.5)  # the tunnels settle (a steady one moves: bench/PROFILE.md "W4, round 4")
        cpu, t0, got0 = _cpu_seconds(pid), time.monotonic(), got[0]
        await asyncio.sleep(seconds)
        cpu, elapsed, echoed = _cpu_seconds(pid) - cpu, time.monotonic() - t0, got[0] - got0
    finally:
        stop.set()
        await asyncio.wait([ticker], timeout=2.0)
        abort_all(clients)
        await asyncio.sleep(0.3)  # the backend sees them end before the next cell (or its stop)
    return echoed / reply, elapsed, cpu


def _start(side: str, tmp: Path, backend_port: int) -> tuple[subprocess.Popen[bytes], int]:
    prefix = tmp / side
    prefix.mkdir()
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_conf(ConfSpec(port, backend_port, 1, prefix)))
    argv = proxy_command(
        side, conf, prefix, nginx_bin=shutil.which(NGINX) or "/usr/sbin/nginx",
        ngxws_cmd=DEFAULT_NGXWS_CMD,
    )  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    _wait_listening(port)
    return proc, port


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("churn", "echo"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, rate = argv[0], float(argv[1])
    seconds = float(argv[2]) if len(argv) > 2 else 4.0
    rounds = int(argv[3]) if len(argv) > 3 else 4
    unit = "connection" if kind == "churn" else "round trip"
    tmp = Path(tempfile.mkdtemp(prefix="ngxws-fixed-rate-"))
    backend, backend_port = start_backend(tmp / "backend.stats", {1})
    proxies: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for side in (NGXWS, NGINX):
            proxies[side] = _start(side, tmp, backend_port)
        os.sched_setaffinity(0, {1})
        results: dict[str, list[float]] = {side: [] for side in proxies}
        for r in range(rounds):
            for side in (NGXWS, NGINX) if r % 2 == 0 else (NGINX, NGXWS):
                proc, port = proxies[side]
                if kind == "churn":
                    before = _cpu_seconds(proc.pid)
                    work, elapsed = uvloop.run(asyncio.wait_for(_churn(port, rate, seconds), seconds + 30))
                    cpu = _cpu_seconds(proc.pid) - before
                else:
                    work, elapsed, cpu = uvloop.run(asyncio.wait_for(_echo(port, rate, seconds, proc.pid), seconds + 30))
                per = cpu / max(work, 1.0) * 1e6
                results[side].append(per)
                print(f"round {r} {side}: {work:,.0f} {unit}s in {elapsed:.2f} s ({work / elapsed:,.0f}/s), "
                      f"proxy CPU {100 * cpu / elapsed:.1f} %, {per:.2f} us per {unit}", flush=True)  # fmt: skip
        medians = {side: statistics.median(values) for side, values in results.items()}
        print(f"medians: ngxws {medians[NGXWS]:.2f}, nginx {medians[NGINX]:.2f} us per {unit}; "
              f"ngxws / nginx {medians[NGXWS] / medians[NGINX]:.2f}")  # fmt: skip
    finally:
        stop_all([proc for proc, _ in proxies.values()] + [backend])
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
