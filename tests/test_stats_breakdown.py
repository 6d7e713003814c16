"""The ws_stat breakdown (issue 14): per (server, location) counters summed
across two worker processes, scraped during traffic in its three formats;
then, once the tunnels ended -- closed by either side with chosen codes, or
dropped without a close frame -- who closed first and each direction's
first close code, per location, in the JSON and the Prometheus page.

A real ngxws with ``worker_processes 2`` in front of a real ``websockets``
echo backend; clients send known messages on several locations of several
servers, and the page must show exactly that traffic per location: frames,
payload and tcp bytes computed here from the frame sizes the clients sent
(no compression, masked client frames).  The JSON document validates
against ``ngxws/sinks/stats_schema.json`` (jsonschema), the Prometheus page
passes ``promtool check metrics`` (Debian's prometheus package) and parses
with the Prometheus client's own parser to the same numbers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
from harness import (
    free_port,
    ngxws,
    parse_stats,
    read_head,
    run,
    upgrade_request,
    wait_for,
    ws_backend,
)
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ngxws.ws.frames import CLOSE_CODE_BUCKETS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "ngxws/sinks/stats_schema.json").read_text())
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

_WS = """
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
"""


def _conf(p1: int, p2: int, p3: int, backend: int, dead: int) -> str:
    ws = _WS.format(backend=backend)
    return f"""
