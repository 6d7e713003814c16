"""The eight workloads, as data (:data:`WORKLOADS`) plus one runner each.

A runner gets a :class:`CellContext` (a started proxy, the backend's counters,
the timing) and returns a :class:`Measurement`.  Throughput workloads open
their clients, let the load run for the warm-up, then read every counter and
every CPU clock (:class:`Probe`) at both ends of a fixed measure window; the
value is work done in the window divided by its length.  W6 measures memory
around the opening of its connections instead, W7 the proxy's CPU while a
paced load runs.

Every runner closes its clients in ``finally``, so a timeout or a dead proxy
leaves nothing open behind the cell.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from bench import procfs
from bench.backend import BackendCounters
from bench.loadgen import (
    ChurnClient,
    EchoClient,
    FloodClient,
    IdleClient,
    LoadStats,
    UpgradeFailed,
    UpgradingClient,
    abort_all,
    connect,
    open_clients,
    tick_frames,
)
from bench.proxies import ProxyFailed, ProxyProcess
from bench.static_load import BIG, SMALL, ensure_files, run_clients
from bench.wire import Opcode, client_frame, close_payload, server_frame, upgrade_request

HOST = "127.0.0.1"
# One write of the flood clients: about this many bytes of whole frames.
FLOOD_BATCH_BYTES = 256 * 1024


class WorkloadFailed(Exception):
    """The cell has no valid number; the message says why."""


class NoProgress(WorkloadFailed):
    """The window saw no work at all (a stalled proxy is an error, not a zero)."""


class StreamAltered(WorkloadFailed):
    """The backend found frame boundaries where the fixed-size frames cannot put them."""


@dataclass(frozen=True)
class Snapshot:
    """Every counter and clock the driver reads at one end of a window."""

    at: float
    proxy_cpu: dict[int, float]
    gen_cpu: float
    backend_cpu: float
    backend: dict[str, int]
    round_trips: int
    connections_done: int
    errors: int
    cpu_busy: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """Differences between two snapshots."""

    seconds: float
    proxy_cpu_s: float
    gen_cpu_s: float
    backend_cpu_s: float
    backend: dict[str, int]
    round_trips: int
    connections_done: int
    errors: int
    # seconds each CPU was busy (anyone's work), for the load-side saturation flag
    cpu_busy_s: dict[int, float] = field(default_factory=dict)


class Probe:
    """Reads the proxy's process tree, this process (the load generator) and the backend."""

    def __init__(self, proxy: ProxyProcess, backend_pid: int, counters: BackendCounters) -> None:
        self._proxy = proxy
        self._backend_pid = backend_pid
        self._counters = counters

    def snapshot(self, stats: LoadStats | None = None) -> Snapshot:
        """Read everything now."""
        return Snapshot(
            at=time.perf_counter(),
            proxy_cpu=procfs.tree_cpu(self._proxy.tree()),
            gen_cpu=procfs.cpu_seconds(os.getpid()),
            backend_cpu=procfs.cpu_seconds(self._backend_pid),
            backend=self._counters.read(),
            round_trips=stats.round_trips if stats else 0,
            connections_done=stats.connections_done if stats else 0,
            errors=stats.errors if stats else 0,
            cpu_busy=procfs.cpu_busy(),
        )

    @staticmethod
    def window(before: Snapshot, after: Snapshot) -> Window:
        """What happened between ``before`` and ``after``."""
        return Window(
            seconds=after.at - before.at,
            proxy_cpu_s=procfs.cpu_delta(before.proxy_cpu, after.proxy_cpu),
            gen_cpu_s=after.gen_cpu - before.gen_cpu,
            backend_cpu_s=after.backend_cpu - before.backend_cpu,
            backend={k: after.backend[k] - before.backend[k] for k in after.backend},
            round_trips=after.round_trips - before.round_trips,
            connections_done=after.connections_done - before.connections_done,
            errors=after.errors - before.errors,
            cpu_busy_s={
                cpu: max(0.0, busy - before.cpu_busy.get(cpu, busy))
                for cpu, busy in after.cpu_busy.items()
            },
        )


