"""ngxws against Debian's nginx 1.22 on the same confs, case by case (issue 4).

Skipped as a whole when no nginx binary is installed (``make nginx``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from cases import CASES, G  # noqa: E402
from oracle import NGINX, Case, Pool, observe, statuses  # noqa: E402

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian nginx not installed")


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    p = Pool(G)
    yield p
    p.close()


def _param(c: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    return pytest.param(c, id=f"{c.group}: {c.id}", marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_same_as_nginx(pool: Pool, case: Case) -> None:
    running = pool.get(case.group)
    expected = observe(running, "nginx", case)
    if case.expect:
        assert statuses(expected) == list(case.expect), f"nginx answered differently than the case says: {expected}"
    got = observe(running, "ngxws", case)
    assert got == expected
