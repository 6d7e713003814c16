"""Traffic counters that every worker process can see.

The module keeps one set of counters in nginx's shared memory and updates
them without care for concurrency (its counters tear under traffic in both
directions).  ngxws gives every worker process its own *slot* in one
anonymous shared mapping, created by the master before it forks: a worker
only ever writes its own slot, so the per-read path takes no lock, and the
stats page sums all slots when it is read.

Slots outlive the worker that used them (a reload starts new workers on new
slots; a dead worker's slot keeps its totals), so totals never reset.  Only
``active`` is per-worker state that must be dropped when a worker dies
(``retire_slot``).

The connection cap (``ws_max_connections``) needs check-and-increment to be
atomic across workers, or a burst of upgrades overshoots (the module's
``==`` check is racy).  That happens once per websocket upgrade, not per
frame, so it takes a lock shared by all processes.
"""

from __future__ import annotations

import mmap
import multiprocessing
import multiprocessing.synchronize

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
SLOT_FIELDS = 8  # one spare, keeps a slot at 64 bytes (one cache line)

MAX_SLOTS = 256


class SharedCounters:
    """All slots, in memory shared with every process forked after creation."""

    def __init__(self, slots: int = MAX_SLOTS) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * SLOT_FIELDS * 8)
        # signed 64-bit: counters never wrap in practice (2**63 bytes).
        self.array = memoryview(self._map).cast("q")
        # A fork-inherited process-shared semaphore; only taken on upgrade.
        self._cap_lock: multiprocessing.synchronize.Lock = multiprocessing.get_context(
            "fork"
        ).Lock()
        self._next_slot = 0

    def allocate_slot(self) -> int:
        """Hand out a fresh slot base index (master side, before forking a worker)."""
        if self._next_slot >= self.slots:
            raise RuntimeError("out of counter slots")
        base = self._next_slot * SLOT_FIELDS
        self._next_slot += 1
        return base

    def retire_slot(self, base: int) -> None:
        """A worker died: its tunnels are gone, its traffic totals stay."""
        self.array[base + ACTIVE] = 0

    def active(self) -> int:
        a = self.array
        return sum(a[i] for i in range(ACTIVE, self.slots * SLOT_FIELDS, SLOT_FIELDS))

    def totals(self) -> Totals:
        """Sum every slot: what the ws_stat page shows."""
        a = self.array
        sums = [0] * SLOT_FIELDS
        for base in range(0, self._used_fields(), SLOT_FIELDS):
            for f in range(7):
                sums[f] += a[base + f]
        return Totals(
            active=sums[ACTIVE],
            client_frames=sums[CLIENT_FRAMES],
            client_payload=sums[CLIENT_PAYLOAD],
            client_bytes=sums[CLIENT_BYTES],
            upstream_frames=sums[UPSTREAM_FRAMES],
            upstream_payload=sums[UPSTREAM_PAYLOAD],
            upstream_bytes=sums[UPSTREAM_BYTES],
        )

    def _used_fields(self) -> int:
        # Workers fork with a stale _next_slot; read every slot so a worker's
        # page sees slots the master handed out after it forked.
        return self.slots * SLOT_FIELDS

    def try_open(self, base: int, limit: int) -> bool:
        """Count a new websocket tunnel on slot ``base`` unless ``limit`` is reached.

        ``limit`` 0 means no limit (module semantics).  ngxws compares with
        ``>=`` where the module uses ``==``, so the cap also holds after a
        reload lowered it.
        """
        a = self.array
        if limit <= 0:
            a[base + ACTIVE] += 1
            return True
        with self._cap_lock:
            if self.active() >= limit:
                return False
            a[base + ACTIVE] += 1
            return True

    def close(self, base: int) -> None:
        """A tunnel on slot ``base`` ended."""
        self.array[base + ACTIVE] -= 1
