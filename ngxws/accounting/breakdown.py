"""The per-(server, location) breakdown of the shared counters.

Keys: one per (server label, location label) of the loaded config, fixed at
config load (``labels``), so the number of series is bounded by the config
(servers x locations), never by traffic.  A server is labelled by its first
``server_name`` (``_`` when it has none); two server blocks with the same
first name get ``#2``, ``#3`` ... in config order.  A location is labelled
by its modifier and pattern as written (``/ws``, ``= /x``, ``~ ^/a``, ``@n``);
nested locations by their own label (they are distinct blocks).  Only
locations with ``proxy_pass`` get a key: no tunnel opens anywhere else.

Row layout (``counters.KEY_FIELDS`` signed 64-bit counters per worker and
key), from the one table ``LAYOUT``: first the traffic counters the relay
adds to on every read (``counters.ACTIVE`` .. ``counters.UPSTREAM_BYTES``)
and the per-direction blocks its frame trackers add to in the same call;
the others are only touched at rare events -- an upgrade's outcome, a
tunnel's close -- by the worker owning the row, so they take no lock
either.  Nothing here runs per read.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngxws.accounting import counters as C
from ngxws.ws.frames import CLOSE_NONE, DIRECTION_FIELDS, OPCODE_FIELDS

if TYPE_CHECKING:
    from ngxws.config.model import Config, Location, Server

NON101_STATUSES: tuple[int, ...] = (200, 301, 302, 400, 401, 403, 404, 426, 429, 500, 502, 503, 504)

# -- who closed a tunnel first ---------------------------------------------------
# The first of: a close frame completed from the client / the upstream (the
# trackers see it in the read that brings its last byte), ngxws's own
# decision (4001 at ws_conn_age, 1001 at a stop, a timeout, a frame length it
# cannot follow).  Only when none of them happened before the tunnel ended:
# the side whose TCP connection ended first (``*_tcp``: no close frame
# either way -- what the peer reports as 1006).
CLOSERS: tuple[str, ...] = (
    "client",
    "upstream",
    "ngxws_age",
    "ngxws_shutdown",
    "ngxws_timeout",
    "ngxws_error",
    "client_tcp",
    "upstream_tcp",
)

# -- tunnel duration histogram (seconds, upper bounds; +Inf is the count) ---------
DURATION_BOUNDS: tuple[float, ...] = (0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0)

# -- the row, from this one table: (block, its counters) in order -----------------
# Per direction (frames.DIRECTION_FIELDS): the 7 opcode classes, the
# data-message size histogram (per-bucket counts, frames.MESSAGE_SIZE_BOUNDS),
# then the first close frame's code (frames.CLOSE_CODE_BUCKETS, "none" last).
# The tracker adds to its direction's block in its one count() call per read
# (the C scan knows the opcode already), so they cost the data path nothing
# but one add per frame; a close code, one add per tunnel.  Messages are not
# counted apart: every message starts with exactly one text or binary frame.
LAYOUT: tuple[tuple[str, int], ...] = (
    ("traffic", C.COUNTED_FIELDS),  # counters.ACTIVE .. UPSTREAM_BYTES: on every read
    ("upgraded", 1),  # upstream answered 101, tunnel opened
    ("rejected_cap", 1),  # ws_max_connections reached: 1013 sent, no upstream contacted
    ("connect_error", 1),  # upstream unreachable / reset before its head (502)
    ("connect_timeout", 1),  # upstream timed out before its head (504)
    ("non101", len(NON101_STATUSES) + 1),  # the upstream's other status, then "other"
    ("closers", len(CLOSERS)),
    ("duration", len(DURATION_BOUNDS) + 1),  # per-bucket (not cumulative), then above the last bound
    ("duration_sum_ms", 1),
    ("closed", 1),  # tunnels closed (the histogram's count)
    ("client", DIRECTION_FIELDS),  # frames from the client
    ("upstream", DIRECTION_FIELDS),  # frames from the upstream
)
AT: dict[str, int] = {}
_at = 0
for _name, _width in LAYOUT:
    AT[_name] = _at
    _at += _width
ROW_USED = _at  # the row ends with key 0's connection counters (counters.STUB_*) and slot high-water mark
assert ROW_USED <= C.STUB_FIRST, "grow counters.KEY_FIELDS"

UPGRADED = AT["upgraded"]
REJECTED_CAP = AT["rejected_cap"]
CONNECT_ERROR = AT["connect_error"]
CONNECT_TIMEOUT = AT["connect_timeout"]
NON101_BASE = AT["non101"]  # one field per NON101_STATUSES entry, then "other"
NON101_OTHER = NON101_BASE + len(NON101_STATUSES)
CLOSER_BASE = AT["closers"]
DURATION_BASE = AT["duration"]
DURATION_SUM_MS = AT["duration_sum_ms"]
CLOSED = AT["closed"]
OPCODES_CLIENT = AT["client"]
OPCODES_UPSTREAM = AT["upstream"]
CLOSE_CODES_CLIENT = OPCODES_CLIENT + OPCODE_FIELDS  # frames.CLOSE_CODE_BUCKETS order
CLOSE_CODES_UPSTREAM = OPCODES_UPSTREAM + OPCODE_FIELDS


def server_labels(config: Config) -> dict[int, str]:
    """id(server) -> its label, unique within the config."""
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for server in config.servers:
        name = next((n for n in server.server_names if n), "_")
        seen[name] = seen.get(name, 0) + 1
        out[id(server)] = name if seen[name] == 1 else f"{name}#{seen[name]}"
    return out


def location_label(loc: Location) -> str:
    if loc.modifier in ("", "@"):
        return loc.pattern  # a named location's pattern has its "@"
    return f"{loc.modifier} {loc.pattern}"


def _walk(locs: tuple[Location, ...]) -> list[Location]:
    """The locations (nested ones included) where a tunnel can open: those
    with ``proxy_pass``; the others never count anything."""
    out: list[Location] = []
    for loc in locs:
        if loc.proxy_pass is not None:
            out.append(loc)
        out.extend(_walk(loc.locations))
    return out


def labels(config: Config) -> list[tuple[str, str]]:
    """Every (server, location) key of ``config``, in config order."""
    names = server_labels(config)
    return [
        (names[id(server)], location_label(loc))
        for server in config.servers
        for loc in _walk(server.locations)
    ]


class KeyMap:
    """A worker's (server, location) -> row base lookup, built once."""

    def __init__(self, config: Config, counters: C.SharedCounters, slot: int) -> None:
        names = server_labels(config)
        self._bases: dict[tuple[int, int], int] = {}
        for server in config.servers:
            for loc in _walk(server.locations):
                label = (names[id(server)], location_label(loc))
                self._bases[(id(server), id(loc))] = counters.key_base(slot, label)
        self._other = slot

    def base(self, server: Server, loc: Location) -> int:
        return self._bases.get((id(server), id(loc)), self._other)