worker_processes 2;
events {{ worker_connections 1024; }}
http {{
    server {{
        listen 127.0.0.1:{p1};
        server_name one.test;
        location /websocket_status {{ ws_stat; }}
        location /a {{ {ws} }}
        location /b {{ {ws} }}
        location /n {{
            proxy_pass http://127.0.0.1:{p1}/missing;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
        location = /missing {{ return 404; }}
        location /dead {{
            proxy_pass http://127.0.0.1:{dead};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
    server {{
        listen 127.0.0.1:{p2};
        server_name two.test;
        ws_max_connections 9;  # the module's cap counts every server's tunnels: 5 + 3 + 1
        location /c {{ {ws} }}
    }}
    server {{
        listen 127.0.0.1:{p3};
        server_name aged.test;
        ws_conn_age 1s;
        location / {{ {ws} }}
    }}
}}
"""


def _client_frame_size(n: int) -> int:
    return n + 4 + (2 if n < 126 else 4 if n < 65536 else 10)


def _server_frame_size(n: int) -> int:
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


# location -> (tunnels, message sizes sent on each)
TRAFFIC: dict[tuple[str, str], tuple[int, list[int]]] = {
    ("one.test", "/a"): (5, [1, 100, 125, 126, 3000]),
    ("one.test", "/b"): (3, [70000, 0, 10]),
    ("two.test", "/c"): (1, [7, 8, 9, 10]),
}


# How each location's tunnels end, in order (after the traffic above):
# ("client", code) the client closes with code (the backend echoes it);
# ("upstream", code) the backend closes with code, asked by a text message
# (the client echoes it); "client_tcp" the client drops its TCP connection
# without a close frame; "upstream_tcp" the backend drops its own.
ENDINGS: dict[tuple[str, str], list[Any]] = {
    ("one.test", "/a"): [("client", 1000), ("client", 4000), ("client", 3003), ("upstream", 1011), ("upstream", 4999)],
    ("one.test", "/b"): ["client_tcp", "upstream_tcp", ("upstream", 1001)],
    ("two.test", "/c"): [("client", 1000)],
}


def _bucket(code: int) -> str:
    return str(code) if 1000 <= code <= 1015 else f"{code // 1000}000-{code // 1000}999"


def _expected_closes(endings: list[Any]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """(closes by who closed first, client's first close codes, upstream's):
    a close frame is echoed by the other side; a dropped TCP connection
    leaves both directions without one."""
    closers: dict[str, int] = {}
    codes: dict[str, int] = {}
    for end in endings:
        who, bucket = (end, "none") if isinstance(end, str) else (end[0], _bucket(end[1]))
        closers[who] = closers.get(who, 0) + 1
        codes[bucket] = codes.get(bucket, 0) + 1
    return closers, codes, dict(codes)


async def _backend(ws: ServerConnection) -> None:
    """Echo; "close CODE": close with that code; "drop": drop the TCP connection."""
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("close "):
                await ws.close(int(message.split()[1]), "asked")
                return
            if message == "drop":
                ws.transport.abort()
                return
            await ws.send(message)
    except ConnectionClosed:
        pass  # a client that closed with an error code, or dropped its connection


async def _end(ws: ClientConnection, how: Any) -> None:
    if how == "client_tcp":
        ws.transport.abort()
    elif how == "upstream_tcp":
        await ws.send("drop")
    elif how[0] == "client":
        await ws.close(how[1], "done")
    else:
        await ws.send(f"close {how[1]}")
    try:
        await asyncio.wait_for(ws.wait_closed(), 10)
    except (ConnectionClosed, TimeoutError, OSError):
        pass


# besides the binary messages: one text message (echoed as text) and one ping
# (answered by the backend's pong) per tunnel
TEXT = "h\u00e9llo"  # 6 bytes of UTF-8
PING = b"p"


def _opcodes(tunnels: int, sizes: list[int], closes: int = 0) -> dict[str, int]:
    """One direction's per-opcode frames: the binary messages, the text one,
    a ping (client) or pong (upstream), and ``closes`` close frames."""
    return {
        "text": tunnels,
        "binary": tunnels * len(sizes),
        "continuation": 0,
        "close": closes,
        "ping": 0,
        "pong": 0,
        "other": 0,
    }


def _message_sizes(tunnels: int, sizes: list[int]) -> dict[str, Any]:
    """The binary messages and the text one, cumulative per bound."""
    every = [*sizes, len(TEXT.encode())]
    bounds = (64, 1024, 16384, 262144, 1048576)
    return {
        "buckets": [{"le": b, "count": tunnels * sum(1 for n in every if n <= b)} for b in bounds],
        "count": tunnels * len(every),
    }


def _expected(tunnels: int, sizes: list[int]) -> dict[str, Any]:
    extra = len(TEXT.encode()) + len(PING)
    client_ops = {**_opcodes(tunnels, sizes), "ping": tunnels}
    upstream_ops = {**_opcodes(tunnels, sizes), "pong": tunnels}
    return {
        "active": tunnels,
        "client": {
            "frames": tunnels * (len(sizes) + 2),
            "payload": tunnels * (sum(sizes) + extra),
            "tcp_bytes": tunnels * (sum(_client_frame_size(n) for n in sizes) + extra + 2 * 6),
            "opcodes": client_ops,
            "message_size_bytes": _message_sizes(tunnels, sizes),
            "close_codes": dict.fromkeys(CLOSE_CODE_BUCKETS, 0),  # during traffic: no close yet
        },
        "upstream": {
            "frames": tunnels * (len(sizes) + 2),
            "payload": tunnels * (sum(sizes) + extra),
            "tcp_bytes": tunnels * (sum(_server_frame_size(n) for n in sizes) + extra + 2 * 2),
            "opcodes": upstream_ops,
            "message_size_bytes": _message_sizes(tunnels, sizes),
            "close_codes": dict.fromkeys(CLOSE_CODE_BUCKETS, 0),
        },
    }


def _rows(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["server"], r["location"]): r for r in doc["locations"]}


def _traffic(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("active", "client", "upstream")}


def _promtool(text: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30)


def _prom_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _refused(port: int, path: str, host: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(upgrade_request(path, host=host))
        head, _ = read_head(s)
        return head


def test_breakdown_equals_the_traffic_sent_per_location(tmp_path: Path) -> None:
    p1, p2, p3, dead = free_port(), free_port(), free_port(), free_port()
    with ws_backend(_backend) as backend, ngxws(_conf(p1, p2, p3, backend, dead), tmp_path, p1) as px:
        ports = {"one.test": p1, "two.test": p2}

        async def scenario() -> dict[str, Any]:
            conns: list[ClientConnection] = []
            ends = [how for key in TRAFFIC for how in ENDINGS[key]]
            try:
                for (server, location), (tunnels, sizes) in TRAFFIC.items():
                    for _ in range(tunnels):
                        ws = await connect(
                            f"ws://127.0.0.1:{ports[server]}{location}",
                            compression=None,
                            ping_interval=None,
                            max_size=None,
                        )
                        conns.append(ws)
                        for n in sizes:
                            await ws.send(b"x" * n)
                            assert await ws.recv() == b"x" * n
                        await ws.send(TEXT)
                        assert await ws.recv() == TEXT
                        await asyncio.wait_for(await ws.ping(PING), 10)  # its pong is back
                # during traffic: every tunnel open, every echo back
                loop = asyncio.get_running_loop()
                json_page = await loop.run_in_executor(None, px.get, "/websocket_status?format=json")
                prom_page = await loop.run_in_executor(None, px.get, "/websocket_status?format=prometheus")
                text_page = await loop.run_in_executor(None, px.stats)
                cap_head = await loop.run_in_executor(None, _refused, p2, "/c", "two.test")
                return {"json": json_page, "prom": prom_page, "text": text_page, "cap": cap_head}
            finally:
                for ws, how in zip(conns, ends, strict=False):
                    await _end(ws, how)

        got = run(scenario(), timeout=90)
        status, headers, body = got["json"]
        assert status == 200 and headers["Content-Type"] == "application/json"
        doc = json.loads(body)
        jsonschema.validate(doc, SCHEMA)
        rows = _rows(doc)
        for key, (tunnels, sizes) in TRAFFIC.items():
            assert _traffic(rows[key]) == _expected(tunnels, sizes), key
            assert rows[key]["upgrades"]["switched"] == tunnels
        # the rows add up to the totals, which are the v1 text page's numbers
        text = parse_stats(got["text"])
        assert doc["totals"]["active"] == text["active"] == sum(t for t, _ in TRAFFIC.values())
        assert doc["totals"]["client"]["tcp_bytes"] == text["client_bytes"]
        assert doc["totals"]["upstream"]["payload"] == text["upstream_payload"]
        assert got["cap"].startswith(b"HTTP/1.1 101")  # the module's refusal: 101, then close 1013

        status, headers, prom = got["prom"]
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        checked = _promtool(prom)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        samples = _prom_samples(prom.decode())
        assert samples[("nginx_websocket_tcp_bytes_total", (("direction", "in"),))] == text["client_bytes"]
        for (server, location), (tunnels, sizes) in TRAFFIC.items():
            want = _expected(tunnels, sizes)
            labels = (("direction", "in"), ("location", location), ("server", server))
            assert samples[("ngxws_websocket_tcp_bytes_total", labels)] == want["client"]["tcp_bytes"]
            labels = (("direction", "out"), ("location", location), ("server", server))
            assert samples[("ngxws_websocket_frames_total", labels)] == want["upstream"]["frames"]
            for opcode, n in want["upstream"]["opcodes"].items():
                key = ("ngxws_websocket_opcode_frames_total", (*labels[:2], ("opcode", opcode), labels[2]))
                assert samples[key] == n, key
            hist = want["upstream"]["message_size_bytes"]
            key = ("ngxws_websocket_message_size_bytes_bucket", (*labels[:1], ("le", "1024.0"), *labels[1:]))
            assert samples[key] == hist["buckets"][1]["count"], key
            key = ("ngxws_websocket_message_size_bytes_bucket", (*labels[:1], ("le", "+Inf"), *labels[1:]))
            assert samples[key] == hist["count"], key  # (no _sum kept, so no _count either)
            assert samples[("ngxws_websocket_connections_active", (("location", location), ("server", server)))] == tunnels

        # upgrade outcomes: the cap, an upstream's 404, an upstream that is not there
        assert _refused(p1, "/n", "one.test").startswith(b"HTTP/1.1 404")
        assert _refused(p1, "/dead", "one.test").startswith(b"HTTP/1.1 502")

        def final() -> dict[str, Any]:
            status, _, body = px.get("/websocket_status?format=json")
            assert status == 200
            return dict(json.loads(body))

        assert wait_for(lambda: final()["totals"]["active"] == 0, timeout=10)
        doc = final()
        jsonschema.validate(doc, SCHEMA)
        rows = _rows(doc)
        assert rows[("two.test", "/c")]["upgrades"]["rejected_cap"] == 1
        assert rows[("one.test", "/n")]["upgrades"]["upstream_status"]["404"] == 1
        assert rows[("one.test", "/dead")]["upgrades"]["connect_error"] == 1
        for key, (tunnels, _sizes) in TRAFFIC.items():
            row = rows[key]
            assert sum(row["closes"].values()) == tunnels, key
            # who closed first, and each direction's first close code
            closers, client_codes, upstream_codes = _expected_closes(ENDINGS[key])
            assert {k: n for k, n in row["closes"].items() if n} == closers, (key, row["closes"])
            assert {k: n for k, n in row["client"]["close_codes"].items() if n} == client_codes, key
            assert {k: n for k, n in row["upstream"]["close_codes"].items() if n} == upstream_codes, key
            framed = sum(1 for end in ENDINGS[key] if not isinstance(end, str))
            assert row["client"]["opcodes"]["close"] == framed, key  # a close frame and its echo per tunnel
            assert row["upstream"]["opcodes"]["close"] == framed, key
            assert row["duration_seconds"]["count"] == tunnels
            assert row["duration_seconds"]["buckets"][-1]["count"] == tunnels

        # ws_conn_age: ngxws closes first, with 4001, counted as such
        async def aged() -> None:
            async with connect(f"ws://127.0.0.1:{p3}/", compression=None, ping_interval=None) as ws:
                started = time.monotonic()
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except Exception:
                    pass
                assert time.monotonic() - started < 10

        run(aged(), timeout=30)
        assert wait_for(lambda: _rows(final())[("aged.test", "/")]["closes"]["ngxws_age"] == 1, timeout=10)
        row = _rows(final())[("aged.test", "/")]
        # closed by its 1 s age: about a second (the bucket edge is 1 s, so a
        # timer that fires on the dot may land on either side of it)
        assert row["duration_seconds"]["buckets"][2]["count"] == 1  # at most 10 s
        assert 0.9 <= row["duration_seconds"]["sum"] <= 10
        # ngxws's own 4001 is not a frame from either side; the tunnel ended
        # before the client's answer to it could pass
        assert row["client"]["close_codes"]["none"] == row["upstream"]["close_codes"]["none"] == 1
        assert sum(row["client"]["close_codes"].values()) == 1

        prom = px.get("/websocket_status?format=prometheus")[2]
        checked = _promtool(prom)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        samples = _prom_samples(prom.decode())
        doc = final()
        for r in doc["locations"]:
            for name, direction in (("client", "in"), ("upstream", "out")):
                for bucket in CLOSE_CODE_BUCKETS:
                    labels = (("code", bucket), ("direction", direction), ("location", r["location"]), ("server", r["server"]))
                    assert samples[("ngxws_websocket_close_codes_total", labels)] == r[name]["close_codes"][bucket]
            for who, n in r["closes"].items():
                labels = (("initiator", who), ("location", r["location"]), ("server", r["server"]))
                assert samples[("ngxws_websocket_closes_total", labels)] == n
        assert samples[
            ("ngxws_websocket_close_codes_total", (("code", "4000-4999"), ("direction", "in"), ("location", "/a"), ("server", "one.test")))
        ] == 2


def test_text_page_stays_the_default(tmp_path: Path) -> None:
    """No format, an unknown one, or format=text: the module's page, byte for byte."""
    p1, p2, p3, dead = free_port(), free_port(), free_port(), free_port()
    with ws_backend() as backend, ngxws(_conf(p1, p2, p3, backend, dead), tmp_path, p1) as px:
        for path in ("/websocket_status", "/websocket_status?format=xml", "/websocket_status?x=1&format=text"):
            status, headers, body = px.get(path)
            assert status == 200 and headers["Content-Type"] == "text/plain"
            assert body == (
                b"WebSocket connections: 0\n"
                b"client websocket frames  | client websocket payload | client tcp data\n"
                b"0 0 0\n"
                b"upstream websocket frames  | upstream websocket payload | upstream tcp data\n"
                b"0 0 0\n"
            )
