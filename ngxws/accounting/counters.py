"""Traffic counters that every worker process can see.

The module keeps one set of counters in nginx's shared memory and updates
them without care for concurrency (its counters tear under traffic in both
directions).  ngxws gives every worker process its own *slot* in one shared
mapping, created by the master before it forks: a worker only ever writes
its own slot, so the per-read path takes no lock, and the stats page sums
all slots when it is read.

Each worker slot is a *region*: one row of ``KEY_FIELDS`` counters per
(server, location) key of the breakdown (``breakdown.py``), key 0 holding
what no location claims.  A tunnel adds to its location's row in its
worker's region, so the per-read path is the same three additions it always
was (only the base differs) and the global totals are the sum of every row.
Keys are fixed at config load by the master (``register``) and never
reused, so cardinality is bounded by ``max_keys`` whatever the reloads.

Slots outlive the worker that used them.  A slot whose worker has exited is
handed to the next worker the master starts (after a reload or a crash);
that worker keeps adding to the totals already there, so totals never reset
and never wrap (signed 64-bit), however many reloads happen.  Only
``active`` is per-worker state that must be dropped when a worker dies
(``retire_slot``).

The connection cap (``ws_max_connections``) needs check-and-increment to be
atomic across workers, or a burst of upgrades overshoots (the module's
``==`` check is racy).  That happens once per websocket upgrade (when the
upstream's 101 arrives), not per frame, so it takes a lock shared by all
processes: a POSIX record lock on the mapping's file, because the kernel
drops such a lock when its holder dies -- a worker killed inside
``try_open`` cannot wedge the others (a semaphore would stay taken forever).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import tempfile

from ngxws.sinks.statspage import Totals

# Field offsets inside one slot.  Kept as module constants: the relay indexes
# the shared array with them on every read.
ACTIVE = 0
CLIENT_FRAMES = 1
CLIENT_PAYLOAD = 2
CLIENT_BYTES = 3
UPSTREAM_FRAMES = 4
UPSTREAM_PAYLOAD = 5
UPSTREAM_BYTES = 6
COUNTED_FIELDS = 7
_COUNTED_FIELDS = COUNTED_FIELDS
# The rest of a row (rare events: upgrades, closes) is laid out in breakdown.py.
KEY_FIELDS = 128  # one row per (worker, location): 1 KiB (breakdown.LAYOUT says how much is used)
SLOT_FIELDS = KEY_FIELDS  # kept for callers indexing one row
MAX_KEYS = 256
"""Default number of breakdown keys ((server, location) pairs, all reloads together)."""
_HIGH_WATER = KEY_FIELDS - 1  # in the first row: worker slots handed out so far (master writes)
# nginx's connection counters (ngx_http_stub_status_module), at the end of
# key 0's row of every worker slot: the totals carry on in a reused slot,
# the states (connections, and what each does now) die with the worker
STUB_ACCEPTED, STUB_HANDLED, STUB_REQUESTS = KEY_FIELDS - 8, KEY_FIELDS - 7, KEY_FIELDS - 6
STUB_ACTIVE, STUB_READING, STUB_WRITING, STUB_WAITING = KEY_FIELDS - 5, KEY_FIELDS - 4, KEY_FIELDS - 3, KEY_FIELDS - 2
STUB_FIRST = STUB_ACCEPTED

MAX_SLOTS = 256
"""Default number of slots: live workers at once, draining ones included."""


def _shared_file(size: int) -> int:
    """An fd for an anonymous file of ``size`` bytes: memfd on Linux (never
    written back to a disk), an unlinked temporary file elsewhere."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd: int = memfd_create("ngxws-counters", 0)  # no CLOEXEC needed: workers fork, never exec
    else:  # pragma: no cover - non-Linux
        fd = os.dup(tempfile.TemporaryFile().fileno())
    os.ftruncate(fd, size)
    return fd


