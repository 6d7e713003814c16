"""Runs the rounds: for each worker_processes, each workload, each round, ngxws then nginx.

Theory of operation
-------------------

This process is the load generator (uvloop, pinned to the "load" CPUs).  At
start it raises its own RLIMIT_NOFILE to the hard limit (children inherit it),
pins itself, and starts the backend (``bench.backend``, also on the load CPUs)
once for the whole run.  Then each *cell* - one workload, one proxy, one round
- goes:

1. a fresh prefix directory with the conf (``proxies.render_conf``);
2. the proxy starts on a free loopback port, pinned to the "proxy" CPUs, and
   must accept within ``READY_TIMEOUT``;
3. the workload's runner opens its clients, warms up, measures
   (``workloads.py``), bounded by ``cell_timeout``;
4. the proxy is stopped (SIGTERM, then SIGKILL to its group).

Rounds alternate the sides, A B A B ..., so slow drift of the machine (other
jobs, thermal, page cache) hits both sides alike, and the per-round ratio
compares two runs made seconds apart.  A proxy that will not start or dies
makes its cell an error; the run goes on.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procfs
from bench.backend import BackendCounters
from bench.loadgen import UpgradeFailed
from bench.machine import machine_facts
from bench.proxies import (
    NGXWS,
    ConfSpec,
    ProxyFailed,
    ProxyProcess,
    free_port,
    nginx_version,
    proxy_command,
    render_conf,
)
from bench.report import CellResult, Summary, render_table, summarize, write_json
from bench.workloads import BY_KEY, CellContext, Probe, Workload, WorkloadFailed

READY_TIMEOUT = 15.0
BACKEND_TIMEOUT = 10.0
# Beyond warm-up + window: connecting (W6: thousands of upgrades) and teardown.
CELL_SLACK = 90.0


@dataclass(frozen=True)
class Options:
    """Everything the command line decides."""

    rounds: int
    workloads: list[str]
    workers: list[int]
    sides: list[str]
    json_path: Path | None
    duration: float
    warmup: float
    nginx_bin: str
    ngxws_cmd: str
    affinity: str
    idle_conns: int
    keep: bool
    cwd: Path


@dataclass(frozen=True)
class Affinity:
    """Which CPUs the proxy gets and which the load generator + backend get."""

    proxy_cpus: set[int]
    load_cpus: set[int]

    def as_json(self) -> dict[str, list[int]]:
        """Sorted lists, for the report."""
        return {"proxy_cpus": sorted(self.proxy_cpus), "load_cpus": sorted(self.load_cpus)}


def plan_affinity(mode: str) -> Affinity:
    """``split``: first CPU for the proxy, the rest for load; ``none``: no pinning.

    On this 2-core machine that is proxy on CPU 0 and everything else on CPU 1,
    also at ``worker_processes 2`` (both workers then share CPU 0): the
    proxy's budget stays one core, so the two worker counts are comparable.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "none" or len(cpus) < 2:
        return Affinity(set(), set())
    return Affinity({cpus[0]}, set(cpus[1:]))


def raise_nofile() -> int:
    """Set RLIMIT_NOFILE's soft limit to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Backend:
    """The backend subprocess and its shared counters."""

    def __init__(self, rundir: Path) -> None:
        self._stats_path = rundir / "backend.stats"
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.counters: BackendCounters | None = None

    async def start(self) -> None:
        """Start it and read its port, within ``BACKEND_TIMEOUT``."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.backend",
            "--stats",
            str(self._stats_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), BACKEND_TIMEOUT)
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"backend did not start: {line!r}")
        self.port = int(line.split()[1])
        self.counters = BackendCounters(self._stats_path, readonly=True)

    def alive(self) -> bool:
        """True while the backend runs."""
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> None:
        """Close its stdin and SIGTERM it; SIGKILL after 5 s."""
        if self.counters is not None:
            self.counters.close()
            self.counters = None
        if self.proc is None or self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 5.0)
        except asyncio.TimeoutError:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 5.0)


def _count_lines(path: Path) -> int:
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


