"""Connecting to the upstream a ``proxy_pass`` names.

Peer choice lives in ``routing.peers`` (sans-I/O); this module only opens the
TCP connection with ``proxy_connect_timeout`` and walks to the next peer on
``error``/``timeout`` as ``proxy_next_upstream`` says, reporting failures
back so ``max_fails``/``fail_timeout`` take effect.
"""

from __future__ import annotations

import asyncio

# getaddrinfo() imports this codec on first use; with every descriptor taken
# that import fails (EMFILE) and a request would die of it.  Import it now.
import encodings.idna  # noqa: F401
from collections.abc import Callable
from dataclasses import dataclass

from ngxws.config.addresses import is_address
from ngxws.config.model import Config, ProxyPass, ProxySettings
from ngxws.fdlimits import errno_text, fd_exhausted
from ngxws.proxy.deadline import within
from ngxws.proxy.resolver import NameCache, ResolveFailed
from ngxws.routing.peers import PeerSelector, PeerTarget
from ngxws.running import running_loop
from ngxws.tls import UpstreamTLS


class UpstreamUnavailable(Exception):
    """No peer could be reached: nginx answers 502 (or 504 on timeout).

    ``alert``: the detail is a whole nginx error line (``socket() failed
    ...``), logged at nginx's level for it, not ngxws's "... while proxying";
    ``whole``: a whole nginx line at the error level (``... could not be
    resolved``)."""

    def __init__(self, status: int, detail: str, alert: bool = False, whole: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.alert = alert
        self.whole = whole


@dataclass
class UpstreamLink:
    """An open upstream connection and which peer it reached."""

    transport: asyncio.Transport
    protocol: asyncio.Protocol
    peer: PeerTarget

    @property
    def addr(self) -> str:
        """``$upstream_addr``: ``ip:port`` (or ``unix:/path``)."""
        return self.peer.label


class UpstreamPools:
    """One selector per proxy_pass target, kept for the worker's lifetime so
    round-robin and failure state carry across requests."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._selectors: dict[tuple[str, str, int], PeerSelector] = {}
        self.names = NameCache()  # the ``resolver`` answers this worker keeps

    async def selector_for(self, pp: ProxyPass, settings: ProxySettings, variable: bool) -> PeerSelector:
        """The peers of a ``proxy_pass`` target (``variable``: rendered from
        one with variables).  A rendered name that is no ``upstream {}`` and
        no address is looked up as nginx does: with the ``resolver`` in force
        (fresh peers per request, as ngx_http_upstream_create_round_robin_peer
        makes them); without one, by the system (README: a difference)."""
        if pp.unix is not None:
            return self.unix_selector(pp.unix)
        resolver = settings.resolver
        if variable and pp.upstream is None and resolver is not None and not is_address(pp.host):
            try:
                found = await self.names.resolve(resolver, pp.host, settings.resolver_timeout)
            except ResolveFailed as exc:
                raise UpstreamUnavailable(502, str(exc), whole=True) from None
            return PeerSelector([PeerTarget(address, pp.port) for address in found])
        return self.selector(pp)

    def unix_selector(self, path: str) -> PeerSelector:
        key = ("unix:", path, 0)
        sel = self._selectors.get(key)
        if sel is None:
            sel = self._selectors[key] = PeerSelector.for_unix(path)
        return sel

    def selector(self, pp: ProxyPass, host: str | None = None, port: int | None = None) -> PeerSelector:
        h = host if host is not None else pp.host
        p = port if port is not None else pp.port
        key = (pp.upstream or "", h, p)
        sel = self._selectors.get(key)
        if sel is None:
            up = self._config.upstream(pp.upstream) if pp.upstream else None
            sel = PeerSelector.for_target(up, h, p)
            self._selectors[key] = sel
        return sel


class Attempts:
    """One request's walk over its peers: the selector's candidates in
    order, how many were tried, and nginx's bound on them (u->peer.tries:
    every peer of the upstream, backups included, at most
    ``proxy_next_upstream_tries``); ``last`` is the failure to report when
    the walk ends."""

    __slots__ = ("candidates", "tried", "tries", "last")

    def __init__(self, selector: PeerSelector, key: str, settings: ProxySettings) -> None:
        self.candidates = selector.candidates(key)  # ip_hash: client address; hash: the rendered key
        self.tried = 0
        bound = settings.next_upstream_tries
        self.tries = min(selector.total, bound) if bound else selector.total
        self.last = (502, "no live upstreams")

    def may_go_on(self, settings: ProxySettings, failure: str, method: str = "") -> bool:
        """ngx_http_upstream_next() / _test_next(): whether a ``failure``
        (``error``, ``timeout``, ``http_502``...) tries the next peer -- the
        word in proxy_next_upstream, a peer left to try (``u->peer.tries``),
        and for a request sent (``method``; "" for a connect that failed)
        that is a POST, LOCK or PATCH, ``non_idempotent`` too."""
        words = settings.next_upstream
        if "off" in words or self.tried >= self.tries or failure not in words:
            return False
        return method not in _NON_IDEMPOTENT or "non_idempotent" in words

    def move_on(self, selector: PeerSelector, peer: PeerTarget, failure: str, status: int, detail: str) -> None:
        """The walk goes on past ``peer``: blamed (not for a 403/404:
        NGX_PEER_NEXT), its failure kept for the walk's end."""
        if failure not in ("http_403", "http_404"):
            selector.failed(peer)
        self.last = (status, detail)


