"""The engine's ``Connection`` and ``State`` for tests that run its phases
without sockets (test_engine.py, test_plain_phases.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from ngxws.client_certs import ConnectionTLS
from ngxws.config.model import Server
from ngxws.http.realip import ClientAddress
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables
from ngxws.limits.state import RequestLimits


class Conn:
    """The engine's ``Connection``: a client at ``remote``, no socket."""

    def __init__(self, remote: str = "127.0.0.1", tls: object | None = None, server_port: int = 80) -> None:
        self.server_port = server_port
        self.address = ClientAddress(remote, 40000, None, ("127.0.0.1", server_port))
        self.tls = cast(ConnectionTLS | None, tls)
        self.remote_addr, self.remote_port = remote, 40000
        self.remote_user = ""
        self.auth_vars: dict[str, str] = {}
        self.error_headers: list[tuple[str, str]] = []
        self.script_vars: dict[str, str] = {}
        self.script_named: Mapping[str, str] = {}
        self.requests = 0
        self.request_id = ""

    def variables(self, head: RequestHead, server: Server, captures: tuple[str, ...]) -> RequestVariables:
        return RequestVariables(
            head=head, remote_addr=self.remote_addr, remote_port=self.remote_port, server_addr="127.0.0.1",
            server_port=self.server_port, server_name=server.server_names[0] if server.server_names else "",
            captures=captures, remote_user=self.remote_user, auth_set=self.auth_vars, client_address=self.address,
            variables=self.script_vars, named=self.script_named, clock=lambda: 0.0, random_hex=lambda: "0" * 32,
        )  # fmt: skip


class Req:
    """The engine's ``State``: one request across its internal redirects."""

    def __init__(self, head: RequestHead, error: int = 0, upgrade: bool = False) -> None:
        self.head: RequestHead | None = head
        self.error, self.upgrade = error, upgrade
        self.redirects = 0
        self.error_page_done = False
        self.status_override: int | None = None
        self.limits = RequestLimits()

    def redirected(self, head: RequestHead) -> Req:
        inner = Req(head, upgrade=self.upgrade)
        inner.redirects, inner.status_override, inner.limits = self.redirects, self.status_override, self.limits
        inner.error_page_done = self.error_page_done
        return inner
