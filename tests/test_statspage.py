"""The ws_stat page, byte for byte: scripts parse it by position."""

from __future__ import annotations

from ngxws.sinks.statspage import (
    PROMETHEUS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Totals,
    render_prometheus,
    render_text,
)

TOTALS = Totals(
    active=42,
    client_frames=12345,
    client_payload=1048576,
    client_bytes=1148576,
    upstream_frames=12301,
    upstream_payload=2097152,
    upstream_bytes=2197152,
)

# The module's responce_template with the numbers above filled in.
GOLDEN_TEXT = (
    b"WebSocket connections: 42\n"
    b"client websocket frames  | client websocket payload | client tcp data\n"
    b"12345 1048576 1148576\n"
    b"upstream websocket frames  | upstream websocket payload | upstream tcp data\n"
    b"12301 2097152 2197152\n"
)

# The Telefonica fork's README example, which uses the same numbers.
GOLDEN_PROMETHEUS = b"""\
# HELP nginx_websocket_connections_active Current number of active WebSocket connections
# TYPE nginx_websocket_connections_active gauge
nginx_websocket_connections_active 42

# HELP nginx_websocket_frames_total Total number of WebSocket frames
# TYPE nginx_websocket_frames_total counter
nginx_websocket_frames_total{direction="in"} 12345
nginx_websocket_frames_total{direction="out"} 12301

# HELP nginx_websocket_payload_bytes_total Total WebSocket payload bytes
# TYPE nginx_websocket_payload_bytes_total counter
nginx_websocket_payload_bytes_total{direction="in"} 1048576
nginx_websocket_payload_bytes_total{direction="out"} 2097152

# HELP nginx_websocket_tcp_bytes_total Total TCP bytes for WebSocket connections
# TYPE nginx_websocket_tcp_bytes_total counter
nginx_websocket_tcp_bytes_total{direction="in"} 1148576
nginx_websocket_tcp_bytes_total{direction="out"} 2197152
"""


def test_text_page_is_byte_exact() -> None:
    assert render_text(TOTALS) == GOLDEN_TEXT


def test_text_page_of_a_fresh_server() -> None:
    assert render_text(Totals(0, 0, 0, 0, 0, 0, 0)) == (
        b"WebSocket connections: 0\n"
        b"client websocket frames  | client websocket payload | client tcp data\n"
        b"0 0 0\n"
        b"upstream websocket frames  | upstream websocket payload | upstream tcp data\n"
        b"0 0 0\n"
    )


def test_text_page_parses_by_position_like_the_scripts_do() -> None:
    lines = render_text(TOTALS).decode().split("\n")
    assert len(lines) == 6 and lines[5] == ""  # five lines, each ending in \n
    assert int(lines[0].split()[2]) == TOTALS.active
    assert [int(w) for w in lines[2].split()] == [
        TOTALS.client_frames,
        TOTALS.client_payload,
        TOTALS.client_bytes,
    ]
    assert [int(w) for w in lines[4].split()] == [
        TOTALS.upstream_frames,
        TOTALS.upstream_payload,
        TOTALS.upstream_bytes,
    ]


def test_text_page_numbers_are_plain_decimal_however_large() -> None:
    big = 2**64 - 1  # %lu's range
    page = render_text(Totals(big, big, big, big, big, big, big))
    assert page.splitlines()[2] == f"{big} {big} {big}".encode()


def test_prometheus_page_is_byte_exact() -> None:
    assert render_prometheus(TOTALS) == GOLDEN_PROMETHEUS


def test_prometheus_in_is_from_client_out_is_to_client() -> None:
    t = Totals(1, 2, 3, 4, 5, 6, 7)
    samples = {
        line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1])
        for line in render_prometheus(t).decode().splitlines()
        if line and not line.startswith("#")
    }
    assert samples == {
        "nginx_websocket_connections_active": 1,
        'nginx_websocket_frames_total{direction="in"}': 2,
        'nginx_websocket_payload_bytes_total{direction="in"}': 3,
        'nginx_websocket_tcp_bytes_total{direction="in"}': 4,
        'nginx_websocket_frames_total{direction="out"}': 5,
        'nginx_websocket_payload_bytes_total{direction="out"}': 6,
        'nginx_websocket_tcp_bytes_total{direction="out"}': 7,
    }


def test_content_types() -> None:
    assert TEXT_CONTENT_TYPE == "text/plain"  # not the module's "text/plain:"
    assert PROMETHEUS_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
