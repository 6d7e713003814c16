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
key): fields 0-6 are the traffic counters the relay adds to on every read
(``counters.ACTIVE`` .. ``counters.UPSTREAM_BYTES``); the fields below are
only touched at rare events -- an upgrade's outcome, a tunnel's close -- by
the worker owning the row, so they take no lock either.  Nothing here runs
per read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngxws.accounting import counters as C
from ngxws.ws.frames import OPCODE_FIELDS

if TYPE_CHECKING:
    from ngxws.config.model import Config, Location, Server

# -- upgrade outcomes -----------------------------------------------------------
UPGRADED = 8  # upstream answered 101, tunnel opened
REJECTED_CAP = 9  # ws_max_connections reached: 1013 sent, no upstream contacted
CONNECT_ERROR = 10  # upstream unreachable / reset before its head (502)
CONNECT_TIMEOUT = 11  # upstream timed out before its head (504)
NON101_STATUSES: tuple[int, ...] = (200, 301, 302, 400, 401, 403, 404, 426, 429, 500, 502, 503, 504)
NON101_BASE = 12  # one field per NON101_STATUSES entry, then "other"
NON101_OTHER = NON101_BASE + len(NON101_STATUSES)  # 25

# -- who closed a tunnel first ---------------------------------------------------
CLOSERS: tuple[str, ...] = ("client", "upstream", "ngxws_age", "ngxws_shutdown", "ngxws_timeout", "ngxws_error")
CLOSER_BASE = 26  # 26..31

# -- tunnel duration histogram (seconds, upper bounds; +Inf is the count) ---------
DURATION_BOUNDS: tuple[float, ...] = (0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0)
DURATION_BASE = 32  # 32..39: per-bucket (not cumulative) counts, 40: above the last bound
DURATION_SUM_MS = 41
CLOSED = 42  # tunnels closed (the histogram's count)

# -- frames per opcode class, per direction (frames.OPCODE_CLASSES order) ----------
# Added by the relay's one count() call per read, at each frame's completion
# (the C scan knows the opcode already), so they cost the data path nothing
# but one add per frame.  Messages are not counted apart: every message
# starts with exactly one text or binary frame (and ends in one histogram bucket).
# Each block: frames.OPCODE_FIELDS counters, the 7 opcode classes then the
# data-message size histogram (per-bucket counts, frames.MESSAGE_SIZE_BOUNDS).
OPCODES_CLIENT = 43  # 43..55
OPCODES_UPSTREAM = OPCODES_CLIENT + OPCODE_FIELDS  # 56..68


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


def record_close(array: memoryview, base: int, closer: str, seconds: float) -> None:
    """A tunnel on row ``base`` ended after ``seconds``; ``closer`` is one of CLOSERS."""
    array[base + CLOSER_BASE + CLOSERS.index(closer)] += 1
    for i, bound in enumerate(DURATION_BOUNDS):
        if seconds <= bound:
            array[base + DURATION_BASE + i] += 1
            break
    else:
        array[base + DURATION_BASE + len(DURATION_BOUNDS)] += 1
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
