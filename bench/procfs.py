"""What the benchmark reads from /proc: process trees, CPU time and memory.

CPU time comes from ``/proc/PID/task/TID/schedstat`` (nanoseconds on CPU,
summed over threads) because ``/proc/PID/stat`` counts in 10 ms ticks, too
coarse for a proxy that uses 1% of a core for three seconds (workload W7).
When schedstat is missing the tick counters are used instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the ``(comm)``, which may hold spaces."""
    text = (_PROC / str(pid) / "stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that exist now (nginx: master + workers)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    if not (_PROC / str(root)).exists():
        return []
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by all threads of ``pid``; 0.0 if it is gone."""
    total_ns = 0
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            try:
                total_ns += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return 0.0
    if total_ns:
        return total_ns / 1e9
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each pid, keyed by pid (so a window can match them up)."""
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two :func:`tree_cpu` readings (new pids count in full)."""
    return sum(max(0.0, value - before.get(pid, 0.0)) for pid, value in after.items())


def cpu_busy() -> dict[int, float]:
    """Seconds each CPU has been busy since boot, whoever ran on it (/proc/stat:
    everything but idle and iowait).  On a shared machine this says whether a
    pinned side's CPU was taken by something else during a window."""
    busy: dict[int, float] = {}
    try:
        lines = (_PROC / "stat").read_text().splitlines()
    except OSError:
        return busy
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            ticks = [int(x) for x in rest.split()[:8]]
            busy[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4]) / _TICK
        except (ValueError, IndexError):
            continue
    return busy


@dataclass(frozen=True)
class Memory:
    """Resident memory of a set of processes, in bytes."""

    pss: int
    rss: int


def memory(pids: list[int]) -> Memory:
    """Summed PSS and RSS (``/proc/PID/smaps_rollup``) over ``pids``."""
    pss = rss = 0
    for pid in pids:
        try:
            text = (_PROC / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            if name == "Pss":
                pss += int(rest.split()[0]) * 1024
            elif name == "Rss":
                rss += int(rest.split()[0]) * 1024
    return Memory(pss=pss, rss=rss)


def process_group(pid: int) -> int | None:
    """The process group of ``pid``, or ``None`` if it is gone."""
    try:
        return int(_stat_fields(pid)[2])
    except (OSError, ValueError, IndexError):
        return None