class Driver:
    """Owns the run: the backend, the run directory, the cells."""

    def __init__(self, options: Options, affinity: Affinity, rundir: Path) -> None:
        self.options = options
        self.affinity = affinity
        self.rundir = rundir
        self.backend = Backend(rundir)
        self.cells: list[CellResult] = []

    async def _ensure_backend(self) -> Backend:
        if not self.backend.alive():
            await self.backend.stop()
            self.backend = Backend(self.rundir)
            await self.backend.start()
        return self.backend

    async def run_cell(
        self, workers: int, workload: Workload, round_no: int, side: str
    ) -> CellResult:
        """One workload against one proxy, once."""
        options = self.options
        backend = await self._ensure_backend()
        assert backend.counters is not None
        prefix = self.rundir / f"wp{workers}-{workload.key}-r{round_no}-{side}"
        prefix.mkdir()
        ws_log = prefix / "ws.log" if side == NGXWS and workload.ws_log else None
        port = free_port()
        conf = prefix / "nginx.conf"
        stat_page = None
        access_log = None
        if workload.probed:
            stat_page = "ws_stat" if side == NGXWS else "stub_status"
            access_log = prefix / "access.log" if side != NGXWS else None
        conf.write_text(
            render_conf(
                ConfSpec(port, backend.port, workers, prefix, ws_log, stat_page, access_log)
            )
        )
        argv = proxy_command(
            side, conf, prefix, nginx_bin=options.nginx_bin, ngxws_cmd=options.ngxws_cmd
        )

        def failed(error: str) -> CellResult:
            return CellResult(workers, workload.key, round_no, side, value=None, error=error)

        frames_before = backend.counters.read()["frames_in"]
        try:
            proxy = ProxyProcess(
                side, argv, prefix, port, cpus=self.affinity.proxy_cpus or None, cwd=options.cwd
            )
        except OSError as exc:
            return failed(f"cannot start {argv[0]}: {exc}")
        try:
            await proxy.wait_ready(READY_TIMEOUT)
            await asyncio.sleep(0.2)  # let nginx fork its workers before anything is read
            context = CellContext(
                port=port,
                proxy=proxy,
                probe=Probe(proxy, backend.proc.pid if backend.proc else 0, backend.counters),
                warmup=options.warmup,
                duration=options.duration,
                idle_conns=options.idle_conns,
            )
            timeout = options.warmup + options.duration + CELL_SLACK
            measurement = await asyncio.wait_for(workload.run(context), timeout)
        except asyncio.TimeoutError:  # first: since 3.11 it is the builtin TimeoutError, an OSError
            return failed(f"timed out; {proxy.failure()}")
        except (ProxyFailed, UpgradeFailed, WorkloadFailed, OSError) as exc:
            error = str(exc)
            if not proxy.alive() and not isinstance(exc, ProxyFailed):
                error += "; " + proxy.failure()
            return failed(f"{type(exc).__name__}: {error}")
        except Exception as exc:  # a bench bug: keep the run going, but say so loudly
            traceback.print_exc()
            return failed(f"bench internal error: {type(exc).__name__}: {exc}")
        finally:
            await proxy.stop()
        extra = dict(measurement.extra)
        if ws_log is not None:
            # Sanity check that ngxws really logged every frame (not bench data).
            lines = _count_lines(ws_log) if ws_log.exists() else 0
            frames = backend.counters.read()["frames_in"] - frames_before
            extra["ws_log_lines_per_frame"] = lines / frames if frames else 0.0
        window = measurement.window
        return CellResult(
            workers,
            workload.key,
            round_no,
            side,
            value=measurement.value,
            seconds=window.seconds,
            work=measurement.work,
            proxy_cpu_s=window.proxy_cpu_s,
            gen_cpu_s=window.gen_cpu_s,
            backend_cpu_s=window.backend_cpu_s,
            extra=extra,
            cpu_busy_s={str(cpu): busy for cpu, busy in window.cpu_busy_s.items()},
        )

    def _cleanup_cell(self, cell: CellResult) -> None:
        prefix = self.rundir / f"wp{cell.workers}-{cell.workload}-r{cell.round}-{cell.side}"
        log = prefix / "ws.log"
        if log.exists():
            log.unlink()  # can be hundreds of MB; never kept

    async def run(self) -> list[CellResult]:
        """All cells, in order, with a progress line for each on stderr."""
        options = self.options
        await self._ensure_backend()
        try:
            for workers in options.workers:
                for key in options.workloads:
                    workload = BY_KEY[key]
                    for round_no in range(1, options.rounds + 1):
                        for side in options.sides:
                            started = time.monotonic()
                            cell = await self.run_cell(workers, workload, round_no, side)
                            self._cleanup_cell(cell)
                            self.cells.append(cell)
                            _progress(cell, workload, time.monotonic() - started)
        finally:
            await self.backend.stop()
        return self.cells


