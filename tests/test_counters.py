"""SharedCounters across real forked processes: sums, slot reuse, the cap's lock."""

from __future__ import annotations

import os
import signal
import time

from ngxws.accounting.counters import (
    ACTIVE,
    CLIENT_BYTES,
    CLIENT_FRAMES,
    UPSTREAM_PAYLOAD,
    SharedCounters,
)


def _wait_child(pid: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise TimeoutError(f"child {pid} did not exit")


def _fork(body: object) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()  # type: ignore[operator]
            code = 0
        finally:
            os._exit(code)
    return pid


def test_totals_sum_every_slot_written_by_other_processes() -> None:
    c = SharedCounters(slots=8)
    slots = [c.allocate_slot() for _ in range(3)]

    def writer(base: int, n: int) -> None:
        for _ in range(n):
            c.array[base + CLIENT_FRAMES] += 1
            c.array[base + CLIENT_BYTES] += 10
        c.array[base + UPSTREAM_PAYLOAD] += n

    pids = [
        _fork(lambda b=b, n=n: writer(b, n)) for b, n in zip(slots, (1000, 2000, 3000), strict=True)
    ]
    for pid in pids:
        assert _wait_child(pid) == 0
    t = c.totals()
    assert (t.client_frames, t.client_bytes, t.upstream_payload) == (6000, 60000, 6000)


def test_retired_slots_are_reused_and_keep_their_totals() -> None:
    c = SharedCounters(slots=2)
    a = c.allocate_slot()
    b = c.allocate_slot()
    assert c.free_slots() == 0
    c.array[a + ACTIVE] = 3
    c.array[a + CLIENT_FRAMES] = 42
    c.retire_slot(a)  # the worker died with 3 tunnels
    assert c.active() == 0
    assert c.free_slots() == 1
    again = c.allocate_slot()
    assert again == a
    assert c.totals().client_frames == 42  # never reset
    c.array[again + CLIENT_FRAMES] += 1
    assert c.totals().client_frames == 43
    assert b == c.region  # one region (every location row) per worker
    try:
        c.allocate_slot()
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a full table must refuse")


def test_cap_holds_when_processes_race_for_it() -> None:
    c = SharedCounters(slots=8)
    limit = 10
    slots = [c.allocate_slot() for _ in range(4)]
    r, w = os.pipe()

    def racer(base: int) -> None:
        os.close(r)
        won = 0
        for _ in range(200):
            if c.try_open(base, limit):
                won += 1
                if c.active() > limit:
                    os.write(w, b"!")
        os.write(w, bytes([won]))

    pids = [_fork(lambda b=b: racer(b)) for b in slots]
    os.close(w)
    for pid in pids:
        assert _wait_child(pid) == 0
    with os.fdopen(r, "rb") as f:
        report = f.read()
    assert b"!" not in report
    assert sum(report) == limit
    assert c.active() == limit


def test_a_worker_killed_holding_the_lock_does_not_wedge_the_others() -> None:
    import fcntl

    c = SharedCounters(slots=4)
    mine = c.allocate_slot()
    other = c.allocate_slot()
    r, w = os.pipe()

    def holder() -> None:
        fcntl.lockf(c._fd, fcntl.LOCK_EX)  # simulate dying inside try_open
        os.write(w, b"x")
        time.sleep(60)

    pid = _fork(holder)
    assert os.read(r, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    _wait_child(pid)
    c.retire_slot(other)
    assert c.try_open(mine, 5)  # would block forever with a semaphore
    c.close(mine)
    assert c.active() == 0


def test_at_limit_reads_established_tunnels_only() -> None:
    """The early check before an upgrade contacts the upstream: upgrades
    waiting for their 101 are not counted (try_open runs when it comes)."""
    c = SharedCounters(slots=4)
    mine = c.allocate_slot()
    other = c.allocate_slot()
    assert not c.at_limit(0) and not c.at_limit(2)
    assert c.try_open(mine, 2) and c.try_open(other, 2)
    assert c.at_limit(2) and not c.at_limit(3) and not c.at_limit(0)
    assert not c.try_open(mine, 2)  # the 101 over the cap is refused
    c.close(other)
    assert not c.at_limit(2)
    assert c.totals().active == 1


def test_stub_counters_sum_every_worker_and_die_with_it() -> None:
    from ngxws.accounting.connstats import READING, WAITING, WRITING, ConnStats, stub_page

    counters = SharedCounters(slots=4, max_keys=4)
    a, b = counters.allocate_slot(), counters.allocate_slot()
    one, two = ConnStats(counters.array, a), ConnStats(counters.array, b)
    s1 = one.opened()  # idle
    s2 = two.request(two.opened())  # reading a head
    s3 = two.move(two.request(two.opened()), WRITING)  # a request in progress
    two.refused()  # over worker_connections: accepted only
    assert (s1, s2, s3) == (WAITING, READING, WRITING)
    assert counters.stub_totals() == (4, 3, 2, 3, 1, 1, 1)
    assert stub_page(counters) == (
        b"Active connections: 3 \nserver accepts handled requests\n 4 3 2 \nReading: 1 Writing: 1 Waiting: 1 \n"
    )
    assert one.closed(one.closed(s1)) == 0  # once only
    counters.retire_slot(b)  # its worker died: its connections are gone, its totals stay
    assert counters.stub_totals() == (4, 3, 2, 0, 0, 0, 0)
