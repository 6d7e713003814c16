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

``Verdicts`` is that combination, with no I/O; ``run_access_phase`` feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ngxws.access import access_verdict, check_basic_auth
from ngxws.config.model import Location, Server
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables
from ngxws.proxy.auth_request import auth_subrequest

if TYPE_CHECKING:
    from ngxws.proxy.context import RequestIO

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


async def run_access_phase(
    conn: RequestIO,
    head: RequestHead,
    server: Server,
    loc: Location,
    v: RequestVariables,
) -> Denial | None:
    """None lets the request through; sets ``conn.remote_user`` and
    ``conn.auth_vars`` as the handlers that ran decide."""
    access = loc.access
    verdicts = Verdicts(access.satisfy_any)
    if access.rules:
        verdict = access_verdict(access.rules, conn.remote_addr)
        if verdict == "deny":
            conn.worker.log_error(
                f'access forbidden by rule, client: {conn.remote_addr}, request: "{head.request_line}"'
            )
        rc = None if verdict is None else (OK if verdict == "allow" else 403)
        denial = verdicts.add(rc)
        if denial is not None or verdicts.passed:
            return denial
    if access.auth_basic is not None and access.auth_basic_user_file is not None:
        result = check_basic_auth(access, head.header("authorization"), v.render(access.auth_basic))
        if result.status == OK:
            conn.remote_user = result.user
        challenge = [("WWW-Authenticate", result.challenge)] if result.challenge else None
        denial = verdicts.add(result.status, challenge)
        if denial is not None or verdicts.passed:
            return denial
    if access.auth_request is not None:
        sub = await auth_subrequest(conn, head, server, access.auth_request, access.auth_request_set)
        # set before the status is looked at: error_page targets read them
        conn.auth_vars.update(sub.variables)
        if sub.status in (401, 403):
            rc = sub.status
        elif 200 <= sub.status < 300:
            rc = OK
        else:
            conn.worker.log_error(f"auth request unexpected status: {sub.status}")
            rc = 500
        denial = verdicts.add(rc, sub.challenges() if rc == 401 else None)
        if denial is not None or verdicts.passed:
            return denial
    return verdicts.result()
