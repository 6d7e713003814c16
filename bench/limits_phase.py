"""``python -m bench.limits_phase``: what the preaccess phase costs one request.

One ``limit_req`` and one ``limit_conn`` zone keyed by ``$binary_remote_addr``
(10m each, in shared memory with their locks, as a worker uses them), limits
that never refuse: the cost of evaluating the keys, taking each zone's lock,
the leaky-bucket lookup, the connection count and its release.  Not part of
``make bench`` (no nginx counterpart: nginx does this in C).
"""

from __future__ import annotations

import time

from ngxws.config.limits import LimitConn, LimitReq, Limits, LimitZone
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables
from ngxws.limits.preaccess import Limiter
from ngxws.limits.state import RequestLimits
from ngxws.limits.zones import SharedZone

ROUNDS = 5
PER_ROUND = 20_000


def main() -> None:
    specs = (
        LimitZone("req", "r", "$binary_remote_addr", 10 << 20, rate=10**9),
        LimitZone("conn", "c", "$binary_remote_addr", 10 << 20),
    )
    limiter = Limiter({z.name: SharedZone(z) for z in specs})
    limits = Limits(req=(LimitReq("r", burst=10**9),), conn=(LimitConn("c", 10),))
    head = RequestHead("GET", "/", "1.1", [("Host", "x")], True)
    v = RequestVariables(head, "127.0.0.1", 1, "127.0.0.1", 80, "x")

    def key_of(template: str) -> bytes:
        return v.render(template).encode("latin-1")

    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(PER_ROUND):
            state = RequestLimits()
            limiter.limit_req(state, limits, key_of, "")
            limiter.limit_conn(state, limits, key_of, "")
            state.release()
        best = min(best, (time.perf_counter() - start) / PER_ROUND)
    print(
        f"limit_req + limit_conn + release: {best * 1e6:.1f} us per request "
        f"(best of {ROUNDS} x {PER_ROUND:,})"
    )


if __name__ == "__main__":
    main()
