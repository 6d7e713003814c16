"""What a result was measured on: the facts every run records next to its numbers.

A ratio against nginx means little without the machine (how many cores, which
CPU), the software on both sides (kernel, Python, uvloop, nginx, whether
ngxws's C frame scanner was built), and how the cores were shared (which CPUs
the proxy was pinned to, which ones the load generator and backend had, how
many workers).  ``python -m bench`` puts these in ``meta["machine"]`` of
``bench/results/latest.json``, and ``bench.readme`` prints them above the
README's table, so a number never travels without them.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's ``model name`` from /proc/cpuinfo (the first one; ``unknown`` if none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or "unknown"
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Processor", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def _package_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - a missing package is a fact to report, not an error
        return "not installed"


def _git_commit(cwd: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _speedups() -> bool:
    """Whether ngxws would use its C frame tracker (the bench's ngxws side imports the same tree)."""
    try:
        from ngxws.ws import frames
    except ImportError:
        return False
    return frames.FrameTracker is frames.CFrameTracker


def machine_facts(
    *,
    nginx: str,
    proxy_cpus: list[int],
    load_cpus: list[int],
    workers: list[int],
    cwd: Path,
) -> dict[str, Any]:
    """Everything a reader needs to weigh the numbers (all plain JSON values)."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count() or 0,
        "usable_cpus": sorted(os.sched_getaffinity(0) | set(proxy_cpus) | set(load_cpus)),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "uvloop": _package_version("uvloop"),
        "nginx": nginx,
        "ngxws_commit": _git_commit(cwd),
        "ngxws_c_speedups": _speedups(),
        "affinity": {"proxy_cpus": proxy_cpus, "load_cpus": load_cpus},
        "worker_processes": workers,
    }


def describe(machine: dict[str, Any]) -> str:
    """One line for humans: ``2 CPUs (Intel ...), Linux 6.1, CPython 3.11.7, ...``."""
    pin = machine.get("affinity", {})
    proxy, load = pin.get("proxy_cpus") or [], pin.get("load_cpus") or []
    if proxy and load:
        pinning = f"proxy pinned to CPU {','.join(map(str, proxy))}, load generator + backend to CPU {','.join(map(str, load))}"
    else:
        pinning = "no CPU pinning"
    workers = ", ".join(str(w) for w in machine.get("worker_processes", []))
    speedups = "C frame scanner" if machine.get("ngxws_c_speedups") else "pure-Python frame scanner"
    return (
        f"{machine.get('logical_cpus', '?')} logical CPUs ({machine.get('cpu_model', 'unknown')}, "
        f"{machine.get('arch', '?')}), kernel {machine.get('kernel', '?')}, "
        f"{machine.get('python', '?')}, uvloop {machine.get('uvloop', '?')}, "
        f"{machine.get('nginx', '?')}, ngxws {machine.get('ngxws_commit', '?')} ({speedups}); "
        f"{pinning}; worker_processes {workers}"
    )
