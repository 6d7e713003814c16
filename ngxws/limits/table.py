"""The state tables of ``limit_req_zone`` and ``limit_conn_zone``, in a byte buffer.

nginx keeps each zone in a shared-memory slab pool: an rbtree of nodes keyed
by the CRC32 of the key (and, for limit_req, an LRU queue).  ngxws keeps the
same nodes in the same kind of memory (``shm.py`` maps a memfd of the zone's
size in every process), laid out so that Python can index it:

    header (64 bytes) | buckets: int32 x capacity | nodes: capacity x NODE

Lookup is by ``crc32(key)`` (``ngx_crc32_short``: zlib's CRC-32) into a
chained hash table instead of an rbtree -- the same "find the node of this
key" with O(1) steps.  Node indices link everything (-1 is nil), so the
table means the same in every process whatever address it is mapped at.

Fixed node sizes, the zone's budget
-----------------------------------

A node has a fixed size, so ``capacity = (size - 64) // (NODE + 4)``:

- limit_req: **128 bytes** -- what nginx's slab gives a ``$binary_remote_addr``
  node on 64-bit (80 bytes of rbtree + limit_req node + 4 key bytes, rounded
  up to the 128-byte slab class).  10m holds 79,437 states (nginx: ~81,000).
- limit_conn: **64 bytes** -- nginx's 40-byte ``$binary_remote_addr`` node in
  its 64-byte class.  10m holds 154,201 states (nginx: ~163,000).

A key longer than a node's inline room (80 bytes for limit_req, 48 for
limit_conn) is stored as its 32-byte BLAKE2b digest next to its real
length: the node stays fixed-size and two keys share a state only if their
digests collide.  (nginx stores the whole key and so spends more of the
zone on long keys.)

Nodes are handed out from a high-water mark first and then from a free
list, so only the memory actually used is ever touched (a fresh 10m zone
costs nothing).

Every method here assumes the caller holds the zone's lock and passes the
time in; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

__all__ = [
    "HEADER",
    "REQ_NODE",
    "CONN_NODE",
    "capacity_for",
    "ReqTable",
    "ConnTable",
    "NGX_OK",
    "NGX_AGAIN",
    "NGX_BUSY",
    "NGX_ERROR",
]

HEADER = 64
REQ_NODE = 128
CONN_NODE = 64
NIL = -1
_DIGEST = 32

# nginx's return codes, as ngx_http_limit_req_lookup() uses them
NGX_OK = 0
NGX_ERROR = -1
NGX_AGAIN = -2
NGX_BUSY = -3

_MAGIC = 0x6E67784C  # "ngxL": the header was initialised

# header: magic, capacity, used (high-water mark), free head, lru head, lru tail
_HEAD = struct.Struct("<IIIiii")
# limit_req node: hash, key length, chain next, lru prev, lru next, pad,
# last (ms), excess (milli-requests), count -- ngx_http_limit_req_node_t
_REQ = struct.Struct("<IIiiiiqqq")
# limit_conn node: hash, key length, chain next, conn -- ngx_http_limit_conn_node_t
_CONN = struct.Struct("<IIii")
_I32 = struct.Struct("<i")
_LINK = struct.Struct("<IIi")  # hash, key length, chain next: the start of every node


def capacity_for(size: int, node: int) -> int:
    """How many nodes a zone of ``size`` bytes holds (see the module docstring)."""
    return max(0, (size - HEADER) // (node + 4))


def stored_key(key: bytes, room: int) -> bytes:
    """What a node keeps of ``key``: the key itself, or its digest when it is too long."""
    if len(key) <= room:
        return key
    return hashlib.blake2b(key, digest_size=_DIGEST).digest()


class _Table:
    """Hash chains, free list and node storage common to both kinds."""

    NODE = 0
    FIXED = 0  # bytes of fixed fields before the key

    def __init__(self, buf: memoryview, size: int) -> None:
        self.buf = buf
        self.capacity = capacity_for(size, self.NODE)
        self.nodes_at = HEADER + 4 * self.capacity
        self.room = self.NODE - self.FIXED
        magic, *_ = _HEAD.unpack_from(buf, 0)
        if magic != _MAGIC:  # a new zone (a reused one keeps its state)
            buf[:HEADER] = bytes(HEADER)
            buf[HEADER : self.nodes_at] = b"\xff" * (self.nodes_at - HEADER)  # every bucket NIL
            _HEAD.pack_into(buf, 0, _MAGIC, self.capacity, 0, NIL, NIL, NIL)

    # -- header ------------------------------------------------------------------

    def _head(self) -> tuple[int, int, int, int, int, int]:
        return _HEAD.unpack_from(self.buf, 0)  # type: ignore[return-value]

    def _set_head(self, used: int, free: int, lru_head: int, lru_tail: int) -> None:
        _HEAD.pack_into(self.buf, 0, _MAGIC, self.capacity, used, free, lru_head, lru_tail)

    def off(self, node: int) -> int:
        return self.nodes_at + node * self.NODE

    def in_use(self) -> int:
        """Nodes holding a key now (for tests and the check report)."""
        _m, _c, used, free, _h, _t = self._head()
        n = 0
        while free != NIL:
            n += 1
            free = _I32.unpack_from(self.buf, self.off(free) + 8)[0]
        return used - n

    # -- the key index -------------------------------------------------------------

    def _bucket(self, h: int) -> int:
        return HEADER + 4 * (h % self.capacity)

    def find(self, h: int, key: bytes) -> int:
        """The node of ``key`` (``crc32`` ``h``), or NIL."""
        if not self.capacity:
            return NIL
        buf = self.buf
        stored = stored_key(key, self.room)
        node: int = _I32.unpack_from(buf, self._bucket(h))[0]
        while node != NIL:
            o = self.off(node)
            nh, nlen, nxt = _LINK.unpack_from(buf, o)
            if nh == h and nlen == len(key):
                start = o + self.FIXED
                if buf[start : start + len(stored)] == stored:
                    return node
            node = int(nxt)
        return NIL

    def _alloc(self) -> int:
        """A free node, or NIL when the zone is full (ngx_slab_alloc_locked() fails)."""
        _m, _c, used, free, lru_head, lru_tail = self._head()
        if free != NIL:
            nxt = _I32.unpack_from(self.buf, self.off(free) + 8)[0]
            self._set_head(used, nxt, lru_head, lru_tail)
            return free
        if used < self.capacity:
            self._set_head(used + 1, free, lru_head, lru_tail)
            return used
        return NIL

    def _link(self, node: int, h: int, key: bytes) -> None:
        """Fill ``node``'s key and put it in its hash chain."""
        buf = self.buf
        o = self.off(node)
        stored = stored_key(key, self.room)
        bucket = self._bucket(h)
        _LINK.pack_into(buf, o, h, len(key), _I32.unpack_from(buf, bucket)[0])
        buf[o + self.FIXED : o + self.FIXED + len(stored)] = stored
        _I32.pack_into(buf, bucket, node)

    def _free(self, node: int) -> None:
        """Take ``node`` out of its hash chain and onto the free list (ngx_slab_free_locked)."""
        buf = self.buf
        o = self.off(node)
        h, _len, nxt = _LINK.unpack_from(buf, o)
        at = self._bucket(h)
        cur = _I32.unpack_from(buf, at)[0]
        while cur != node and cur != NIL:
            at = self.off(cur) + 8
            cur = _I32.unpack_from(buf, at)[0]
        if cur == node:
            _I32.pack_into(buf, at, nxt)
        _m, _c, used, free, lru_head, lru_tail = self._head()
        _LINK.pack_into(buf, o, 0, 0, free)
        self._set_head(used, node, lru_head, lru_tail)


