"""Who closed first and the close code, on the close line and in the
breakdown, for tunnels that keep no tally (issue 14): the trackers read the
first close frame themselves, however its bytes are split over reads, and
the first close frame decides who closed first, before whose TCP
connection ended; without a close frame, the ``*_tcp`` values.

A raw upstream built here (it writes its close frame in pieces, with
pauses, so ngxws reads it in several reads) and raw clients (masked frames
written by hand, in pieces too): real sockets, real ngxws, a real conf.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import (
    free_port,
    mask_frame,
    ngxws,
    read_head,
    switching_protocols,
    upgrade_request,
    wait_for,
)


def _conf(port: int, backend: int, log: Path) -> str:
    return f"""
worker_processes 2;
events {{ worker_connections 64; }}
http {{
    server {{
        listen 127.0.0.1:{port};
        server_name close.test;
        ws_log {log};
        ws_log_format open 'open';
        ws_log_format close 'close $ws_close_initiator $ws_close_code [$ws_close_reason]';
        location /status {{ ws_stat; }}
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""


def _pieces(sock: socket.socket, data: bytes, cuts: list[int]) -> None:
    """Write ``data`` cut at ``cuts``, pausing between pieces (separate reads)."""
    bounds = [0, *cuts, len(data)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        sock.sendall(data[a:b])
        time.sleep(0.15)


@contextmanager
def _upstream() -> Iterator[int]:
    """Answers the upgrade; then acts on the first bytes the client sends:
    ``c``: sends a close frame 4002 "split reason", split in four writes
    (inside the header and inside the payload), then closes its socket;
    ``d``: drops the connection without a close frame;
    anything else: waits for the client's close frame or its end, then
    closes its socket (never answering a close frame)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = int(srv.getsockname()[1])
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=10)
            conn.sendall(switching_protocols(head))
            conn.settimeout(10)
            first = rest or conn.recv(1024)
            payload = first[6:7] if len(first) >= 7 else b""  # a masked frame's first payload byte, unmasked below
            key = first[2:6]
            command = bytes((payload[0] ^ key[0],)) if payload else b""
            if command == b"d":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                return
            if command == b"c":
                body = (4002).to_bytes(2, "big") + b"split reason"
                _pieces(conn, bytes((0x88, len(body))) + body, [1, 3, 9])
                return  # then closes its socket (the client never answers)
            got = b""
            try:  # the client's close frame (11 bytes) or its end, then close
                while len(got) < 11 and (chunk := conn.recv(1024)):
                    got += chunk
            except OSError:
                pass

    def accept() -> None:
        srv.settimeout(0.2)
        for _ in range(600):  # bounded: two minutes
            if stop.is_set():
                return
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        srv.close()


def _client(port: int, command: bytes, then: str) -> None:
    """One tunnel: ``command`` as a masked text frame, then ``then``:
    ``close``: a masked close frame 3001 "bye" cut inside its header and
    payload; ``read``: read until the end; ``drop``: close the socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(upgrade_request("/", host="close.test"))
        head, _ = read_head(s)
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(mask_frame(0x1, command))
        if then == "close":
            time.sleep(0.2)
            _pieces(s, mask_frame(0x8, (3001).to_bytes(2, "big") + b"bye"), [1, 4, 7])
        if then in ("close", "read"):
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass


def _json(port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /status?format=json HTTP/1.1\r\nHost: close.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    doc: dict[str, Any] = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return doc


def test_first_close_frame_decides_split_over_reads(tmp_path: Path) -> None:
    log = tmp_path / "ws.log"
    port = free_port()
    with _upstream() as backend, ngxws(_conf(port, backend, log), tmp_path, port):
        # the upstream's close, in four reads; the client then closes its socket
        _client(port, b"c", "read")
        # the client's close, in four reads (the upstream never answers it)
        threading.Thread(target=_client, args=(port, b"x", "close"), daemon=True).start()
        # no close frame either way: the client, then the upstream, drops its connection
        _client(port, b"x", "drop")
        _client(port, b"d", "read")

        def closes() -> list[str]:
            return sorted(line for line in log.read_text().splitlines() if line.startswith("close ")) if log.exists() else []

        assert wait_for(lambda: len(closes()) == 4, timeout=20), closes()
        assert closes() == [
            "close client 3001 [bye]",
            "close client_tcp ??? [???]",
            "close upstream 4002 [split reason]",
            "close upstream_tcp ??? [???]",
        ]
        row = next(r for r in _json(port)["locations"] if r["location"] == "/")
        assert {k: n for k, n in row["closes"].items() if n} == {"client": 1, "upstream": 1, "client_tcp": 1, "upstream_tcp": 1}
        # the client's 3001 (the upstream never answered it); the upstream's
        # 4002 (this raw client never answered it)
        assert {k: n for k, n in row["client"]["close_codes"].items() if n} == {"3000-3999": 1, "none": 3}
        assert {k: n for k, n in row["upstream"]["close_codes"].items() if n} == {"4000-4999": 1, "none": 3}
