"""bench.callcount still measures: its rewrite of the worker's loop line
finds that line, and the profiled copy upgrades every connection."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_callcount_profiles_the_upgrade_path() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.callcount", "40", "5"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = re.search(r"(\d+) of 40 connections upgraded; per connection: (\d+) calls", out.stdout)
    assert found is not None, out.stdout
    assert found.group(1) == "40" and int(found.group(2)) > 0
    assert "function calls" in out.stdout  # the pstats table follows