def connect_failure_word(status: int) -> str:
    """The proxy_next_upstream word of a failed connect (``Attempts.last``)."""
    return "timeout" if status == 504 else "error"


async def connect_upstream(
    selector: PeerSelector,
    settings: ProxySettings,
    protocol_factory: Callable[[], asyncio.Protocol],
    attempts: Attempts,
    tls: UpstreamTLS | None = None,
) -> UpstreamLink:
    """Try the next peers of ``attempts`` until one accepts the connection
    (the first one at once: the caller decided that a peer is tried)."""
    loop = running_loop()
    first = True
    for peer in attempts.candidates:
        if not first and not attempts.may_go_on(settings, connect_failure_word(attempts.last[0])):
            break
        first = False
        attempts.tried += 1
        try:
            if peer.conf.unix is not None:
                coro = loop.create_unix_connection(protocol_factory, peer.conf.unix)
            else:
                coro = loop.create_connection(
                    protocol_factory,
                    peer.host,
                    peer.port,
                    ssl=tls.context if tls is not None else None,  # proxy_pass https://
                    server_hostname=tls.server_hostname if tls is not None else None,
                )
            transport, protocol = await within(coro, settings.connect_timeout)
        except asyncio.TimeoutError:
            selector.failed(peer)
            attempts.last = timed_out(peer)
            continue
        except OSError as exc:
            attempts.last = connect_failure(selector, peer, exc, tls)
            continue
        selector.succeeded(peer)
        # uvloop sets TCP_NODELAY on every TCP transport (as nginx's
        # tcp_nodelay on); asking for the socket object would cost a Python
        # socket per connection.
        return UpstreamLink(transport, protocol, peer)
    raise UpstreamUnavailable(*attempts.last)


def timed_out(peer: PeerTarget) -> tuple[int, str]:
    """proxy_connect_timeout expired: the status and error-log text."""
    return 504, f"upstream timed out (connect) to {peer.label}"


def connect_failure(
    selector: PeerSelector, peer: PeerTarget, exc: OSError, tls: UpstreamTLS | None
) -> tuple[int, str]:
    """connect() failed: the peer is blamed, the status and error-log text;
    raises UpstreamUnavailable (500, no next peer) when descriptors ran out."""
    if fd_exhausted(exc):
        # nginx: socket() failed -> NGX_ERROR -> 500, no next peer,
        # the peer not blamed (ngx_event_connect_peer)
        scheme = "https" if tls is not None else "http"
        raise UpstreamUnavailable(
            500,
            f"socket() failed {errno_text(exc)} while connecting to upstream, "
            f'upstream: "{scheme}://{peer.label}/"',
            alert=True,
        ) from None
    selector.failed(peer)
    return 502, f"connect() to {peer.label} failed ({exc})"


# ngx_http_upstream_next_errors: the answers proxy_next_upstream may name
# (403 and 404 do not count against the peer: NGX_PEER_NEXT)
NEXT_STATUSES = {500: "http_500", 502: "http_502", 503: "http_503", 504: "http_504",
                 403: "http_403", 404: "http_404", 429: "http_429"}  # fmt: skip
_NON_IDEMPOTENT = frozenset({"POST", "LOCK", "PATCH"})