@dataclass(frozen=True)
class CellContext:
    """What a runner gets: where the proxy listens, how to measure, how long."""

    port: int
    proxy: ProxyProcess
    probe: Probe
    warmup: float
    duration: float
    idle_conns: int

    @property
    def host_header(self) -> str:
        """The ``Host`` the clients send."""
        return f"{HOST}:{self.port}"

    def check_proxy(self) -> None:
        """Raise :class:`ProxyFailed` if the proxy has exited."""
        if not self.proxy.alive():
            raise ProxyFailed(self.proxy.failure())

    async def measure(self, stats: LoadStats | None = None) -> Window:
        """Warm up, then read everything at both ends of the measure window."""
        await asyncio.sleep(self.warmup)
        self.check_proxy()
        before = self.probe.snapshot(stats)
        if stats is not None:
            stats.recording = True
        await asyncio.sleep(self.duration)
        after = self.probe.snapshot(stats)
        if stats is not None:
            stats.recording = False
        self.check_proxy()
        return Probe.window(before, after)


@dataclass(frozen=True)
class Measurement:
    """One cell's result: the workload's value, the work it stands for, and the clocks."""

    value: float
    work: float
    window: Window
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """``ngxws/nginx <op> threshold``, judged on the ratio of medians."""

    op: str
    threshold: float

    # judged on ngxws's own median (e.g. a latency bound), not on the ratio
    absolute: bool = False

    def holds(self, ratio: float) -> bool:
        """Whether ``ratio`` meets the target."""
        return ratio >= self.threshold if self.op == ">=" else ratio <= self.threshold

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


