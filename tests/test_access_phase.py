"""The access phase's combination of handler answers (ngx_http_core_access_phase),
table-driven; the whole phase is checked against nginx in
tests/differential/cases_auth.py."""

from __future__ import annotations

import pytest

from ngxws.access import access_verdict
from ngxws.http.access_phase import Denial, Verdicts

BASIC = ("WWW-Authenticate", 'Basic realm="b"')
BEARER = ("WWW-Authenticate", 'Bearer realm="a"')

# (satisfy any?, answers of allow/deny, auth_basic, auth_request in order
#  -- None: declined --, what the client gets: None or (status, headers))
TABLE = [
    (False, [None, None, None], None),
    (False, [0, 0, 0], None),
    (False, [403, None, None], (403, [])),
    (False, [0, (401, BASIC), 0], (401, [BASIC])),
    (False, [0, 0, (401, BEARER)], (401, [BEARER])),
    (False, [0, 0, 500], (500, [])),
    (True, [None, None, None], None),
    (True, [0, (401, BASIC), 403], None),  # the first "ok" decides
    (True, [403, (401, BASIC), 0], None),
    (True, [403, (401, BASIC), (401, BEARER)], (401, [BASIC, BEARER])),
    (True, [403, None, 403], (403, [])),
    (True, [403, (401, BASIC), 403], (401, [BASIC])),  # 401 wins over 403
    (True, [403, None, 500], (500, [])),  # an error ends the phase at once
    (True, [None, (401, BASIC), None], (401, [BASIC])),
]


@pytest.mark.parametrize(("any_", "answers", "expected"), TABLE)
def test_verdicts(any_: bool, answers: list[object], expected: tuple[int, list[tuple[str, str]]] | None) -> None:
    verdicts = Verdicts(any_)
    denial: Denial | None = None
    for answer in answers:
        if isinstance(answer, tuple):
            denial = verdicts.add(answer[0], [answer[1]])
        else:
            denial = verdicts.add(answer if isinstance(answer, int) else None)
        if denial is not None or verdicts.passed:
            break
    else:
        denial = verdicts.result()
    got = None if denial is None else (denial.status, denial.headers)
    assert got == expected


@pytest.mark.parametrize(
    ("rules", "addr", "verdict"),
    [
        ((), "127.0.0.1", None),
        ((("allow", "127.0.0.1"),), "10.0.0.1", None),  # declined: matters to satisfy any
        ((("allow", "127.0.0.1"), ("deny", "all")), "127.0.0.1", "allow"),
        ((("deny", "127.0.0.0/8"), ("allow", "all")), "127.0.0.2", "deny"),
        ((("deny", "10.0.0.0/8"),), "::ffff:10.1.2.3", "deny"),
    ],
)
def test_access_verdict(rules: tuple[tuple[str, str], ...], addr: str, verdict: str | None) -> None:
    assert access_verdict(rules, addr) == verdict
