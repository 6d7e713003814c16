"""From cell results to the printed table and the JSON file.

A *cell* is one workload run once against one proxy (one round).  For each
``(worker_processes, workload)`` pair the cells of both sides are reduced to
median/min/max, the ratio ngxws/nginx is formed per round (same round = run
back to back) and of the medians, and the target is judged on the ratio of
medians, at ``worker_processes 1`` only.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.proxies import NGINX, NGXWS
from bench.workloads import BY_KEY, Workload

# Above this share of its core(s), a side is saturated: noted next to its numbers.
SATURATED_PCT = 90.0


@dataclass(frozen=True)
class CellResult:
    """One workload, one proxy, one round: a value or an error, and the clocks."""

    workers: int
    workload: str
    round: int
    side: str
    value: float | None
    error: str | None = None
    seconds: float | None = None
    work: float | None = None
    proxy_cpu_s: float | None = None
    gen_cpu_s: float | None = None
    backend_cpu_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    # seconds each CPU was busy over the window, whoever used it (keys: CPU numbers as text)
    cpu_busy_s: dict[str, float] = field(default_factory=dict)

    @property
    def proxy_us_per_unit(self) -> float | None:
        """Proxy CPU microseconds per unit of work."""
        if self.proxy_cpu_s is None or not self.work:
            return None
        return 1e6 * self.proxy_cpu_s / self.work

    def share(self, cpu_s: float | None) -> float | None:
        """``cpu_s`` as a percentage of one core over the window."""
        if cpu_s is None or not self.seconds:
            return None
        return 100.0 * cpu_s / self.seconds

    def busy_pct(self, cpus: list[int]) -> float | None:
        """How busy ``cpus`` were over the window (anyone's work), in % of them."""
        if not cpus or not self.seconds or not self.cpu_busy_s:
            return None
        busy = sum(self.cpu_busy_s.get(str(cpu), 0.0) for cpu in cpus)
        return 100.0 * busy / (self.seconds * len(cpus))


@dataclass(frozen=True)
class SideSummary:
    """One side's cells of one workload, reduced."""

    rounds_ok: int
    rounds: int
    median: float | None
    min: float | None
    max: float | None
    proxy_us_per_unit: float | None
    proxy_pct: float | None
    gen_pct: float | None
    backend_pct: float | None
    extra: dict[str, float]
    errors: list[str]
    # From the CPU shares of the pinned cores (None without pinning): a side
    # at >= SATURATED_PCT of its cores.  A saturated load side means the
    # number measures the load generator + backend, not the proxy.
    proxy_saturated: bool | None = None
    load_saturated: bool | None = None
    # How busy the load side's CPUs were, whoever used them (/proc/stat): on
    # a shared machine other jobs can starve the load side without the load
    # generator's own share showing it.
    load_cpus_busy_pct: float | None = None


@dataclass(frozen=True)
class Summary:
    """Both sides of one workload at one ``worker_processes``, with ratios and target."""

    workers: int
    workload: str
    metric: str
    sides: dict[str, SideSummary]
    ratio_rounds: list[float | None]
    ratio_of_medians: float | None
    target: str
    target_judged: bool
    target_holds: bool | None
    note: str


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(clean) if clean else None


def saturation(
    proxy_pct: float | None,
    gen_pct: float | None,
    backend_pct: float | None,
    pin: dict[str, list[int]] | None,
    load_busy_pct: float | None = None,
) -> tuple[bool | None, bool | None]:
    """``(proxy_saturated, load_saturated)``: each side's CPU as a share of
    the cores it was pinned to, against :data:`SATURATED_PCT`.  The load side
    also counts as saturated when its CPUs were that busy with anyone's work
    (``load_busy_pct``, from /proc/stat): starved by other jobs, it could not
    have sent more either.  ``(None, None)`` without pinning (then the shares
    say nothing about headroom)."""
    if not pin or not pin.get("proxy_cpus") or not pin.get("load_cpus"):
        return None, None
    proxy = (proxy_pct or 0.0) / len(pin["proxy_cpus"])
    load = ((gen_pct or 0.0) + (backend_pct or 0.0)) / len(pin["load_cpus"])
    load = max(load, load_busy_pct or 0.0)
    return proxy >= SATURATED_PCT, load >= SATURATED_PCT


def _summarize_side(
    cells: list[CellResult], pin: dict[str, list[int]] | None = None
) -> SideSummary:
    ok = [c for c in cells if c.value is not None]
    values = [c.value for c in ok if c.value is not None]
    extra_keys = sorted({k for c in ok for k in c.extra})
    proxy_pct = _median([v for c in ok if (v := c.share(c.proxy_cpu_s)) is not None])
    gen_pct = _median([v for c in ok if (v := c.share(c.gen_cpu_s)) is not None])
    backend_pct = _median([v for c in ok if (v := c.share(c.backend_cpu_s)) is not None])
    load_busy = _median(
        [v for c in ok if (v := c.busy_pct(pin["load_cpus"] if pin else [])) is not None]
    )
    proxy_full, load_full = saturation(proxy_pct, gen_pct, backend_pct, pin, load_busy)
    return SideSummary(
        rounds_ok=len(ok),
        rounds=len(cells),
        median=_median(values),
        min=min(values) if values else None,
        max=max(values) if values else None,
        proxy_us_per_unit=_median([v for c in ok if (v := c.proxy_us_per_unit) is not None]),
        proxy_pct=proxy_pct,
        gen_pct=gen_pct,
        backend_pct=backend_pct,
        extra={
            k: m
            for k in extra_keys
            if (m := _median([c.extra[k] for c in ok if k in c.extra])) is not None
        },
        errors=[f"round {c.round}: {c.error}" for c in cells if c.error],
        proxy_saturated=proxy_full,
        load_saturated=load_full,
        load_cpus_busy_pct=load_busy,
    )


def summarize(
    cells: list[CellResult],
    workers: int,
    workload: Workload,
    rounds: int,
    pin: dict[str, list[int]] | None = None,
) -> Summary:
    """Reduce the cells of one ``(workers, workload)`` pair (``pin``: the
    affinity plan, for the saturation flags)."""
    mine = [c for c in cells if c.workers == workers and c.workload == workload.key]
    sides = {
        side: _summarize_side([c for c in mine if c.side == side], pin)
        for side in (NGXWS, NGINX)
        if any(c.side == side for c in mine)
    }
    by_round = {(c.side, c.round): c.value for c in mine}
    ratio_rounds: list[float | None] = []
    for r in range(1, rounds + 1):
        a, b = by_round.get((NGXWS, r)), by_round.get((NGINX, r))
        ratio_rounds.append(a / b if a is not None and b else None)
    ratio = None
    if NGXWS in sides and NGINX in sides:
        a, b = sides[NGXWS].median, sides[NGINX].median
        ratio = a / b if a is not None and b else None
    judged_on = ratio
    if workload.target.absolute:  # e.g. W8's latency bound: ngxws's own number
        judged_on = sides[NGXWS].median if NGXWS in sides else None
    judged = workers == 1 and judged_on is not None
    return Summary(
        workers=workers,
        workload=workload.key,
        metric=workload.metric,
        sides=sides,
        ratio_rounds=ratio_rounds,
        ratio_of_medians=ratio,
        target=("ngxws " if workload.target.absolute else "ngxws/nginx ") + str(workload.target),
        target_judged=judged,
        target_holds=workload.target.holds(judged_on) if judged and judged_on is not None else None,
        note=workload.target_note,
    )


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _bound_by(stats: SideSummary, pin: dict[str, list[int]]) -> str:
    """Which side held a throughput number down, from CPU shares of the pinned cores.

    Only meaningful with pinning: the proxy has ``proxy_cpus`` cores, the load
    generator and backend share ``load_cpus``.  A side at >= 90% of its cores
    is saturated; when neither is, the number is latency-bound (the workload
    keeps too little in flight to fill either side).
    """
    proxy_full, load_full = saturation(
        stats.proxy_pct, stats.gen_pct, stats.backend_pct, pin, stats.load_cpus_busy_pct
    )
    if proxy_full is None:
        return ""
    if proxy_full and load_full:
        return "  [both sides saturated]"
    if load_full:
        return "  [LOAD-BOUND: load side saturated, proxy is not]"
    if proxy_full:
        return "  [proxy-bound]"
    return "  [latency-bound: neither side saturated]"


def render_table(summaries: list[Summary], meta: dict[str, Any]) -> str:
    """The human-readable report: one block per workload, grouped by worker_processes."""
    lines: list[str] = []
    if "machine" in meta:
        lines.append("machine: " + describe(meta["machine"]))
    for workers in meta["workers"]:
        block = [s for s in summaries if s.workers == workers]
        if not block:
            continue
        pin = meta["affinity"]
        lines.append("")
        lines.append(
            f"== worker_processes {workers} | proxy CPUs {pin['proxy_cpus'] or 'any'}, "
            f"load generator + backend CPUs {pin['load_cpus'] or 'any'} | "
            f"{meta['rounds']} round(s) x {meta['duration']:g} s (+{meta['warmup']:g} s warm-up), "
            f"order per round: {' then '.join(meta['sides'])} =="
        )
        for summary in block:
            workload = BY_KEY[summary.workload]
            better = "higher" if workload.higher_is_better else "lower"
            description = workload.description.format(idle_conns=meta["idle_conns"])
            lines.append("")
            lines.append(
                f"{workload.key} {workload.name}: {description} "
                f"[{workload.metric}, {better} is better]"
            )
            header = (
                f"  {'side':<6} {'median':>13} {'min':>13} {'max':>13} "
                f"{'proxy us/' + workload.work_unit:>22} {'proxy%':>7} {'gen%':>6} {'backend%':>9}  extra"
            )
            lines.append(header)
            for side, stats in summary.sides.items():
                label = side
                if side == NGINX and workload.ws_log and not workload.probed:
                    label = "nginx*"
                if stats.median is None:
                    first = stats.errors[0] if stats.errors else "no result"
                    lines.append(
                        f"  {label:<6} ERROR ({stats.rounds - stats.rounds_ok}/{stats.rounds} rounds): {first}"
                    )
                    continue
                extra = " ".join(f"{k}={_num(v, 2)}" for k, v in stats.extra.items())
                if workload.higher_is_better:
                    extra += _bound_by(stats, pin)
                if stats.errors:
                    extra += f"  [{len(stats.errors)} round(s) failed: {stats.errors[0]}]"
                lines.append(
                    f"  {label:<6} {_num(stats.median, 1):>13} {_num(stats.min, 1):>13} "
                    f"{_num(stats.max, 1):>13} {_num(stats.proxy_us_per_unit, 3):>22} "
                    f"{_num(stats.proxy_pct, 1):>7} {_num(stats.gen_pct, 1):>6} "
                    f"{_num(stats.backend_pct, 1):>9}  {extra}".rstrip()
                )
            rounds = " ".join(_ratio(r) for r in summary.ratio_rounds)
            if summary.target_holds is None:
                verdict = "not judged" + (
                    " (judged at worker_processes 1)"
                    if summary.workers != 1
                    else " (needs both sides)"
                )
            else:
                verdict = "HOLDS" if summary.target_holds else "MISSED"
            lines.append(
                f"  ratio ngxws/nginx per round: {rounds}; of medians: "
                f"{_ratio(summary.ratio_of_medians)}; target {summary.target}: {verdict}"
            )
            if summary.note:
                lines.append(f"  * {summary.note}")
    judged = [s for s in summaries if s.workers == 1]
    if judged:
        lines.append("")
        lines.append("Targets (worker_processes 1, ratio of medians ngxws/nginx unless noted):")
        for summary in judged:
            workload = BY_KEY[summary.workload]
            if summary.target_holds is None:
                verdict = "not judged (needs both sides)"
            else:
                verdict = "HOLDS" if summary.target_holds else "MISSED"
            shown = _ratio(summary.ratio_of_medians)
            target = str(workload.target)
            if workload.target.absolute:
                ngxws = summary.sides.get(NGXWS)
                shown = _num(ngxws.median if ngxws else None)
                target = f"{target} (ngxws, not a ratio)"
            lines.append(f"  {workload.key} {workload.name:<18} {shown:>6}  {target:<7} {verdict}")
    lines.append("")
    lines.append(
        "proxy% / gen% / backend%: CPU time over the measure window as a share of one core "
        "(proxy = whole process tree; gen = load generator; backend = upstream server)."
    )
    return "\n".join(lines)


def write_json(
    path: Path, meta: dict[str, Any], cells: list[CellResult], summaries: list[Summary]
) -> None:
    """Write everything (every cell, every summary) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "meta": meta,
        "cells": [asdict(c) | {"proxy_us_per_unit": c.proxy_us_per_unit} for c in cells],
        "summary": [asdict(s) for s in summaries],
    }
    path.write_text(json.dumps(_finite(document), indent=2, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """The same structure with NaN/inf floats as ``null`` (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