def key_hash(key: bytes) -> int:
    """``ngx_crc32_short()``: the CRC-32 nginx keys its rbtree with."""
    return zlib.crc32(key)


class ReqTable(_Table):
    """ngx_http_limit_req_module's zone: a leaky bucket per key, in an LRU queue.

    The methods are ngx_http_limit_req_lookup(), the per-node half of
    ngx_http_limit_req_account(), ngx_http_limit_req_unlock() and
    ngx_http_limit_req_expire(), line for line: ``excess`` in milli-requests,
    times in milliseconds, integer arithmetic.
    """

    NODE = REQ_NODE
    FIXED = _REQ.size

    def __init__(self, buf: memoryview, size: int, rate: int) -> None:
        super().__init__(buf, size)
        self.rate = rate  # ctx->rate, milli-requests per second

    def _get(self, node: int) -> tuple[int, ...]:
        return _REQ.unpack_from(self.buf, self.off(node))  # type: ignore[no-any-return]

    def _set_state(self, node: int, last: int, excess: int, count: int) -> None:
        struct.pack_into("<qqq", self.buf, self.off(node) + 24, last, excess, count)

    # -- the LRU queue (ngx_queue_t: head = most recent) ----------------------------

    def _lru_remove(self, node: int) -> None:
        buf = self.buf
        o = self.off(node)
        prev, nxt = struct.unpack_from("<ii", buf, o + 12)
        _m, _c, used, free, head, tail = self._head()
        if prev != NIL:
            _I32.pack_into(buf, self.off(prev) + 16, nxt)
        else:
            head = nxt
        if nxt != NIL:
            _I32.pack_into(buf, self.off(nxt) + 12, prev)
        else:
            tail = prev
        self._set_head(used, free, head, tail)

    def _lru_insert_head(self, node: int) -> None:
        buf = self.buf
        _m, _c, used, free, head, tail = self._head()
        struct.pack_into("<ii", buf, self.off(node) + 12, NIL, head)
        if head != NIL:
            _I32.pack_into(buf, self.off(head) + 12, node)
        else:
            tail = node
        self._set_head(used, free, node, tail)

    # -- ngx_http_limit_req_lookup() -------------------------------------------------

    def lookup(self, key: bytes, now: int, burst: int, account: bool) -> tuple[int, int, int]:
        """Returns (rc, excess, node).  rc is NGX_BUSY (over the burst),
        NGX_OK (accounted: the last limit), NGX_AGAIN (passed, node held
        with ``count`` raised until ``account``/``unlock``), or NGX_ERROR
        (no node could be allocated)."""
        h = key_hash(key)
        node = self.find(h, key)
        if node != NIL:
            if self._head()[4] != node:  # already the most recent: moving it changes nothing
                self._lru_remove(node)
                self._lru_insert_head(node)
            _h, _l, _n, _p, _x, _pad, last, stored, count = self._get(node)
            ms = _elapsed(now, last)
            excess = max(0, stored - self.rate * ms // 1000 + 1000)
            if excess > burst:
                return NGX_BUSY, excess, NIL
            if account:
                self._set_state(node, now if ms else last, excess, count)
                return NGX_OK, excess, node
            self._set_state(node, last, stored, count + 1)
            return NGX_AGAIN, excess, node
        self.expire(1, now)
        node = self._alloc()
        if node == NIL:
            self.expire(0, now)
            node = self._alloc()
            if node == NIL:
                return NGX_ERROR, 0, NIL
        self._link(node, h, key)
        self._lru_insert_head(node)
        if account:
            self._set_state(node, now, 0, 0)
            return NGX_OK, 0, node
        self._set_state(node, 0, 0, 1)
        return NGX_AGAIN, 0, node

    def account(self, node: int, now: int) -> int:
        """The per-node part of ngx_http_limit_req_account(): recompute, store,
        release the hold; returns the node's new excess."""
        _h, _l, _n, _p, _x, _pad, last, excess, count = self._get(node)
        ms = _elapsed(now, last)
        excess = max(0, excess - self.rate * ms // 1000 + 1000)
        self._set_state(node, now if ms else last, excess, count - 1)
        return excess

    def unlock(self, node: int) -> None:
        """ngx_http_limit_req_unlock(): drop the hold of a lookup that passed."""
        _h, _l, _n, _p, _x, _pad, last, excess, count = self._get(node)
        self._set_state(node, last, excess, count - 1)

    def expire(self, n: int, now: int) -> None:
        """ngx_http_limit_req_expire(): ``n == 1`` frees one or two idle
        entries from the LRU tail (a minute unused and fully leaked);
        ``n == 0`` frees the oldest one by force first."""
        while n < 3:
            tail = self._head()[5]
            if tail == NIL:
                return
            _h, _l, _n, _p, _x, _pad, last, excess, count = self._get(tail)
            if count:
                # "There is not much sense in looking further,
                # because we bump nodes on the lookup stage."
                return
            if n != 0:
                ms = abs(now - last)
                if ms < 60000:
                    return
                if excess - self.rate * ms // 1000 > 0:
                    return
            n += 1
            self._lru_remove(tail)
            self._free(tail)


def _elapsed(now: int, last: int) -> int:
    """``ms = (ngx_msec_int_t) (now - lr->last)``, clamped as nginx clamps it
    (times from another worker may be a little ahead)."""
    ms = now - last
    if ms < -60000:
        return 1
    return max(ms, 0)


class ConnTable(_Table):
    """ngx_http_limit_conn_module's zone: a connection count per key; a node
    lives while its count is above zero (no LRU: a full zone refuses)."""

    NODE = CONN_NODE
    FIXED = _CONN.size

    def acquire(self, key: bytes, limit: int) -> tuple[int, int]:
        """The lookup-and-count of ngx_http_limit_conn_handler().  Returns
        (NGX_OK, node) counted; (NGX_BUSY, NIL) at the limit;
        (NGX_ERROR, NIL) when the zone has no room for a new key."""
        h = key_hash(key)
        node = self.find(h, key)
        if node == NIL:
            node = self._alloc()
            if node == NIL:
                return NGX_ERROR, NIL
            self._link(node, h, key)
            _I32.pack_into(self.buf, self.off(node) + 12, 1)
            return NGX_OK, node
        conn = _I32.unpack_from(self.buf, self.off(node) + 12)[0]
        if conn >= limit:
            return NGX_BUSY, NIL
        _I32.pack_into(self.buf, self.off(node) + 12, conn + 1)
        return NGX_OK, node

    def release(self, node: int) -> None:
        """ngx_http_limit_conn_cleanup(): one connection fewer; the node goes at zero."""
        o = self.off(node) + 12
        conn = _I32.unpack_from(self.buf, o)[0] - 1
        if conn <= 0:
            self._free(node)
        else:
            _I32.pack_into(self.buf, o, conn)

    def count(self, key: bytes) -> int:
        """Connections counted for ``key`` now (0 when it has no node)."""
        node = self.find(key_hash(key), key)
        return 0 if node == NIL else _I32.unpack_from(self.buf, self.off(node) + 12)[0]
