"""The ``ws_stat`` page's formats: which one a request asks for, and the two
ngxws adds to the module's text page.

- default: the module's v1 text page (``statspage.render_text``), byte for byte;
- ``?format=prometheus``: the Telefonica fork's families, byte for byte
  (``statspage.render_prometheus``), followed by ``ngxws_*`` families with
  ``server`` and ``location`` labels, written by the Prometheus client
  library's own exposition code (``prometheus_client.generate_latest``);
- ``?format=json``: the document described by ``stats_schema.json``
  (versioned by its ``schema`` member, ``ngxws-stats/2``);
- ``?format=html`` or a browser's ``Accept: text/html``: the live dashboard
  (``dashboard.py``), which polls ``?format=json``.

Every number is live: the relay adds to the shared rows on every read, the
rare-event counters (upgrade outcomes, closes, durations) when the event
happens, so a scrape lags the traffic by nothing but the read in progress.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ngxws.accounting import breakdown as B
from ngxws.accounting import counters as C
from ngxws.sinks import dashboard
from ngxws.sinks.statspage import (
    PROMETHEUS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render_prometheus,
    render_text,
)
from ngxws.ws.frames import CLOSE_CODE_BUCKETS, MESSAGE_SIZE_BOUNDS, OPCODE_CLASSES, OPCODE_FIELDS

SCHEMA_ID = "ngxws-stats/2"
JSON_CONTENT_TYPE = "application/json"

_DIRECTIONS = (
    ("client", "in", C.CLIENT_FRAMES, C.CLIENT_PAYLOAD, C.CLIENT_BYTES),
    ("upstream", "out", C.UPSTREAM_FRAMES, C.UPSTREAM_PAYLOAD, C.UPSTREAM_BYTES),
)
# direction (JSON name) -> first of its per-opcode counters (OPCODE_CLASSES order)
_OPCODES = {"client": B.OPCODES_CLIENT, "upstream": B.OPCODES_UPSTREAM}


def requested_format(args: str | None) -> str:
    """``text``, ``prometheus`` or ``json`` from the query string: the first
    ``format=`` argument decides (as nginx's ``$arg_format`` would); any
    other value is the text page."""
    for arg in (args or "").split("&"):
        name, _, value = arg.partition("=")
        if name == "format":
            return value if value in ("prometheus", "json") else "text"
    return "text"


def stats_body(counters: C.SharedCounters, args: str | None, accept: str | None = None) -> tuple[bytes, str]:
    """The page's body and Content-Type for a request with query ``args``
    and ``Accept`` header ``accept``."""
    if dashboard.wants_html(args, accept):
        return dashboard.PAGE, dashboard.HTML_CONTENT_TYPE
    fmt = requested_format(args)
    if fmt == "prometheus":
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(B.snapshot(counters)))  # type: ignore[arg-type]
        body = render_prometheus(counters.totals()) + b"\n" + generate_latest(registry)
        return body, PROMETHEUS_CONTENT_TYPE
    if fmt == "json":
        return render_json(counters).encode("utf-8"), JSON_CONTENT_TYPE
    return render_text(counters.totals()), TEXT_CONTENT_TYPE


# -- JSON ---------------------------------------------------------------------------


def _traffic(k: B.KeyStats | list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"active": k[C.ACTIVE]}
    for name, _, frames, payload, tcp in _DIRECTIONS:
        base = _OPCODES[name]
        ops = {c: k[base + i] for i, c in enumerate(OPCODE_CLASSES)}
        cumulative = 0
        buckets = []
        for i, bound in enumerate(MESSAGE_SIZE_BOUNDS):
            cumulative += k[base + len(OPCODE_CLASSES) + i]
            buckets.append({"le": bound, "count": cumulative})
        messages = {"buckets": buckets, "count": cumulative + k[base + OPCODE_FIELDS - 1]}
        out[name] = {
            "frames": k[frames],
            "payload": k[payload],
            "tcp_bytes": k[tcp],
            "opcodes": ops,
            "message_size_bytes": messages,
            "close_codes": {b: k[base + OPCODE_FIELDS + i] for i, b in enumerate(CLOSE_CODE_BUCKETS)},
        }
    return out


def _events(k: B.KeyStats | list[int]) -> dict[str, Any]:
    statuses = {str(s): k[B.NON101_BASE + i] for i, s in enumerate(B.NON101_STATUSES)}
    statuses["other"] = k[B.NON101_OTHER]
    cumulative = 0
    buckets = []
    for i, bound in enumerate(B.DURATION_BOUNDS):
        cumulative += k[B.DURATION_BASE + i]
        buckets.append({"le": bound, "count": cumulative})
    return {
        "upgrades": {
            "switched": k[B.UPGRADED],
            "rejected_cap": k[B.REJECTED_CAP],
            "connect_error": k[B.CONNECT_ERROR],
            "connect_timeout": k[B.CONNECT_TIMEOUT],
            "upstream_status": statuses,
        },
        "closes": {c: k[B.CLOSER_BASE + i] for i, c in enumerate(B.CLOSERS)},
        "duration_seconds": {
            "buckets": buckets,
            "count": k[B.CLOSED],
            "sum": k[B.DURATION_SUM_MS] / 1000,
        },
    }


def render_json(counters: C.SharedCounters) -> str:
    keys = B.snapshot(counters)
    total = [sum(k.fields[i] for k in keys) for i in range(C.KEY_FIELDS)]
    doc = {
        "schema": SCHEMA_ID,
        "time": round(time.time(), 3),
        "totals": {**_traffic(total), **_events(total)},
        "locations": [
            {"server": k.server, "location": k.location, **_traffic(k), **_events(k)}
            for k in keys
        ],
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


# -- Prometheus ----------------------------------------------------------------------

_LABELS = ["server", "location"]


class _Collector:
    """The ``ngxws_*`` families of one snapshot (a collector for one scrape)."""

    def __init__(self, keys: list[B.KeyStats]) -> None:
        self.keys = keys

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "ngxws_websocket_connections_active", "Open websocket tunnels", labels=_LABELS
        )
        frames = CounterMetricFamily(
            "ngxws_websocket_frames", "Websocket frames relayed", labels=[*_LABELS, "direction"]
        )
        payload = CounterMetricFamily(
            "ngxws_websocket_payload_bytes", "Websocket payload bytes relayed", labels=[*_LABELS, "direction"]
        )
        tcp = CounterMetricFamily(
            "ngxws_websocket_tcp_bytes", "TCP bytes relayed after the 101", labels=[*_LABELS, "direction"]
        )
        upgrades = CounterMetricFamily(
            "ngxws_websocket_upgrades",
            "Websocket upgrade requests by outcome (status: what the client got)",
            labels=[*_LABELS, "outcome", "status"],
        )
        closes = CounterMetricFamily(
            "ngxws_websocket_closes",
            "Tunnels closed, by who closed first (first close frame, else ngxws's reason, else *_tcp: whose TCP ended)",
            labels=[*_LABELS, "initiator"],
        )
        codes = CounterMetricFamily(
            "ngxws_websocket_close_codes",
            "Tunnels by the code of the first close frame from each side (none: that side sent none)",
            labels=[*_LABELS, "direction", "code"],
        )
        opcodes = CounterMetricFamily(
            "ngxws_websocket_opcode_frames",
            "Websocket frames relayed, by opcode (text and binary frames also count messages)",
            labels=[*_LABELS, "direction", "opcode"],
        )
        messages = HistogramMetricFamily(
            "ngxws_websocket_message_size_bytes",
            "Websocket data messages relayed (text or binary, up to FIN), by payload size",
            labels=[*_LABELS, "direction"],
        )
        duration = HistogramMetricFamily(
            "ngxws_websocket_duration_seconds", "Tunnel lifetime", labels=_LABELS
        )
        for k in self.keys:
            lv = [k.server, k.location]
            active.add_metric(lv, k[C.ACTIVE])
            for name, direction, f, p, t in _DIRECTIONS:
                frames.add_metric([*lv, direction], k[f])
                payload.add_metric([*lv, direction], k[p])
                tcp.add_metric([*lv, direction], k[t])
                base = _OPCODES[name]
                for i, c in enumerate(OPCODE_CLASSES):
                    opcodes.add_metric([*lv, direction, c], k[base + i])
                for i, b in enumerate(CLOSE_CODE_BUCKETS):
                    codes.add_metric([*lv, direction, b], k[base + OPCODE_FIELDS + i])
                upto = 0
                sizes: list[tuple[str, float]] = []
                for i, edge in enumerate(MESSAGE_SIZE_BOUNDS):
                    upto += k[base + len(OPCODE_CLASSES) + i]
                    sizes.append((repr(float(edge)), upto))
                sizes.append(("+Inf", upto + k[base + OPCODE_FIELDS - 1]))
                # no sum kept (it would cost the relay an add per message): the
                # payload family has the bytes
                messages.add_metric([*lv, direction], sizes, None)  # type: ignore[arg-type]
            upgrades.add_metric([*lv, "switched", "101"], k[B.UPGRADED])
            upgrades.add_metric([*lv, "rejected_cap", "1013"], k[B.REJECTED_CAP])
            upgrades.add_metric([*lv, "connect_error", "502"], k[B.CONNECT_ERROR])
            upgrades.add_metric([*lv, "connect_timeout", "504"], k[B.CONNECT_TIMEOUT])
            for i, s in enumerate(B.NON101_STATUSES):
                upgrades.add_metric([*lv, "upstream_status", str(s)], k[B.NON101_BASE + i])
            upgrades.add_metric([*lv, "upstream_status", "other"], k[B.NON101_OTHER])
            for i, c in enumerate(B.CLOSERS):
                closes.add_metric([*lv, c], k[B.CLOSER_BASE + i])
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for i, bound in enumerate(B.DURATION_BOUNDS):
                cumulative += k[B.DURATION_BASE + i]
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", k[B.CLOSED]))
            duration.add_metric(lv, buckets, k[B.DURATION_SUM_MS] / 1000)
        yield from (active, frames, payload, tcp, opcodes, messages, upgrades, closes, codes, duration)
