"""bench.fixed_rate still measures: both proxies get the offered work and
each cell reports the proxy CPU per unit of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("kind", "rate", "unit"), [("churn", "300", "connection"), ("echo", "3000", "round trip")])
def test_fixed_rate_compares_both_proxies(kind: str, rate: str, unit: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.fixed_rate", kind, rate, "1", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    cells = re.findall(rf"round 0 (ngxws|nginx): ([\d,]+) {unit}s in ([\d.]+) s .* ([\d.]+) us per {unit}", out.stdout)
    assert sorted(side for side, *_ in cells) == ["nginx", "ngxws"], out.stdout
    for _, work, seconds, per in cells:
        # the offered rate was served: at least four fifths of RATE per second
        assert float(work.replace(",", "")) >= 0.8 * float(rate) * float(seconds), out.stdout
        assert float(per) > 0
    assert re.search(rf"medians: ngxws [\d.]+, nginx [\d.]+ us per {unit}; ngxws / nginx [\d.]+", out.stdout)
