"""Choosing the upstream peer, the way ngx_http_upstream_round_robin does.

Sans-I/O: the selector hands out an ordered list of candidates for one
request and is told which of them failed; the clock is injectable so the
``max_fails``/``fail_timeout`` window can be tested without sleeping.

- round robin is nginx's *smooth weighted* round robin (each pick adds every
  peer's weight to its current weight, takes the largest, subtracts the total);
- a peer with ``max_fails`` failures inside ``fail_timeout`` is skipped for
  ``fail_timeout``; ``down`` peers never get traffic; ``backup`` peers only
  when every primary is unavailable;
- ``ip_hash`` and ``hash $remote_addr`` give a stable choice per client;
  ``least_conn`` picks the fewest active connections (ties: round robin).
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ngxws.config.model import Upstream, UpstreamPeer


@dataclass(eq=False)
class PeerTarget:
    """One address a request may go to, with its balancing state."""

    host: str
    port: int
    weight: int = 1
    max_fails: int = 1
    fail_timeout: float = 10.0
    backup: bool = False
    down: bool = False
    unix: str | None = None
    current_weight: int = 0
    fails: int = 0
    checked: float = 0.0
    active: int = field(default=0)

    @property
    def label(self) -> str:
        if self.unix is not None:
            return f"unix:{self.unix}"
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _resolve(host: str, port: int) -> list[tuple[str, int]]:
    """Addresses of a name, resolved once at start-up like nginx does."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return [(host, port)]  # connect() will report the failure per request
    seen: list[tuple[str, int]] = []
    for _fam, _t, _p, _c, sa in infos:
        addr = (str(sa[0]), int(sa[1]))
        if addr not in seen:
            seen.append(addr)
    return seen


class PeerSelector:
    """Balancing state for one upstream (block or plain host)."""

    def __init__(
        self,
        peers: list[PeerTarget],
        balance: str = "round_robin",
        hash_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = [p for p in peers if not p.backup]
        self.backup = [p for p in peers if p.backup]
        self.balance = balance
        self.hash_key = hash_key
        self._clock = clock

    @classmethod
    def for_target(cls, upstream: Upstream | None, host: str, port: int) -> PeerSelector:
        if upstream is None:
            return cls([PeerTarget(h, p) for h, p in _resolve(host, port)])
        targets: list[PeerTarget] = []
        for peer in upstream.peers:
            targets.extend(_targets_of(peer))
        return cls(targets, upstream.balance, upstream.hash_key)

    def _usable(self, p: PeerTarget, now: float) -> bool:
        if p.down:
            return False
        if p.max_fails and p.fails >= p.max_fails:
            if now - p.checked <= p.fail_timeout:
                return False
            p.fails = 0
        return True

    def _pick_rr(self, pool: list[PeerTarget], exclude: set[int], now: float) -> PeerTarget | None:
        best: PeerTarget | None = None
        total = 0
        for p in pool:
            if id(p) in exclude or not self._usable(p, now):
                continue
            p.current_weight += p.weight
            total += p.weight
            if best is None or p.current_weight > best.current_weight:
                best = p
        if best is not None:
            best.current_weight -= total
        return best

    def _pick_least(self, pool: list[PeerTarget], exclude: set[int], now: float) -> PeerTarget | None:
        live = [p for p in pool if id(p) not in exclude and self._usable(p, now)]
        if not live:
            return None
        fewest = min(p.active * 1.0 / p.weight for p in live)
        tied = [p for p in live if p.active * 1.0 / p.weight == fewest]
        return self._pick_rr(tied, set(), now) if len(tied) > 1 else tied[0]

    def _pick_hash(self, pool: list[PeerTarget], key: str, exclude: set[int], now: float) -> PeerTarget | None:
        live = [p for p in pool if id(p) not in exclude and self._usable(p, now)]
        if not live:
            return None
        if self.balance == "ip_hash":
            # nginx hashes the first three octets of an IPv4 address
            key = ".".join(key.split(".")[:3]) if key.count(".") == 3 else key
        digest = int.from_bytes(hashlib.md5(key.encode()).digest()[:4], "big")
        ring = [p for p in pool if not p.down]
        choice = ring[digest % len(ring)]
        if id(choice) not in exclude and self._usable(choice, now):
            return choice
        return live[digest % len(live)]

    def candidates(self, client_addr: str) -> Iterator[PeerTarget]:
        """Peers to try for one request, best first; each at most once."""
        tried: set[int] = set()
        for pool in (self.primary, self.backup):
            while True:
                now = self._clock()
                if self.balance in ("ip_hash", "hash"):
                    p = self._pick_hash(pool, client_addr, tried, now)
                elif self.balance == "least_conn":
                    p = self._pick_least(pool, tried, now)
                else:
                    p = self._pick_rr(pool, tried, now)
                if p is None:
                    break
                tried.add(id(p))
                yield p

    def failed(self, p: PeerTarget) -> None:
        p.fails += 1
        p.checked = self._clock()

    def succeeded(self, p: PeerTarget) -> None:
        p.fails = 0


def _targets_of(peer: UpstreamPeer) -> list[PeerTarget]:
    if peer.unix is not None:
        return [PeerTarget("", 0, peer.weight, peer.max_fails, peer.fail_timeout, peer.backup, peer.down, peer.unix)]
    return [
        PeerTarget(h, p, peer.weight, peer.max_fails, peer.fail_timeout, peer.backup, peer.down)
        for h, p in _resolve(peer.host, peer.port)
    ]
