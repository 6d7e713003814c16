"""limit_req / limit_conn: nginx's algorithms on the zone tables, the phase, reloads.

Unit vectors run the pure tables (``ngxws.limits.table``) on a bytearray
with the clock passed in, and the phase (``ngxws.limits.preaccess``) on real
shared zones with a fake clock; the numbers are what nginx's C arithmetic
gives (see ngx_http_limit_req_module.c).  The reload tests run a real ngxws.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from harness import free_port, ngxws, wait_for

from ngxws.config.limits import LimitConn, LimitReq, Limits, LimitZone
from ngxws.config.loader import load_config
from ngxws.config.model import Config
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables, binary_addr
from ngxws.limits.preaccess import Limiter
from ngxws.limits.state import RequestLimits
from ngxws.limits.table import (
    CONN_NODE,
    NGX_AGAIN,
    NGX_BUSY,
    NGX_ERROR,
    NGX_OK,
    REQ_NODE,
    ConnTable,
    ReqTable,
    capacity_for,
)
from ngxws.limits.zones import LimitZones, SharedZone, ZoneKeyChanged

SMALL = 32 * 1024  # the smallest zone nginx accepts


def req_table(rate: int, size: int = SMALL) -> ReqTable:
    return ReqTable(memoryview(bytearray(size)), size, rate)


# -- the leaky bucket (ngx_http_limit_req_lookup) ---------------------------------


def test_burst_excess_in_milli_requests_and_the_leak() -> None:
    t = req_table(rate=10_000)  # 10r/s
    now = 1_000_000
    # a new key starts at excess 0; each request at the same ms adds 1000
    got = [t.lookup(b"k", now, 5000, True)[:2] for _ in range(7)]
    assert got == [(NGX_OK, 0), (NGX_OK, 1000), (NGX_OK, 2000), (NGX_OK, 3000),
                   (NGX_OK, 4000), (NGX_OK, 5000), (NGX_BUSY, 6000)]  # fmt: skip
    # a refused request is not accounted: 250 ms later 2500 leaked
    assert t.lookup(b"k", now + 250, 5000, True)[:2] == (NGX_OK, 5000 - 2500 + 1000)
    # integer arithmetic as in C: rate * ms / 1000
    assert t.lookup(b"k", now + 251, 5000, True)[:2] == (NGX_OK, 3500 - 10 + 1000)


def test_rate_per_minute_is_integer_milli_requests() -> None:
    zone = load_zone("limit_req_zone $binary_remote_addr zone=z:32k rate=1r/m;")
    assert zone.rate == 16  # 1000 / 60, truncated, as ctx->rate
    t = req_table(zone.rate)
    assert t.lookup(b"k", 0, 0, True)[:2] == (NGX_OK, 0)
    assert t.lookup(b"k", 62, 0, True)[0] == NGX_BUSY  # 16 * 62 / 1000 == 0 leaked
    assert t.lookup(b"k", 62_500, 0, True)[:2] == (NGX_OK, 0)  # 1000 leaked


def test_clock_skew_between_workers_is_clamped() -> None:
    t = req_table(rate=1000)
    t.lookup(b"k", 100_000, 10_000, True)
    # another worker's "now" slightly behind: ms < 0 counts as 0
    assert t.lookup(b"k", 99_990, 10_000, True)[:2] == (NGX_OK, 1000)
    # far behind (ms < -60000): nginx takes ms = 1
    assert t.lookup(b"k", 10_000, 10_000, True)[:2] == (NGX_OK, 1999)


def test_lru_expire_frees_idle_drained_nodes_and_forces_the_oldest_when_full() -> None:
    size = SMALL
    t = req_table(rate=1000, size=size)
    cap = capacity_for(size, REQ_NODE)
    for i in range(cap):
        assert t.lookup(b"key%d" % i, 1000, 0, True)[0] == NGX_OK
    assert t.in_use() == cap
    # full: the least recently used state (key0) is dropped by force
    assert t.lookup(b"new", 1001, 0, True)[0] == NGX_OK
    assert t.find(_crc(b"key0"), b"key0") == -1 and t.in_use() == cap
    # a minute later, idle and fully leaked entries at the tail go (one or two per allocation)
    t.lookup(b"newer", 70_000, 0, True)
    assert t.find(_crc(b"key1"), b"key1") == -1 and t.find(_crc(b"key2"), b"key2") == -1


def test_could_not_allocate_node_when_the_tail_is_held() -> None:
    """The oldest node held by a multi-limit lookup in progress (count > 0)
    cannot be expired: nginx answers 503 after "could not allocate node"."""
    size = SMALL
    t = req_table(rate=1000, size=size)
    assert t.lookup(b"held", 0, 0, False)[0] == NGX_AGAIN  # count 1, at the tail
    for i in range(capacity_for(size, REQ_NODE) - 1):
        t.lookup(b"k%d" % i, 0, 0, True)
    assert t.lookup(b"one more", 0, 0, True)[0] == NGX_ERROR


def test_long_keys_are_kept_by_digest() -> None:
    t = req_table(rate=1000)
    a, b = b"x" * 300 + b"a", b"x" * 300 + b"b"
    t.lookup(a, 0, 5000, True)
    t.lookup(a, 0, 5000, True)
    assert t.lookup(b, 0, 5000, True)[:2] == (NGX_OK, 0)  # another key, another state
    assert t.lookup(a, 0, 5000, True)[:2] == (NGX_OK, 2000)


def test_documented_capacities() -> None:
    assert (REQ_NODE, CONN_NODE) == (128, 64)
    assert capacity_for(10 * 1024 * 1024, REQ_NODE) == 79_437
    assert capacity_for(10 * 1024 * 1024, CONN_NODE) == 154_201


# -- limit_conn's counts ----------------------------------------------------------


def test_conn_counts_free_at_zero_and_refuse_when_full() -> None:
    t = ConnTable(memoryview(bytearray(SMALL)), SMALL)
    rc, node = t.acquire(b"k", 2)
    assert rc == NGX_OK and t.acquire(b"k", 2)[0] == NGX_OK
    assert t.acquire(b"k", 2) == (NGX_BUSY, -1) and t.count(b"k") == 2
    t.release(node)
    t.release(node)
    assert t.count(b"k") == 0 and t.in_use() == 0
    nodes = [t.acquire(b"k%d" % i, 1)[1] for i in range(capacity_for(SMALL, CONN_NODE))]
    assert t.acquire(b"one more", 1) == (NGX_ERROR, -1)  # no LRU: a full zone refuses
    t.release(nodes[7])
    assert t.acquire(b"one more", 1)[0] == NGX_OK  # the freed node is reused


def _hammer(n: int) -> None:
    zone = _shared_conn_zone
    assert zone is not None and zone.conn is not None
    for _ in range(n):
        with zone.locked():
            rc, node = zone.conn.acquire(b"same", 1_000_000)
        assert rc == NGX_OK
        with zone.locked():
            zone.conn.release(node)


_shared_conn_zone: SharedZone | None = None


def test_zone_lock_holds_across_processes() -> None:
    global _shared_conn_zone
    _shared_conn_zone = SharedZone(LimitZone("conn", "z", "$k", SMALL))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(3000,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert _shared_conn_zone.conn is not None
    assert _shared_conn_zone.conn.count(b"same") == 0 and _shared_conn_zone.conn.in_use() == 0


# -- the phase: several limits, delays, dry run, logs ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 5_000_000

    def __call__(self) -> int:
        return self.now


def variables(key: str = "k", path: str = "/") -> RequestVariables:
    headers = [("Host", "example.com")] + ([("X-Key", key)] if key else [])
    head = RequestHead("GET", path, "1.1", headers, True)
    return RequestVariables(head, "127.0.0.1", 40000, "127.0.0.1", 80, "example.com")


def limiter(*zones: LimitZone) -> tuple[Limiter, Clock]:
    clock = Clock()
    return Limiter({z.name: SharedZone(z) for z in zones}, clock), clock


def phase(lim: Limiter, limits: Limits, key: str = "k") -> tuple[int, int, str]:
    state = RequestLimits()
    status, delay = lim.limit_req(state, limits, lambda t: variables(key).render(t).encode(), "")
    return status, delay, state.req_status


A = LimitZone("req", "a", "$http_x_key", SMALL, rate=10_000)
B = LimitZone("req", "b", "$http_x_key", SMALL, rate=1_000)


def test_delay_and_nodelay_follow_nginx_formula() -> None:
    lim, _clock = limiter(A)
    burst = Limits(req=(LimitReq("a", burst=5000),))
    got = [phase(lim, burst) for _ in range(8)]
    assert got == [(0, 0, "PASSED"), (0, 100, "DELAYED"), (0, 200, "DELAYED"), (0, 300, "DELAYED"),
                   (0, 400, "DELAYED"), (0, 500, "DELAYED"), (503, 0, "REJECTED"),
                   (503, 0, "REJECTED")]  # fmt: skip
    lim, _clock = limiter(A)
    delay2 = Limits(req=(LimitReq("a", burst=5000, delay=2000),), req_status=429)
    got = [phase(lim, delay2)[:2] for _ in range(7)]
    assert got == [(0, 0), (0, 0), (0, 0), (0, 100), (0, 200), (0, 300), (429, 0)]


def test_several_zones_the_longest_delay_wins_and_a_refusal_unlocks() -> None:
    lim, clock = limiter(A, B)
    both = Limits(req=(LimitReq("a", burst=5000), LimitReq("b", burst=2000)))
    assert phase(lim, both)[:2] == (0, 0)
    # zone a (first, held then accounted): excess 1000 -> 100 ms at 10r/s;
    # zone b (last): excess 1000 -> 1000 ms at 1r/s: the longer one wins
    assert phase(lim, both)[:2] == (0, 1000)
    clock.now += 1
    assert phase(lim, both)[:2] == (0, 1999)
    assert phase(lim, both)[0] == 503  # b over its burst
    za = lim.zones["a"].req
    assert za is not None
    node = za.find(_crc(b"k"), b"k")
    assert za._get(node)[8] == 0  # a's hold was given back (count)


def test_dry_run_and_empty_key(caplog: pytest.LogCaptureFixture) -> None:
    lim, _clock = limiter(A)
    dry = Limits(req=(LimitReq("a"),), req_dry_run=True)
    caplog.set_level(logging.INFO, logger="ngxws")
    assert [phase(lim, dry) for _ in range(2)] == [(0, 0, "PASSED"), (0, 0, "REJECTED_DRY_RUN")]
    assert 'limiting requests, dry run, excess: 1.000 by zone "a"' in caplog.text
    assert [phase(lim, Limits(req=(LimitReq("a"),)), key="")[:2] for _ in range(3)] == [(0, 0)] * 3


def test_limit_conn_phase_holds_until_release(caplog: pytest.LogCaptureFixture) -> None:
    zone = LimitZone("conn", "c", "$http_x_key", SMALL)
    lim, _clock = limiter(zone)
    limits = Limits(conn=(LimitConn("c", 1),), conn_status=429, conn_log_level="warn")

    def check(state: RequestLimits) -> int:
        return lim.limit_conn(
            state, limits, lambda t: variables().render(t).encode(), ", client: x"
        )

    first, second = RequestLimits(), RequestLimits()
    assert check(first) == 0 and first.conn_status == "PASSED"
    assert check(first) == 0  # once per request
    caplog.set_level(logging.INFO, logger="ngxws")
    assert check(second) == 429 and second.conn_status == "REJECTED"
    assert 'limiting connections by zone "c", client: x' in caplog.text
    assert any(r.levelname == "WARNING" for r in caplog.records)
    first.release()
    assert check(RequestLimits()) == 0


def test_binary_remote_addr() -> None:
    assert binary_addr("127.0.0.1") == "\x7f\x00\x00\x01"
    assert binary_addr("::1").encode("latin-1") == bytes(15) + b"\x01"
    assert binary_addr("unix:") == "unix:"
    v = variables()
    assert v.render("$binary_remote_addr") == "\x7f\x00\x00\x01"


# -- config and reload -----------------------------------------------------------


def load_zone(line: str) -> LimitZone:
    return _load(f"{line}\n").limit_zones[0]


def _load(http: str) -> Config:
    folder = Path(tempfile.mkdtemp())
    (folder / "nginx.conf").write_text(
        f"events {{}}\nhttp {{\n{http}\nserver {{ listen 8080; }}\n}}\n"
    )
    return load_config(str(folder / "nginx.conf"))


def test_inheritance_arrays_and_values_separately(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("""
events {}
http {
    limit_req_zone $binary_remote_addr zone=one:32k rate=2r/s;
    limit_conn_zone $binary_remote_addr zone=addr:32k;
    limit_req zone=one burst=3;
    limit_req_status 429;
    server {
        listen 8080;
        limit_conn addr 4;
        location /a { limit_req_log_level warn; }
        location /b { limit_req zone=one nodelay; limit_conn_dry_run on; }
    }
}
""")
    config = load_config(str(tmp_path / "nginx.conf"))
    a, b = config.servers[0].locations
    assert a.limits == Limits(req=(LimitReq("one", 3000),), conn=(LimitConn("addr", 4),),
                              req_status=429, req_log_level="warn")  # fmt: skip
    assert b.limits.req == (LimitReq("one", 0, (2**63 - 1) // 1000 * 1000),)
    assert b.limits.conn_dry_run and b.limits.req_status == 429
    assert config.limit_zones[0] == LimitZone("req", "one", "$binary_remote_addr", 32768, 2000)


def test_reload_reuses_same_size_zones_and_refuses_a_new_key(tmp_path: Path) -> None:
    def config(size: str, key: str = "$binary_remote_addr") -> Config:
        (tmp_path / "nginx.conf").write_text(
            f"events {{}}\nhttp {{ limit_req_zone {key} zone=one:{size} rate=1r/m;\n"
            "server { listen 8080; location / { limit_req zone=one; } } }\n"
        )
        return load_config(str(tmp_path / "nginx.conf"))

    first = LimitZones.for_config(config("32k"))
    table = first["one"].req
    assert table is not None
    table.lookup(b"k", 0, 0, True)
    kept = LimitZones.for_config(config("32k"), first)
    assert kept["one"].req is not None and kept["one"].req.lookup(b"k", 1, 0, True)[0] == NGX_BUSY
    resized = LimitZones.for_config(config("64k"), first)
    assert resized["one"].req is not None and resized["one"].req.in_use() == 0
    with pytest.raises(ZoneKeyChanged) as err:
        LimitZones.for_config(config("32k", "$remote_addr"), first)
    assert str(err.value) == (
        'limit_req "one" uses the "$remote_addr" key while previously it used the "$binary_remote_addr" key'
    )


def _get(port: int, path: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_zone_state_survives_a_reload_and_a_key_change_is_refused(tmp_path: Path) -> None:
    port = free_port()

    def text(key: str, status: int) -> str:
        return f"""