Runner = Callable[[CellContext], Awaitable[Measurement]]


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark.

    ``ws_log`` adds ``ws_log``/``ws_log_format`` to ngxws's conf only; nginx
    then runs the same load on the plain conf, so its number is W1's.
    """

    key: str
    name: str
    description: str
    metric: str
    higher_is_better: bool
    work_unit: str
    target: Target
    target_note: str
    run: Runner
    ws_log: bool = False
    # W8: a status page in both confs (ngxws: ws_stat, nginx: stub_status),
    # and nginx's access_log on, standing in for the per-frame ws_log.
    probed: bool = False


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


def _require_intact(window: Window) -> None:
    misaligned = window.backend["misaligned"]
    if misaligned:
        raise StreamAltered(
            f"backend saw {misaligned} read(s) with a frame boundary out of place: "
            "the proxy dropped, repeated or changed bytes"
        )


def _require_work(work: float, what: str, stats: LoadStats | None = None) -> None:
    if work <= 0:
        detail = f" (last client error: {stats.last_error})" if stats and stats.last_error else ""
        raise NoProgress(f"no {what} in the measure window{detail}")


@asynccontextmanager
async def flooding(ctx: CellContext, conns: int, frame: bytes) -> AsyncIterator[None]:
    """``conns`` clients write ``frame`` to /sink as fast as it is taken, until the block ends."""
    batch = frame * max(1, FLOOD_BATCH_BYTES // len(frame))
    request = upgrade_request(f"/sink?fixed={len(frame)}", ctx.host_header)
    clients: list[FloodClient] = []
    try:
        clients = await open_clients(lambda: FloodClient(request, batch), HOST, ctx.port, conns)
        for client in clients:
            client.start()
        yield
    finally:
        for client in clients:
            client.stop()
        abort_all(clients)


async def run_flood(ctx: CellContext, conns: int, payload_size: int, opcode: Opcode) -> Measurement:
    """W1/W2/W3: ``conns`` clients write fixed-size frames as fast as they are taken."""
    frame = client_frame(opcode, b"\x42" * payload_size)
    async with flooding(ctx, conns, frame):
        window = await ctx.measure()
    _require_intact(window)
    frames = window.backend["bytes_in"] / len(frame)
    _require_work(frames, "frame reached the backend")
    payload_mb = frames * payload_size / 1e6
    if payload_size >= 1 << 20:
        return Measurement(
            value=payload_mb / window.seconds,
            work=payload_mb,
            window=window,
            extra={"frames_per_s": frames / window.seconds},
        )
    return Measurement(
        value=frames / window.seconds,
        work=frames,
        window=window,
        extra={"payload_mb_per_s": payload_mb / window.seconds},
    )


async def run_echo(ctx: CellContext, conns: int, payload_size: int) -> Measurement:
    """W4: one frame in flight per client, a round trip per echo."""
    payload = b"\x42" * payload_size
    frame = client_frame(Opcode.TEXT, payload)
    reply_size = len(server_frame(Opcode.TEXT, payload))
    request = upgrade_request(f"/echo?fixed={len(frame)}", ctx.host_header)
    stats = LoadStats()
    clients: list[EchoClient] = []
    try:
        clients = await open_clients(
            lambda: EchoClient(request, frame, reply_size, stats), HOST, ctx.port, conns
        )
        for client in clients:
            client.start()
        window = await ctx.measure(stats)
    finally:
        for client in clients:
            client.stop()
        abort_all(clients)
    _require_intact(window)
    _require_work(window.round_trips, "round trip completed")
    latencies = sorted(stats.latencies)
    return Measurement(
        value=window.round_trips / window.seconds,
        work=window.round_trips,
        window=window,
        extra={
            "p50_ms": _percentile(latencies, 0.50) * 1e3,
            "p99_ms": _percentile(latencies, 0.99) * 1e3,
        },
    )


async def _churn_loop(
    ctx: CellContext, request: bytes, frames: bytes, stats: LoadStats, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        client: ChurnClient | None = None
        try:
            client = await connect(lambda: ChurnClient(request, frames), HOST, ctx.port, 5.0)
            await asyncio.wait_for(asyncio.shield(client.closed), 5.0)
            if client.got_close:
                stats.connections_done += 1
            else:
                stats.errors += 1
                stats.last_error = "connection ended without the server's close frame"
        except (OSError, asyncio.TimeoutError, UpgradeFailed) as exc:
            stats.errors += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            if client is not None and client.transport is not None:
                client.transport.abort()
            await asyncio.sleep(0.01)


async def run_churn(ctx: CellContext, loops: int) -> Measurement:
    """W5: ``loops`` concurrent loops of upgrade + one frame + close handshake."""
    frames = client_frame(Opcode.TEXT, b"\x42" * 64) + client_frame(Opcode.CLOSE, close_payload())
    request = upgrade_request("/sink", ctx.host_header)
    stats = LoadStats()
    stop = asyncio.Event()
    tasks = [
        asyncio.ensure_future(_churn_loop(ctx, request, frames, stats, stop)) for _ in range(loops)
    ]
    try:
        window = await ctx.measure(stats)
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=12.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)
    _require_work(window.connections_done, "connection completed", stats)
    return Measurement(
        value=window.connections_done / window.seconds,
        work=window.connections_done,
        window=window,
        extra={"errors": float(window.errors)},
    )


async def run_idle(ctx: CellContext) -> Measurement:
    """W6: memory the proxy holds per idle websocket connection.

    100 connections are opened and closed first, so one-time allocations
    (imports, first buffers, pools) are in the baseline; then PSS and RSS of
    the whole process tree are read before and 1 s after ``idle_conns``
    upgraded connections are open.
    """
    request = upgrade_request("/sink", ctx.host_header)
    count = ctx.idle_conns
    warm: list[IdleClient] = []
    clients: list[IdleClient] = []
    try:
        warm = await open_clients(lambda: IdleClient(request), HOST, ctx.port, 100)
        for client in warm:
            assert client.transport is not None
            client.transport.close()
        await asyncio.wait([asyncio.ensure_future(_closed(c)) for c in warm], timeout=5.0)
        await asyncio.sleep(0.5)
        ctx.check_proxy()
        memory_before = procfs.memory(ctx.proxy.tree())
        before = ctx.probe.snapshot()
        clients = await open_clients(
            lambda: IdleClient(request), HOST, ctx.port, count, concurrency=200, timeout=30.0
        )
        after = ctx.probe.snapshot()
        await asyncio.sleep(1.0)
        ctx.check_proxy()
        memory_after = procfs.memory(ctx.proxy.tree())
        held = ctx.probe.snapshot().backend["open"]
    finally:
        abort_all(warm)
        abort_all(clients)
    if held < count:
        raise NoProgress(f"backend holds {held} of {count} connections")
    window = Probe.window(before, after)
    return Measurement(
        value=(memory_after.pss - memory_before.pss) / count,
        work=count,
        window=window,
        extra={
            "rss_bytes_per_conn": (memory_after.rss - memory_before.rss) / count,
            "pss_before_mb": memory_before.pss / 1e6,
            "pss_after_mb": memory_after.pss / 1e6,
            "open_per_s": count / window.seconds,
        },
    )


async def _closed(client: UpgradingClient) -> None:
    await client.closed


async def run_paced(ctx: CellContext, conns: int, rate: float, payload_size: int) -> Measurement:
    """W7: ``conns`` clients each send ``rate`` frames/s of ``payload_size`` bytes."""
    frame = client_frame(Opcode.TEXT, b"\x42" * payload_size)
    request = upgrade_request(f"/sink?fixed={len(frame)}", ctx.host_header)
    clients: list[IdleClient] = []
    stop = asyncio.Event()
    ticker: asyncio.Future[int] | None = None
    try:
        clients = await open_clients(lambda: IdleClient(request), HOST, ctx.port, conns)
        ticker = asyncio.ensure_future(tick_frames(clients, frame, rate, stop))
        window = await ctx.measure()
    finally:
        stop.set()
        if ticker is not None:
            await asyncio.wait([ticker], timeout=2.0)
        abort_all(clients)
    _require_intact(window)
    frames = window.backend["frames_in"]
    _require_work(frames, "frame reached the backend")
    return Measurement(
        value=100.0 * window.proxy_cpu_s / window.seconds,
        work=frames,
        window=window,
        extra={"frames_per_s": frames / window.seconds},
    )


# W8: every probe not answered within this long counts as this long.
PROBE_TIMEOUT = 30.0
# W8: the probe process gets this long for all its probes (the cell's slack is 90 s).
PROBE_BUDGET = 70.0


async def _run_probes(ctx: CellContext, count: int) -> dict[str, list[float | None]]:
    """``bench.probe`` in its own process (its timings are not this loop's turns)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.probe",
        "--port",
        str(ctx.port),
        "--count",
        str(count),
        "--timeout",
        str(PROBE_TIMEOUT),
        "--budget",
        str(PROBE_BUDGET),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), PROBE_BUDGET + PROBE_TIMEOUT + 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise WorkloadFailed(f"probe process exited with {proc.returncode}")
    result: dict[str, list[float | None]] = json.loads(out)
    return result


