"""Fidelity to the module where it is easy to get subtly wrong, on a real ngxws.

- a frame counts (stats page) and is logged when its last byte has passed,
  so lines of the two directions follow completion order;
- ``$remote_user`` is the Basic user name with or without ``auth_basic``;
- ``$http_NAME`` in the ws log prints a repeated header's last occurrence;
- unknown variables stay literal text, and ``ngxws check`` warns about them.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import threading
from pathlib import Path

from harness import (
    ROOT,
    free_port,
    mask_frame,
    ngxws,
    parse_stats,
    read_head,
    upgrade_request,
    wait_for,
    ws_backend,
    ws_conf,
)
from websockets.asyncio.server import ServerConnection


def _upgraded(port: int, extra_headers: str = "") -> socket.socket:
    """A raw client through ngxws's handshake (101 read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    request = upgrade_request()
    sock.sendall(request[:-2] + extra_headers.encode("latin-1") + b"\r\n")
    head, rest = read_head(sock, timeout=10)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert rest == b""
    return sock


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    for _ in range(1000):
        if len(out) >= n:
            break
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def test_frames_count_and_log_when_complete(tmp_path: Path) -> None:
    """A 20-byte upstream frame passing while a 300-byte client frame is half
    received is counted and logged first; the half frame is not counted."""
    port = free_port()
    log = tmp_path / "order.log"
    go = threading.Event()

    async def backend(ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, go.wait, 20)
        await ws.send(b"u" * 20)
        assert len(await ws.recv()) == 300
        await ws.wait_closed()

    extra = f'ws_log {log}; ws_log_format "$ws_packet_source $ws_opcode $ws_payload_size";'
    with (
        ws_backend(backend, compression=None) as be,
        ngxws(ws_conf(port, be, extra), tmp_path, port) as px,
    ):
        sock = _upgraded(port)
        try:
            data = mask_frame(2, b"c" * 300)
            sock.sendall(data[:150])
            assert wait_for(lambda: parse_stats(px.stats())["client_bytes"] == 150)
            stats = parse_stats(px.stats())
            assert (stats["client_frames"], stats["client_payload"]) == (0, 0)  # in flight
            go.set()
            assert _recv_exactly(sock, 22) == b"\x82\x14" + b"u" * 20
            assert wait_for(lambda: parse_stats(px.stats())["upstream_frames"] == 1)
            assert parse_stats(px.stats())["client_frames"] == 0
            sock.sendall(data[150:])
            assert wait_for(lambda: parse_stats(px.stats())["client_frames"] == 1)
            stats = parse_stats(px.stats())
            assert (stats["client_payload"], stats["upstream_payload"]) == (300, 20)
            # a frame cut off by the closing connection is never counted
            sock.sendall(mask_frame(1, b"never complete")[:10])
            assert wait_for(lambda: parse_stats(px.stats())["client_bytes"] == len(data) + 10)
        finally:
            sock.close()
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        stats = parse_stats(px.stats())
        assert (stats["client_frames"], stats["client_payload"]) == (1, 300)
        px.stop()
    lines = log.read_text().splitlines()
    frames = [line for line in lines if line.startswith(("client ", "upstream "))]
    assert frames == ["upstream 2 20", "client 2 300"]


def _basic(user: str, password: str = "pw") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_remote_user_without_auth_basic_and_last_repeated_header(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "user.log"
    extra = f'ws_log {log}; ws_log_format open "[$remote_user] [$http_x_dup] [$nope] [$ws_ x]";'
    cases = [
        (
            f"Authorization: {_basic('alice')}\r\nX-Dup: first\r\nX-Dup: second\r\n",
            "[alice] [second]",
        ),
        ("Authorization: Bearer abc\r\nX-Dup: only\r\n", "[] [only]"),
        (f"Authorization: {_basic('')}\r\n", "[] [???]"),  # nginx: no user name, empty
        ("", "[] [???]"),
    ]

    async def idle(ws: ServerConnection) -> None:
        await ws.wait_closed()

    with ws_backend(idle) as be, ngxws(ws_conf(port, be, extra), tmp_path, port) as px:
        for headers, _ in cases:
            sock = _upgraded(port, headers)
            sock.close()
            assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        px.stop()
    opened = [line for line in log.read_text().splitlines() if line.startswith("[")]
    assert opened == [f"{want} [$nope] [$ws_ x]" for _, want in cases]


def test_check_warns_about_unknown_log_variables(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        ws_conf(
            free_port(),
            free_port(),
            'ws_log ws.log;\n        ws_log_format "$ws_ x $uri $ws_opcodex";\n'
            '        ws_log_format open "${foo} $http_x_y";',
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "ngxws", "check", "-c", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    tail = out.stdout.split("warnings (ngxws only):\n", 1)[1].splitlines()
    line = '  nginx.conf:{}  unknown variable "{}" in ws_log_format: written as literal text'
    assert tail == [
        line.format(8, "$ws_") + ", as the module does",
        line.format(8, "$ws_opcodex")
        + ' (the module printed $ws_opcode then "x"; for that write ${ws_opcode}x)',
        line.format(9, "${foo}") + ", as the module does",
    ]
