"""The ``ws_stat`` page, in the module's text form and the Telefonica fork's
Prometheus form.

Scripts parse the text page by position (line 1 word 3; line 3 words 1-3),
so its bytes are copied from the module's ``responce_template`` exactly,
double spaces before the first ``|`` included.  The Prometheus body is the
Telefonica fork's ``prometheus_template``, byte for byte (blank line between
metric families, ``in`` = from the client, ``out`` = to the client), so its
users keep their scrape configs and recording rules.

Both renderers are pure: they take a ``Totals`` snapshot (summed over all
workers by the accounting layer) and return the body.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PROMETHEUS_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "Totals",
    "render_prometheus",
    "render_text",
]

# The module sends ``text/plain:`` (a typo that some clients reject); ngxws
# sends the intended value.
TEXT_CONTENT_TYPE = "text/plain"

# What the Telefonica fork sets on its Prometheus page (exposition format 0.0.4).
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Totals:
    """One consistent snapshot of the counters behind the page.

    ``client_*`` count what came from the client, ``upstream_*`` what came
    from the upstream (and was sent to the client).  ``*_frames`` counts
    every frame (control and continuation frames included), ``*_payload``
    the sum of their payload lengths, ``*_bytes`` the raw websocket stream
    after the 101 (headers, masks, payload).  ``active`` is tunnels open now.
    """

    active: int
    client_frames: int
    client_payload: int
    client_bytes: int
    upstream_frames: int
    upstream_payload: int
    upstream_bytes: int


def render_text(t: Totals) -> bytes:
    """The module's five-line page (v1 and chainstack), byte-exact."""
    return (
        f"WebSocket connections: {t.active}\n"
        "client websocket frames  | client websocket payload | client tcp data\n"
        f"{t.client_frames} {t.client_payload} {t.client_bytes}\n"
        "upstream websocket frames  | upstream websocket payload | upstream tcp data\n"
        f"{t.upstream_frames} {t.upstream_payload} {t.upstream_bytes}\n"
    ).encode("ascii")


def render_prometheus(t: Totals) -> bytes:
    """The Telefonica fork's page, byte-exact (its ``prometheus_template``)."""
    return (
        "# HELP nginx_websocket_connections_active Current number of active WebSocket connections\n"
        "# TYPE nginx_websocket_connections_active gauge\n"
        f"nginx_websocket_connections_active {t.active}\n"
        "\n"
        "# HELP nginx_websocket_frames_total Total number of WebSocket frames\n"
        "# TYPE nginx_websocket_frames_total counter\n"
        f'nginx_websocket_frames_total{{direction="in"}} {t.client_frames}\n'
        f'nginx_websocket_frames_total{{direction="out"}} {t.upstream_frames}\n'
        "\n"
        "# HELP nginx_websocket_payload_bytes_total Total WebSocket payload bytes\n"
        "# TYPE nginx_websocket_payload_bytes_total counter\n"
        f'nginx_websocket_payload_bytes_total{{direction="in"}} {t.client_payload}\n'
        f'nginx_websocket_payload_bytes_total{{direction="out"}} {t.upstream_payload}\n'
        "\n"
        "# HELP nginx_websocket_tcp_bytes_total Total TCP bytes for WebSocket connections\n"
        "# TYPE nginx_websocket_tcp_bytes_total counter\n"
        f'nginx_websocket_tcp_bytes_total{{direction="in"}} {t.client_bytes}\n'
        f'nginx_websocket_tcp_bytes_total{{direction="out"}} {t.upstream_bytes}\n'
    ).encode("ascii")