def _latency_extra(name: str, samples: list[float | None]) -> dict[str, float]:
    answered = sorted(s for s in samples if s is not None)
    worst = sorted(answered + [PROBE_TIMEOUT] * (len(samples) - len(answered)))
    return {
        f"{name}_p50_ms": _percentile(worst, 0.50) * 1e3,
        f"{name}_p99_ms": _percentile(worst, 0.99) * 1e3,
        f"{name}_max_ms": (worst[-1] if worst else math.nan) * 1e3,
        f"{name}_unanswered": float(len(samples) - len(answered)),
    }


async def run_probed_flood(ctx: CellContext, conns: int, payload_size: int, probes: int) -> Measurement:
    """W8: W2's flood; meanwhile ``probes`` status-page GETs and ``probes``
    upgrade + echo, one at a time, timed from another process."""
    frame = client_frame(Opcode.TEXT, b"\x42" * payload_size)
    async with flooding(ctx, conns, frame):
        await asyncio.sleep(ctx.warmup)
        ctx.check_proxy()
        before = ctx.probe.snapshot()
        samples = await _run_probes(ctx, probes)
        after = ctx.probe.snapshot()
        ctx.check_proxy()
    window = Probe.window(before, after)
    _require_intact(window)
    extra = _latency_extra("stat", samples["stat"]) | _latency_extra("upgrade", samples["upgrade"])
    extra["flood_frames_per_s"] = window.backend["bytes_in"] / len(frame) / window.seconds
    value = max(extra["stat_p99_ms"], extra["upgrade_p99_ms"])
    return Measurement(value=value, work=2.0 * probes, window=window, extra=extra)