class SharedCounters:
    """All slots, in memory shared with every process forked after creation.

    The master creates this, then hands each worker a slot with
    ``allocate_slot()`` before forking it and gives the slot back with
    ``retire_slot()`` once the worker is reaped.  Workers only call
    ``try_open``/``close`` on their own slot and ``totals``/``active``.
    """

    def __init__(self, slots: int = MAX_SLOTS, max_keys: int = MAX_KEYS) -> None:
        self.slots = slots
        self.max_keys = max_keys
        self.region = max_keys * KEY_FIELDS  # one worker slot, in array items
        size = slots * self.region * 8
        # sparse: a memfd page is only allocated once a worker touches it
        self._fd = _shared_file(size)
        self._map = mmap.mmap(self._fd, size)
        # signed 64-bit: counters never wrap in practice (2**63 bytes).
        self.array = memoryview(self._map).cast("q")
        # Master-side bookkeeping (workers get a copy as of their fork).
        self._next_slot = 0
        self._free: list[int] = []
        # (server label, location label) -> key index; key 0 is "other".
        self.keys: dict[tuple[str, str], int] = {("", ""): 0}

    def register(self, labels: list[tuple[str, str]]) -> None:
        """Master, at config load: give every new (server, location) label a
        key of its own; past ``max_keys`` they share key 0 (``other``)."""
        for label in labels:
            if label not in self.keys and len(self.keys) < self.max_keys:
                self.keys[label] = len(self.keys)

    def key_base(self, slot: int, label: tuple[str, str]) -> int:
        """The row of ``label`` in the worker region starting at ``slot``."""
        return slot + self.keys.get(label, 0) * KEY_FIELDS

    def _used_slots(self) -> int:
        # shared, so a worker also sees slots handed out after its fork
        return max(1, min(self.slots, self.array[_HIGH_WATER]))

    def rows(self, key: int) -> list[int]:
        """The base of ``key``'s row in every worker slot handed out so far."""
        return [s * self.region + key * KEY_FIELDS for s in range(self._used_slots())]

    def _all_rows(self) -> list[int]:
        nkeys = len(self.keys)
        return [
            s * self.region + k * KEY_FIELDS
            for s in range(self._used_slots())
            for k in range(nkeys)
        ]

    # -- master side -------------------------------------------------------

    def allocate_slot(self) -> int:
        """A slot base index for a worker about to be forked.

        A retired slot is reused first (its totals carry on); ``RuntimeError``
        when every slot belongs to a live worker.
        """
        if self._free:
            self._free.sort()
            return self._free.pop(0)
        if self._next_slot >= self.slots:
            raise RuntimeError(f"all {self.slots} counter slots are in use by live workers")
        base = self._next_slot * self.region
        self._next_slot += 1
        self.array[_HIGH_WATER] = self._next_slot
        return base

    def free_slots(self) -> int:
        """How many more workers could be started now."""
        return self.slots - self._next_slot + len(self._free)

    def retire_slot(self, base: int) -> None:
        """The worker on ``base`` is gone (reaped): its tunnels are gone with
        it, its traffic totals stay, and the slot can be reused."""
        for k in range(len(self.keys)):
            self.array[base + k * KEY_FIELDS + ACTIVE] = 0
        for field in (STUB_ACTIVE, STUB_READING, STUB_WRITING, STUB_WAITING):
            self.array[base + field] = 0
        if base not in self._free:
            self._free.append(base)

    # -- any process ---------------------------------------------------------

    def active(self) -> int:
        """Open tunnels across every worker."""
        a = self.array
        return sum([a[r] for r in self._all_rows()])

    def totals(self) -> Totals:
        """Sum every slot (used or not: a worker forked earlier cannot know
        which slots the master handed out since): what the ws_stat page shows."""
        a = self.array
        rows = self._all_rows()
        sums = [sum([a[r + f] for r in rows]) for f in range(_COUNTED_FIELDS)]
        return Totals(
            active=sums[ACTIVE],
            client_frames=sums[CLIENT_FRAMES],
            client_payload=sums[CLIENT_PAYLOAD],
            client_bytes=sums[CLIENT_BYTES],
            upstream_frames=sums[UPSTREAM_FRAMES],
            upstream_payload=sums[UPSTREAM_PAYLOAD],
            upstream_bytes=sums[UPSTREAM_BYTES],
        )

    def stub_totals(self) -> tuple[int, ...]:
        """accepted, handled, requests, active, reading, writing, waiting:
        the sums of every worker slot (ngx_http_stub_status_handler's)."""
        a = self.array
        rows = self.rows(0)
        return tuple(sum([a[r + f] for r in rows]) for f in range(STUB_ACCEPTED, STUB_WAITING + 1))

    def at_limit(self, limit: int) -> bool:
        """``limit`` tunnels are established (0: no limit).  The early check,
        before an upgrade contacts the upstream; upgrades still waiting for
        their 101 are not tunnels and do not count (the module counts a
        connection when the 101 passes).  No lock: ``try_open`` decides."""
        return limit > 0 and self.active() >= limit

    def try_open(self, base: int, limit: int) -> bool:
        """Count a new websocket tunnel on slot ``base`` unless ``limit`` is reached.

        Called when the upstream's 101 arrives, so ``active`` counts
        established tunnels only.

        ``limit`` 0 means no limit (module semantics).  ngxws compares with
        ``>=`` where the module uses ``==``, so the cap also holds after a
        reload lowered it.  The lock makes "sum every slot, then increment
        mine" atomic across workers; ``close`` needs no lock since it only
        lowers the sum.
        """
        a = self.array
        if limit <= 0:
            a[base + ACTIVE] += 1
            return True
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            if self.active() >= limit:
                return False
            a[base + ACTIVE] += 1
            return True
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self, base: int) -> None:
        """A tunnel on slot ``base`` ended."""
        self.array[base + ACTIVE] -= 1
