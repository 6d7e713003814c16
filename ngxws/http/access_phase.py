"""nginx's access phase: allow/deny, auth_basic, auth_request, and ``satisfy``.

The handlers run in nginx's order (ngx_http_init_phase_handlers() runs the
access phase's handlers in reverse module order: ngx_http_access_module,
ngx_http_auth_basic_module, ngx_http_auth_request_module).  Each answers
"declined" (nothing configured, or no allow/deny rule matched), "ok", or a
status; ngx_http_core_access_phase() combines them:

- ``satisfy all``: the first status that is not "ok" ends the request;
- ``satisfy any``: the first "ok" lets the request through (and drops the
  challenges gathered so far); 401 and 403 are remembered (401 wins) and
  sent when no handler said "ok"; any other status ends the request.

``Verdicts`` is that combination, with no I/O; ``ngxws.http.engine`` feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK = 0


@dataclass
class Denial:
    """The access phase's answer: a status and headers for it (WWW-Authenticate)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Verdicts:
    """ngx_http_core_access_phase() + the post-access phase, for one request."""

    satisfy_any: bool
    access_code: int = 0
    challenges: list[tuple[str, str]] = field(default_factory=list)
    passed: bool = False

    def add(self, rc: int | None, headers: list[tuple[str, str]] | None = None) -> Denial | None:
        """One handler's answer (None: declined); a Denial ends the phase at once."""
        if rc is None or self.passed:
            return None
        if not self.satisfy_any:
            return None if rc == OK else Denial(rc, list(headers or ()))
        if rc == OK:
            self.passed = True
            self.access_code = 0
            self.challenges = []
            return None
        if rc in (401, 403):
            if self.access_code != 401:
                self.access_code = rc
            self.challenges.extend(headers or ())
            return None
        return Denial(rc, list(headers or ()))

    def result(self) -> Denial | None:
        """After every handler: the remembered 401/403 of ``satisfy any``."""
        if self.passed or not self.access_code:
            return None
        return Denial(self.access_code, self.challenges)
