"""Choosing the upstream peer, the way ngx_http_upstream_round_robin does.

Sans-I/O: the selector hands out an ordered list of candidates for one
request and is told which of them failed; the clock is injectable so the
``max_fails``/``fail_timeout`` window can be tested without sleeping.

- round robin is nginx's *smooth weighted* round robin (each pick adds every
  peer's weight to its current weight, takes the largest, subtracts the total);
- a peer with ``max_fails`` failures inside ``fail_timeout`` is skipped for
  ``fail_timeout``; ``down`` peers never get traffic; ``backup`` peers only
  when every primary is unavailable;
- ``ip_hash`` (first three octets, nginx's 113/6271 hash) and ``hash KEY``
  (CRC32, Cache::Memcached-compatible) pick on the weight line exactly as
  nginx does, so both pick the same peer for the same client/key;
  ``least_conn`` picks the fewest active connections (ties: round robin);
- ``hash KEY consistent`` is nginx's ketama ring (``ngx_http_upstream_init_chash``):
  160 points per unit of weight for every server line, placed by the CRC32
  of the address as written, so a key reaches the same server as in nginx
  and a server added or removed moves only its own share of the keys.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ngxws.config.model import Upstream, UpstreamPeer


@dataclass(eq=False)
class PeerTarget:
    """One address a request may go to, with its balancing state."""

    host: str
    port: int
    # The `server` line's parameters (weight, max_fails, backup...); one
    # line may resolve to several addresses, each its own target.
    conf: UpstreamPeer = field(default_factory=lambda: UpstreamPeer("", 0))
    current_weight: int = 0
    fails: int = 0
    checked: float = 0.0
    accessed: float = 0.0
    effective_weight: int = 1
    active: int = field(default=0)
    # the socket family of ``host`` for a plain connect (dial.family_of),
    # noted by the first connect; -1: not known yet
    family: int | None = field(default=-1, repr=False)
    # ``$upstream_addr`` and the error log's name of it, made once: the
    # address never changes (set in __post_init__)
    label: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.conf.unix is not None:
            self.label = f"unix:{self.conf.unix}"
        elif ":" in self.host:
            self.label = f"[{self.host}]:{self.port}"
        else:
            self.label = f"{self.host}:{self.port}"


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
        consistent: bool = False,
    ) -> None:
        self.primary = [p for p in peers if not p.conf.backup]
        self.backup = [p for p in peers if p.conf.backup]
        self.balance = balance
        self.hash_key = hash_key
        self._clock = clock
        for p in peers:
            p.effective_weight = p.conf.weight
        # ip_hash / hash walk the weights of every primary peer, down ones included
        self._total_weight = sum(p.conf.weight for p in self.primary) or 1
        self._ring = chash_ring(self.primary) if consistent and balance == "hash" else None
        self.total = len(self.primary) + len(self.backup)
        # nginx's "single" peer (one server, no backup; _rr_candidates),
        # whatever the balancing: every request's one candidate, no walk
        only = self.primary[0] if len(self.primary) == 1 and not self.backup else None
        self._single = None if only is None else (() if only.conf.down else (only,))

    @classmethod
    def for_target(cls, upstream: Upstream | None, host: str, port: int) -> PeerSelector:
        if upstream is None:
            return cls([PeerTarget(h, p) for h, p in _resolve(host, port)])
        targets: list[PeerTarget] = []
        for peer in upstream.peers:
            targets.extend(_targets_of(peer))
        return cls(targets, upstream.balance, upstream.hash_key, consistent=upstream.hash_consistent)

    @classmethod
    def for_unix(cls, path: str) -> PeerSelector:
        return cls([PeerTarget("", 0, UpstreamPeer("", 0, unix=path))])

    def _usable(self, p: PeerTarget, tried: set[int], now: float) -> bool:
        if id(p) in tried or p.conf.down:
            return False
        return not (p.conf.max_fails and p.fails >= p.conf.max_fails and now - p.checked <= p.conf.fail_timeout)

    def _chosen(self, p: PeerTarget, now: float) -> PeerTarget:
        if now - p.checked > p.conf.fail_timeout:
            p.checked = now
        return p

    def _pick_rr(self, pool: list[PeerTarget], tried: set[int], now: float) -> PeerTarget | None:
        """ngx_http_upstream_get_peer(): smooth weighted round robin over
        effective weights (lowered by failures, recovering by one per pick)."""
        best: PeerTarget | None = None
        total = 0
        for p in pool:
            if not self._usable(p, tried, now):
                continue
            p.current_weight += p.effective_weight
            total += p.effective_weight
            if p.effective_weight < p.conf.weight:
                p.effective_weight += 1
            if best is None or p.current_weight > best.current_weight:
                best = p
        if best is None:
            return None
        best.current_weight -= total
        return self._chosen(best, now)

    def _pick_least(self, pool: list[PeerTarget], tried: set[int], now: float) -> PeerTarget | None:
        """ngx_http_upstream_get_least_conn_peer(): fewest active per weight;
        ties broken by round robin, starting at the first of them."""
        best: PeerTarget | None = None
        many = False
        start = 0
        for i, p in enumerate(pool):
            if not self._usable(p, tried, now):
                continue
            if best is None or p.active * best.conf.weight < best.active * p.conf.weight:
                best, many, start = p, False, i
            elif p.active * best.conf.weight == best.active * p.conf.weight:
                many = True
        if best is None:
            return None
        total = 0
        if many:
            first = best
            for p in pool[start:]:
                if not self._usable(p, tried, now):
                    continue
                if p.active * first.conf.weight != first.active * p.conf.weight:
                    continue
                p.current_weight += p.effective_weight
                total += p.effective_weight
                if p.effective_weight < p.conf.weight:
                    p.effective_weight += 1
                if p.current_weight > best.current_weight:
                    best = p
        best.current_weight -= total
        return self._chosen(best, now)

    def _by_weight(self, w: int) -> PeerTarget:
        for p in self.primary:
            if w < p.conf.weight:
                return p
            w -= p.conf.weight
        return self.primary[-1]

    def _hash_candidates(self, key: str, tried: set[int]) -> Iterator[PeerTarget]:
        """ngx_http_upstream_get_ip_hash_peer() / get_hash_peer(): up to 20
        draws on the weight line, then round robin."""
        if self.balance == "ip_hash":
            addr = _ip_hash_bytes(key)
            state = 89
        else:
            state = 0
            rehash = 0
        draws = 0
        while len(self.primary) > 1 and (self.balance == "ip_hash" or key):
            now = self._clock()
            if self.balance == "ip_hash":
                for byte in addr:
                    state = (state * 113 + byte) % 6271
                w = state % self._total_weight
            else:
                prefix = str(rehash).encode() if rehash else b""
                state += (zlib.crc32(prefix + key.encode("latin-1", "replace")) >> 16) & 0x7FFF
                rehash += 1
                w = state % self._total_weight
            p = self._by_weight(w)
            if self._usable(p, tried, now):
                tried.add(id(p))
                draws = 0
                yield self._chosen(p, now)
                continue
            draws += 1
            if draws > 20:
                break
        yield from self._rr_candidates(tried)

    def _chash_candidates(self, ring: Ring, key: str, tried: set[int]) -> Iterator[PeerTarget]:
        """ngx_http_upstream_get_chash_peer(): from the first point at or
        after the key's CRC32, the next server line with a usable address
        (smooth weighted round robin among that line's addresses); up to
        20 points passed over, then round robin.  A retry starts again at
        the point the last pick came from."""
        point = ring.first_at(zlib.crc32(key.encode("latin-1", "replace")))
        passed = 0
        while len(self.primary) > 1 and key and passed <= 20:
            now = self._clock()
            server = ring.servers[point % len(ring.servers)]
            best = self._pick_rr([p for p in self.primary if p.conf.server == server], tried, now)
            if best is None:
                point += 1
                passed += 1
                continue
            tried.add(id(best))
            yield best
        yield from self._rr_candidates(tried)

    def _rr_candidates(self, tried: set[int]) -> Iterator[PeerTarget]:
        for pool in (self.primary, self.backup):
            while True:
                now = self._clock()
                if len(pool) == 1 and pool is self.primary and not self.backup:
                    # nginx's "single" peer (one server, no backup): no
                    # max_fails check, it is always tried unless down
                    only = pool[0]
                    p = None if (id(only) in tried or only.conf.down) else only
                elif self.balance == "least_conn":
                    p = self._pick_least(pool, tried, now)
                else:
                    p = self._pick_rr(pool, tried, now)
                if p is None:
                    break
                tried.add(id(p))
                yield p

    def candidates(self, key: str) -> Iterator[PeerTarget]:
        """Peers to try for one request, best first; each at most once.

        ``key`` is the client address for ``ip_hash`` and the rendered
        ``hash`` key for ``hash``; other methods ignore it."""
        if self._single is not None:
            return iter(self._single)
        tried: set[int] = set()
        if self._ring is not None:
            return self._chash_candidates(self._ring, key, tried)
        if self.balance in ("ip_hash", "hash"):
            return self._hash_candidates(key, tried)
        return self._rr_candidates(tried)

    def failed(self, p: PeerTarget) -> None:
        """ngx_http_upstream_free_round_robin_peer() with NGX_PEER_FAILED."""
        now = self._clock()
        p.fails += 1
        p.accessed = now
        p.checked = now
        if p.conf.max_fails:
            p.effective_weight -= p.conf.weight // p.conf.max_fails
        if p.effective_weight < 0:
            p.effective_weight = 0

    def succeeded(self, p: PeerTarget) -> None:
        if p.accessed < p.checked:
            p.fails = 0


class Ring:
    """``hash ... consistent``'s points: their hashes, ascending, and the
    server line (as written) each belongs to."""

    __slots__ = ("hashes", "servers")

    def __init__(self, points: list[tuple[int, str]]) -> None:
        self.hashes = [h for h, _ in points]
        self.servers = [s for _, s in points]

    def first_at(self, value: int) -> int:
        """ngx_http_upstream_find_chash_point(): the first point >= value
        (one past the last when none: the caller wraps around)."""
        return bisect.bisect_left(self.hashes, value)


def chash_ring(peers: list[PeerTarget]) -> Ring:
    """ngx_http_upstream_init_chash(): for every address of every server
    line, ``weight * 160`` points; point j hashes the line's host, a NUL,
    its port (the text after the last ``:`` when only digits follow it;
    none for ``unix:``) and the previous point's hash (four bytes, little
    endian; zero for the first) -- Cache::Memcached::Fast's ring.  Sorted,
    equal hashes kept once."""
    points: list[tuple[int, str]] = []
    for p in peers:
        server = p.conf.server
        if server[:5].lower() == "unix:":
            host, port = server[5:], ""
        else:
            digits = len(server) - len(server.rstrip("0123456789"))
            cut = len(server) - digits - 1
            host, port = (server[:cut], server[cut + 1 :]) if cut >= 0 and server[cut] == ":" else (server, "")
        base = host.encode("latin-1", "replace") + b"\0" + port.encode("latin-1", "replace")
        prev = 0
        for _ in range(p.conf.weight * 160):
            prev = zlib.crc32(base + prev.to_bytes(4, "little"))
            points.append((prev, server))
    points.sort(key=lambda point: point[0])  # nginx's qsort: by hash alone
    kept: list[tuple[int, str]] = []
    for point in points:
        if not kept or kept[-1][0] != point[0]:
            kept.append(point)
    return Ring(kept)


def _ip_hash_bytes(addr: str) -> bytes:
    """What ip_hash hashes: the first three octets of IPv4, all of IPv6, and
    three zero bytes for anything else (unix clients)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return b"\0\0\0"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return ip.packed
    v4 = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip
    assert v4 is not None
    return v4.packed[:3]


def _targets_of(peer: UpstreamPeer) -> list[PeerTarget]:
    if peer.unix is not None:
        return [PeerTarget("", 0, peer)]
    return [
        PeerTarget(h, p, peer)
        for h, p in _resolve(peer.host, peer.port)
    ]
