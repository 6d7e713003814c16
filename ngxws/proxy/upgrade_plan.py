"""What an upgrade's ``proxy_pass`` location decides once: its peers and
the upstream request head as literal text with slots (pure but for the
selector the worker's pools keep).

nginx compiles a location's ``proxy_set_header`` list at configuration
time (``ngx_http_proxy_init_headers``: constant lines copied, variables run
per request) and ``$proxy_host`` is the ``proxy_pass`` target's, fixed
for a target without variables.  ``FastUpgrade`` (fast_upgrade.py) made a
``RequestVariables`` per upgrade to fill four slots of that head; here the
head of a location is split once into text and the few slots that change
per request -- a client header (``$http_NAME``), ``$host`` -- with
``$proxy_host`` and the body framing of a request without body
(``$proxy_internal_body_length``/``_chunked``) folded in.  Anything this
does not read itself (a ``proxy_method``, a value of several parts or
other variables, a ``hash`` key, a ``map`` or ``set`` of one of these
names, captures named like them) leaves ``head`` None and the caller uses
``build_upstream_head`` with the request's variables, as before.
tests/test_upgrade_plan.py compares the two byte for byte over a table
of locations and requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ngxws.config.memo import PerObject
from ngxws.http.prepared_head import PreparedHead, prepared
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import proxy_host_of, proxy_uri_of
from ngxws.routing.servers import normalise_host

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.proxy.upstream import UpstreamPools
    from ngxws.routing.peers import PeerSelector

__all__ = ["UpgradePlan", "plan_of"]

# slot kinds: a client header's first value (by lower-cased name), $host
_HEADER = 1
_HOST = 2

_Step = str | tuple[str, int, str]

# names RequestVariables.get finds before the ones read here when they are
# set (``set``, named captures, auth_request_set): checked per request
_FOLDED = ("proxy_host", "proxy_internal_body_length", "proxy_internal_chunked")


class UpgradePlan:
    """One location's upgrade, as far as it is the same for every request."""

    __slots__ = (
        "loc", "pools", "maps", "selector", "proxy_host", "proxy_port", "hashed", "head_nobody", "head_zero",
        "prepared", "version", "plain_uri", "logs",
    )

    def __init__(self, loc: Location, pools: UpstreamPools, maps: Mapping[str, object]) -> None:
        pp = loc.proxy_pass
        assert pp is not None and not pp.has_variables and pp.unix is None
        self.loc = loc
        self.pools = pools
        self.maps = maps
        self.selector: PeerSelector = pools.selector(pp)
        self.proxy_host = proxy_host_of(pp)
        self.proxy_port = str(pp.port)
        self.hashed = self.selector.balance == "hash" and bool(self.selector.hash_key)
        self.plain_uri = pp.uri is None
        # (server, whether the worker logs its tunnels' frames): born_spliced()
        self.logs: tuple[Server, bool] | None = None
        settings = loc.proxy
        self.version = f" HTTP/{settings.http_version}"
        # the location's header list as build_upstream_head sends it
        # (ngxws.http.prepared_head), its slots narrowed down here
        p = self.prepared = prepared(settings)
        foldable = (
            settings.method is None and settings.set_body is None and not self.hashed
            and not any(name in maps for name in _FOLDED)
        )  # fmt: skip
        self.head_nobody = self._steps(p, None) if foldable else None
        self.head_zero = self._steps(p, "0") if foldable else None

    def _steps(self, p: PreparedHead, length: str | None) -> tuple[_Step, ...] | None:
        """The prepared lines with $proxy_host and the body framing folded
        into the constant text, a client header or $host as a slot; None
        when a line needs the whole variable machinery."""
        # no body: never chunked, a Content-Length only when the client sent one
        folded = dict(zip(_FOLDED, (self.proxy_host, length or "", ""), strict=True))
        steps: list[_Step] = []
        const = ""
        for step in p.steps:
            if isinstance(step, str):
                const += step
                continue
            prefix, _template, var = step
            value = folded.get(var)
            if value is not None:
                if value:  # an empty value sends no line
                    const += prefix + value
                continue
            if var.startswith("http_"):
                slot: _Step = (prefix, _HEADER, var[5:].replace("_", "-").lower())
            elif var == "host":
                slot = (prefix, _HOST, "")
            else:
                return None
            if const:
                steps.append(const)
                const = ""
            steps.append(slot)
        if const:
            steps.append(const)
        return tuple(steps)

    def head(self, request: RequestHead, server: Server) -> bytes | None:
        """The upstream request head of ``request`` (no body), or None when
        the request's own variables are needed (``set``, named captures,
        auth_request_set values may stand for a name read here)."""
        index = request.header_map
        steps = (
            self.head_zero if "content-length" in index or index.get("transfer-encoding") else self.head_nobody
        )
        if steps is None:
            return None
        if self.plain_uri:
            uri = request.request_uri
        else:
            pp = self.loc.proxy_pass
            assert pp is not None
            uri = proxy_uri_of(pp, self.loc.pattern, self.loc.modifier, request)
        out = [request.method, " ", uri, self.version]
        for step in steps:
            if isinstance(step, str):
                out.append(step)
                continue
            prefix, kind, name = step
            if kind == _HEADER:
                value = index.get(name)
            else:
                host = request.uri_host or index.get("host")
                value = normalise_host(host) if host else (server.server_names[0] if server.server_names else "")
            if value:
                out.append(prefix)
                out.append(value)
        self.prepared.client_lines(request.headers, out)
        out.append("\r\n\r\n")
        return "".join(out).encode("latin-1", "replace")


_PLANS: PerObject[Location, UpgradePlan] = PerObject()  # a rewrite ... break makes a location per request


def plan_of(loc: Location, pools: UpstreamPools, maps: Mapping[str, object]) -> UpgradePlan:
    """The plan of ``loc`` for the worker whose pools and maps these are
    (made on first use, kept while the location lives)."""
    plan = _PLANS.get(loc)
    if plan is not None and plan.pools is pools and plan.maps is maps:
        return plan
    return _PLANS.put(loc, UpgradePlan(loc, pools, maps))