worker_processes 2;
error_log {tmp_path}/error.log info;
pid {tmp_path}/ngxws.pid;
events {{}}
http {{
    limit_req_zone {key} zone=one:64k rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        location / {{ limit_req zone=one; limit_req_status {status}; }}
    }}
}}
"""

    with ngxws(text("$binary_remote_addr", 429), tmp_path, port) as server:
        assert _get(port, "/") == 404  # passes the limit; no content handler
        assert _get(port, "/") == 429
        (tmp_path / "nginx.conf").write_text(text("$binary_remote_addr", 503))
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _get(port, "/") != 503:  # the new workers: same zone, still limited
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (tmp_path / "nginx.conf").write_text(text("$remote_addr", 503))
        os.kill(server.proc.pid, signal.SIGHUP)
        log = tmp_path / "error.log"
        assert wait_for(lambda: "previously it used" in log.read_text())
        assert (
            'limit_req "one" uses the "$remote_addr" key while previously it used the '
            '"$binary_remote_addr" key; keeping the running configuration' in log.read_text()
        )
        # the first reload's old workers may still be closing their sockets
        # on a loaded machine; the running (second) config answers 503
        assert wait_for(lambda: _get(port, "/") == 503)


def _crc(key: bytes) -> int:
    return zlib.crc32(key)