def record_upgrade(array: memoryview, base: int, status: int, *, unavailable: bool = False) -> None:
    """An upgrade's outcome: 101, 1013 (the cap), the upstream's other
    ``status``, or (``unavailable``) ngxws's own 502/504 for an upstream it
    could not reach or that timed out."""
    if status == 101:
        field = UPGRADED
    elif status == 1013:
        field = REJECTED_CAP
    elif unavailable:
        field = CONNECT_TIMEOUT if status == 504 else CONNECT_ERROR
    elif status in NON101_STATUSES:
        field = NON101_BASE + NON101_STATUSES.index(status)
    else:
        field = NON101_OTHER
    array[base + field] += 1


_CLOSER_AT = {closer: CLOSER_BASE + i for i, closer in enumerate(CLOSERS)}  # a closer's field


def record_close(
    array: memoryview, base: int, closer: str, seconds: float, *, silent: tuple[str, ...] = ()
) -> None:
    """A tunnel on row ``base`` ended after ``seconds``; ``closer`` is one of
    CLOSERS; ``silent``: the directions (``client``, ``upstream``) from which
    no close frame came (their trackers counted the code of those that did)."""
    array[base + _CLOSER_AT[closer]] += 1
    for direction in silent:
        array[base + AT[direction] + OPCODE_FIELDS + CLOSE_NONE] += 1
    # the first bucket whose bound holds ``seconds`` (<=), else the one above the last
    array[base + DURATION_BASE + bisect_left(DURATION_BOUNDS, seconds)] += 1
    array[base + DURATION_SUM_MS] += int(seconds * 1000)
    array[base + CLOSED] += 1


@dataclass(frozen=True)
class KeyStats:
    """One (server, location) key summed over every worker."""

    server: str
    location: str
    fields: tuple[int, ...]  # KEY_FIELDS sums, indexed by the constants above

    def __getitem__(self, field: int) -> int:
        return self.fields[field]


def snapshot(counters: C.SharedCounters) -> list[KeyStats]:
    """Every key this process knows, summed over all worker slots."""
    a = counters.array
    out = []
    for (server, location), key in sorted(counters.keys.items(), key=lambda kv: kv[1]):
        rows = counters.rows(key)
        sums = [0] * C.KEY_FIELDS
        for r in rows:
            row = a[r : r + C.KEY_FIELDS].tolist()
            for i in range(C.KEY_FIELDS):
                sums[i] += row[i]
        if key == 0:
            sums[C.KEY_FIELDS - 1] = 0  # the slot high-water mark, not a count
        out.append(KeyStats(server, location, tuple(sums)))
    return out
