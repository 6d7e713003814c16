"""The README's benchmark table is what ``python -m bench.readme`` renders
from the committed bench/results/latest.json -- never typed by hand.

Also: the rendering names the machine and flags a saturated load side, and
a results file records the facts a number needs (cores, CPU model, versions,
affinity, worker count, per-workload saturation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import procfs
from bench.machine import cpu_model, describe
from bench.readme import BEGIN, END, main, render, replace_block
from bench.report import saturation

ROOT = Path(__file__).resolve().parent.parent
LATEST = ROOT / "bench" / "results" / "latest.json"
README = ROOT / "README.md"


def test_readme_table_is_rendered_from_committed_latest_json() -> None:
    document = json.loads(LATEST.read_text())
    readme = README.read_text()
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1
    assert replace_block(readme, render(document)) == readme, (
        "README's benchmark table is not what bench/results/latest.json renders: "
        "run `make bench-table` (never edit the table by hand)"
    )


def test_check_command_agrees() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.readme", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_latest_json_records_the_machine_and_saturation() -> None:
    document = json.loads(LATEST.read_text())
    machine = document["meta"]["machine"]
    for key in (
        "cpu_model",
        "logical_cpus",
        "kernel",
        "python",
        "uvloop",
        "nginx",
        "affinity",
        "worker_processes",
        "ngxws_c_speedups",
    ):
        assert key in machine, key
    assert machine["logical_cpus"] >= 1 and machine["cpu_model"]
    for summary in document["summary"]:
        for side in summary["sides"].values():
            assert "load_saturated" in side and "proxy_saturated" in side


def _document(load_saturated: bool) -> dict[str, object]:
    side = {
        "median": 1000.0,
        "proxy_us_per_unit": 40.0,
        "load_saturated": load_saturated,
        "proxy_saturated": False,
    }
    return {
        "meta": {
            "started": "2026-01-01T00:00:00+0000",
            "rounds": 3,
            "duration": 3.0,
            "warmup": 1.0,
            "workers": [1],
            "machine": {
                "cpu_model": "Test CPU 9000",
                "logical_cpus": 2,
                "arch": "x86_64",
                "kernel": "6.1.0",
                "python": "CPython 3.11.7",
                "uvloop": "0.23.0",
                "nginx": "nginx/1.22.1",
                "ngxws_commit": "abc1234",
                "ngxws_c_speedups": True,
                "affinity": {"proxy_cpus": [0], "load_cpus": [1]},
                "worker_processes": [1],
            },
        },
        "summary": [
            {
                "workers": 1,
                "workload": "W4",
                "metric": "round trips/s",
                "sides": {"ngxws": side, "nginx": dict(side, load_saturated=False)},
                "ratio_of_medians": 1.0,
                "target": "ngxws/nginx >= 1.0",
                "target_holds": True,
            }
        ],
    }


def test_render_names_machine_and_flags_saturated_load_side() -> None:
    text = render(_document(load_saturated=True))
    assert "2 logical CPUs (Test CPU 9000, x86_64)" in text
    assert "CPython 3.11.7" in text and "uvloop 0.23.0" in text and "nginx/1.22.1" in text
    assert "proxy pinned to CPU 0, load generator + backend to CPU 1" in text
    row = next(line for line in text.splitlines() if line.startswith("| W4"))
    assert "**SATURATED** (ngxws)" in row and "1,000 /s" in row and "40 vs 40" in row
    calm = next(line for line in render(_document(False)).splitlines() if line.startswith("| W4"))
    assert calm.endswith("| ok |")


def test_command_rewrites_only_the_block(tmp_path: Path) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(_document(load_saturated=False)))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nhand-typed numbers\n{END}\nafter\n")
    assert main(["--json", str(results), "--readme", str(readme), "--check"]) == 1
    assert main(["--json", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "hand-typed" not in text and text.startswith("# x\n\nbefore\n") and text.endswith("after\n")
    assert main(["--json", str(results), "--readme", str(readme), "--check"]) == 0


def test_replace_block_needs_markers() -> None:
    with pytest.raises(ValueError):
        replace_block("no markers here", "table")


def test_saturation_from_pinned_shares() -> None:
    pin = {"proxy_cpus": [0], "load_cpus": [1]}
    assert saturation(50.0, 46.0, 47.0, pin) == (False, True)
    assert saturation(95.0, 10.0, 10.0, pin) == (True, False)
    assert saturation(95.0, 10.0, 10.0, {"proxy_cpus": [], "load_cpus": []}) == (None, None)
    # the load side's CPU busy with other jobs: starved, so saturated all the same
    assert saturation(50.0, 10.0, 10.0, pin, load_busy_pct=95.0) == (False, True)


def test_cpu_busy_reads_every_cpu() -> None:
    busy = procfs.cpu_busy()
    assert set(busy) >= set(os.sched_getaffinity(0))
    assert all(seconds >= 0 for seconds in busy.values())


def test_cpu_model_from_cpuinfo() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n") == "Some CPU @ 2GHz"
    assert describe({"affinity": {}})  # a partial record still renders
