"""A/B of two ngxws trees on W5's churn, interleaved so both see the same machine.

    python -m bench.ab BASE_TREE BRANCH_TREE [ROUNDS] [CONNS_PER_CELL]

One backend (``bench.backend``) and the two ngxws trees side by side on the
bench's conf, both pinned to CPU 0, this process (a closed-loop client: 32
concurrent loops of upgrade + 64 B text frame + close, as W5) on CPU 1.
Each round runs one cell per tree, alternating which goes first, and reads
each proxy's CPU time (master and worker, ``/proc/<pid>/stat``) around the
cell: the proxy CPU per connection, which a shared machine disturbs much
less than the connection rate ``make bench`` reports (bench/PROFILE.md,
"W5, round 3").  Bounded: ROUNDS x 2 cells of CONNS_PER_CELL connections,
each connection within 5 s.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.proxies import ConfSpec, render_conf
from bench.wire import Opcode, client_frame, close_payload, upgrade_request

_LOOPS = 32


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its children's threads, in seconds."""
    pids = [pid]
    try:
        pids += [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _one(port: int, request: bytes, frames: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            return False
        writer.write(frames)
        return bool(await asyncio.wait_for(reader.read(100), 5.0))  # the close frame back
    finally:
        writer.close()


async def _cell(port: int, count: int) -> int:
    request = upgrade_request("/sink", f"127.0.0.1:{port}")
    frames = client_frame(Opcode.TEXT, b"\x42" * 64) + client_frame(Opcode.CLOSE, close_payload())
    left, done = count, 0

    async def loop() -> None:
        nonlocal left, done
        while left > 0:
            left -= 1
            ok = await _one(port, request, frames)
            done += ok

    await asyncio.gather(*(loop() for _ in range(_LOOPS)))
    return done


def start_backend(stats: Path, cpus: set[int] | None = None, cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """``bench.backend`` (sink and echo), its counters in ``stats``, pinned to
    ``cpus`` when given; (the process, its port)."""
    backend = subprocess.Popen(
        [sys.executable, "-m", "bench.backend", "--stats", str(stats)],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, cwd=cwd,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )  # fmt: skip
    assert backend.stdout is not None
    return backend, int(backend.stdout.readline().split()[1])


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then wait for each (at most 10 s apiece)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    trees = {"base": argv[0], "branch": argv[1]}
    rounds = int(argv[2]) if len(argv) > 2 else 5
    count = int(argv[3]) if len(argv) > 3 else 3000
    tmp = Path(tempfile.mkdtemp(prefix="ngxws-ab-"))
    backend, backend_port = start_backend(tmp / "backend.stats", {1})
    proxies: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for name, tree in trees.items():
            prefix = tmp / name
            prefix.mkdir()
            port = _free_port()
            conf = prefix / "nginx.conf"
            conf.write_text(render_conf(ConfSpec(port, backend_port, 1, prefix)))
            proc = subprocess.Popen(
                [sys.executable, "-m", "ngxws", "run", "-c", str(conf), "-p", str(prefix)],
                cwd=tree, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, {0}),
            )  # fmt: skip
            proxies[name] = (proc, port)
            _wait_listening(port)
        os.sched_setaffinity(0, {1})
        results: dict[str, list[float]] = {name: [] for name in trees}
        for r in range(rounds):
            for name in (("base", "branch") if r % 2 == 0 else ("branch", "base")):
                proc, port = proxies[name]
                before, t0 = _cpu_seconds(proc.pid), time.monotonic()
                done = uvloop.run(_cell(port, count))
                seconds, cpu = time.monotonic() - t0, _cpu_seconds(proc.pid) - before
                per = cpu / max(done, 1) * 1e6
                results[name].append(per)
                print(f"round {r} {name}: {done} connections in {seconds:.2f} s, proxy CPU {per:.0f} us/connection")
        for name, values in results.items():
            print(f"{name}: median {statistics.median(values):.0f} us/connection, cells {[round(v) for v in values]}")
    finally:
        stop_all([proc for proc, _ in proxies.values()] + [backend])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