def _progress(cell: CellResult, workload: Workload, elapsed: float) -> None:
    where = f"[wp={cell.workers} {cell.workload} round {cell.round} {cell.side:<5}]"
    if cell.value is None:
        print(f"{where} ERROR {cell.error} ({elapsed:.1f}s)", file=sys.stderr, flush=True)
        return
    shares = " ".join(
        f"{name} {pct:.0f}%"
        for name, cpu in (
            ("proxy", cell.proxy_cpu_s),
            ("gen", cell.gen_cpu_s),
            ("backend", cell.backend_cpu_s),
        )
        if (pct := cell.share(cpu)) is not None
    )
    print(
        f"{where} {cell.value:,.1f} {workload.metric} (cpu: {shares}) ({elapsed:.1f}s)",
        file=sys.stderr,
        flush=True,
    )


def _meta(options: Options, affinity: Affinity, nofile: int) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": sorted(os.sched_getaffinity(0) | affinity.proxy_cpus),
        "python": sys.version.split()[0],
        "nginx": nginx_version(options.nginx_bin),
        "nginx_bin": options.nginx_bin,
        "ngxws_cmd": options.ngxws_cmd,
        "rounds": options.rounds,
        "workloads": options.workloads,
        "workers": options.workers,
        "sides": options.sides,
        "duration": options.duration,
        "warmup": options.warmup,
        "idle_conns": options.idle_conns,
        "affinity": affinity.as_json(),
        "rlimit_nofile": nofile,
        "cpu_clock": "schedstat (ns)" if procfs.cpu_seconds(os.getpid()) else "stat ticks",
        "machine": machine_facts(
            nginx=nginx_version(options.nginx_bin),
            proxy_cpus=affinity.as_json()["proxy_cpus"],
            load_cpus=affinity.as_json()["load_cpus"],
            workers=options.workers,
            cwd=options.cwd,
        ),
    }


async def run_bench(options: Options) -> tuple[list[CellResult], list[Summary], dict[str, Any]]:
    """Run everything; print the table; write the JSON; return what was written."""
    nofile = raise_nofile()
    affinity = plan_affinity(options.affinity)
    if affinity.load_cpus:
        os.sched_setaffinity(0, affinity.load_cpus)
    meta = _meta(options, affinity, nofile)
    if "W6" in options.workloads and 2 * options.idle_conns + 256 > nofile:
        # The proxy holds two descriptors per tunnel, under the same inherited limit.
        print(
            f"bench: warning: W6 with {options.idle_conns} connections needs about "
            f"{2 * options.idle_conns + 256} descriptors in the proxy; RLIMIT_NOFILE is {nofile}",
            file=sys.stderr,
        )
    rundir = Path(tempfile.mkdtemp(prefix="ngxws-bench-"))
    print(
        f"bench: run dir {rundir}; proxy CPUs {sorted(affinity.proxy_cpus) or 'any'}, "
        f"load generator + backend CPUs {sorted(affinity.load_cpus) or 'any'}; "
        f"RLIMIT_NOFILE {nofile}; {meta['nginx']}",
        file=sys.stderr,
        flush=True,
    )
    driver = Driver(options, affinity, rundir)
    try:
        cells = await driver.run()
    finally:
        if not options.keep:
            shutil.rmtree(rundir, ignore_errors=True)
    summaries = [
        summarize(cells, workers, BY_KEY[key], options.rounds, affinity.as_json())
        for workers in options.workers
        for key in options.workloads
    ]
    print(render_table(summaries, meta))
    if options.json_path is not None:
        write_json(options.json_path, meta, cells, summaries)
        print(f"\nresults written to {options.json_path}")
    return cells, summaries, meta