async def run_static(ctx: CellContext, conns: int, path: str, per_mb: bool) -> Measurement:
    """W9/W10: keep-alive GETs of a static file (bench/static_load.py)."""
    ensure_files()
    ctx.check_proxy()
    before = ctx.probe.snapshot()
    counter, seconds, answers, body = await run_clients(HOST, ctx.port, path, conns, ctx.warmup, ctx.duration)
    after = ctx.probe.snapshot()
    ctx.check_proxy()
    window = Probe.window(before, after)
    if per_mb:
        mb = body / 1e6
        if mb <= 0:
            raise NoProgress(f"no body bytes in the measure window ({counter.last_error})")
        return Measurement(value=mb / seconds, work=mb, window=window, extra={"errors": float(counter.errors)})
    if answers <= 0:
        raise NoProgress(f"no answer in the measure window ({counter.last_error})")
    return Measurement(value=answers / seconds, work=float(answers), window=window,
                       extra={"errors": float(counter.errors)})


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        key="W1",
        name="flood",
        description="64 conns, 64 B text frames, client->upstream",
        metric="frames/s",
        higher_is_better=True,
        work_unit="frame",
        target=Target(">=", 0.65),
        target_note="",
        run=partial(run_flood, conns=64, payload_size=64, opcode=Opcode.TEXT),
    ),
    Workload(
        key="W2",
        name="flood+ws_log",
        description="W1 with a ws_log_format line for every frame",
        metric="frames/s",
        higher_is_better=True,
        work_unit="frame",
        target=Target(">=", 0.10),
        target_note="nginx side = plain nginx on W1's conf (nginx has no ws_log)",
        run=partial(run_flood, conns=64, payload_size=64, opcode=Opcode.TEXT),
        ws_log=True,
    ),
    Workload(
        key="W3",
        name="bulk",
        description="8 conns, 1 MiB binary frames, client->upstream",
        metric="MB/s",
        higher_is_better=True,
        work_unit="MB",
        target=Target(">=", 1.0),
        target_note="",
        run=partial(run_flood, conns=8, payload_size=1 << 20, opcode=Opcode.BINARY),
    ),
    Workload(
        key="W4",
        name="echo",
        description="100 conns, 100 B frame, wait for the echo, repeat",
        metric="round trips/s",
        higher_is_better=True,
        work_unit="round trip",
        target=Target(">=", 1.0),
        target_note="",
        run=partial(run_echo, conns=100, payload_size=100),
    ),
    Workload(
        key="W5",
        name="churn",
        description="32 loops of upgrade + 1 frame + close",
        metric="connections/s",
        higher_is_better=True,
        work_unit="connection",
        target=Target(">=", 0.8),
        target_note="",
        run=partial(run_churn, loops=32),
    ),
    Workload(
        key="W6",
        name="idle",
        description="{idle_conns:,} idle websocket connections",
        metric="PSS bytes/conn",
        higher_is_better=False,
        work_unit="connection opened",
        target=Target("<=", 1.0),
        target_note="",
        run=run_idle,
    ),
    Workload(
        key="W7",
        name="module test shape",
        description="500 conns x 3 frames/s x 100 B",
        metric="proxy CPU %",
        higher_is_better=False,
        work_unit="frame",
        target=Target("<=", 1.0),
        target_note="",
        run=partial(run_paced, conns=500, rate=3.0, payload_size=100),
    ),
    Workload(
        key="W8",
        name="flood+log probes",
        description="W2's flood; meanwhile 50 stat GETs and 50 upgrade+echo, one at a time",
        metric="worst p99 ms (stat, upgrade)",
        higher_is_better=False,
        work_unit="probe",
        target=Target("<=", 50.0, absolute=True),
        target_note="ngxws logs every frame (ws_log); nginx (no module) has access_log on, "
        "one line per request, standing in for it; stat = ws_stat / stub_status",
        run=partial(run_probed_flood, conns=64, payload_size=64, probes=50),
        ws_log=True,
        probed=True,
    ),
    Workload(
        key="W9",
        name="static small",
        description="32 keep-alive conns GET a 1 KiB file (location /static/ alias)",
        metric="requests/s",
        higher_is_better=True,
        work_unit="request",
        target=Target(">=", 0.3),
        target_note="",
        run=partial(run_static, conns=32, path=SMALL, per_mb=False),
    ),
    Workload(
        key="W10",
        name="static 1 GiB",
        description="2 keep-alive conns GET a 1 GiB file over and over",
        metric="MB/s",
        higher_is_better=True,
        work_unit="MB",
        target=Target(">=", 0.5),
        target_note="",
        run=partial(run_static, conns=2, path=BIG, per_mb=True),
    ),
)

BY_KEY = {workload.key: workload for workload in WORKLOADS}
