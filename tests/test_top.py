"""``ngxws top`` (issue 14, item 4): the ws_stat JSON in a terminal.

Pure parts with table tests: ``render`` (JSON snapshots -> lines, on
documents that validate against ``stats_schema.json``), ``stats_target``
(where the page is, from real conf files through the real loader),
``target_from_url``, ``paint``.  Then the command itself against a real
ngxws with traffic: ``ngxws top --once`` during the load shows rates, and
after the load it shows exactly the numbers of a JSON fetch made right
after; the live mode repaints with ANSI codes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trustme
from harness import ROOT, LoopThread, free_port, ngxws, wait_for, ws_backend
from websockets.asyncio.client import connect

from ngxws.accounting import breakdown as B
from ngxws.config.loader import load_config
from ngxws.top import StatsTarget, paint, render, stats_target, target_from_url

SCHEMA = json.loads((ROOT / "ngxws/sinks/stats_schema.json").read_text())


def _events(switched: int = 0, closes: dict[str, int] | None = None, **statuses: int) -> dict[str, Any]:
    upstream_status = {str(s): 0 for s in B.NON101_STATUSES} | {"other": 0} | statuses
    closed = {c: 0 for c in B.CLOSERS} | (closes or {})
    count = sum(closed.values())
    return {
        "upgrades": {
            "switched": switched,
            "rejected_cap": 0,
            "connect_error": 0,
            "connect_timeout": 0,
            "upstream_status": upstream_status,
        },
        "closes": closed,
        "duration_seconds": {
            "buckets": [{"le": b, "count": count} for b in B.DURATION_BOUNDS],
            "count": count,
            "sum": 3.0 * count,
        },
    }


def _traffic(active: int, c: tuple[int, int, int], u: tuple[int, int, int]) -> dict[str, Any]:
    return {
        "active": active,
        "client": dict(zip(("frames", "payload", "tcp_bytes"), c, strict=True)),
        "upstream": dict(zip(("frames", "payload", "tcp_bytes"), u, strict=True)),
    }


def _doc(t: float, rows: list[tuple[str, str, int, tuple[int, int, int], tuple[int, int, int], int]]) -> dict[str, Any]:
    """A document as the server writes it: totals are the rows' sums."""
    locations = []
    for server, location, active, c, u, switched in rows:
        locations.append({"server": server, "location": location, **_traffic(active, c, u), **_events(switched)})
    total = _traffic(
        sum(r[2] for r in rows),
        tuple(sum(r[3][i] for r in rows) for i in range(3)),  # type: ignore[arg-type]
        tuple(sum(r[4][i] for r in rows) for i in range(3)),  # type: ignore[arg-type]
    )
    doc = {
        "schema": "ngxws-stats/2",
        "time": t,
        "totals": {**total, **_events(sum(r[5] for r in rows), {"client": 2, "ngxws_age": 1}, **{"404": 1})},
        "locations": locations,
    }
    jsonschema.validate(doc, SCHEMA)
    return doc


FIRST = _doc(1764128700.0, [("", "", 0, (0, 0, 0), (0, 0, 0), 0), ("a.test", "/ws", 2, (10, 100, 160), (20, 200, 240), 2)])
SECOND = _doc(
    1764128702.0,
    [("", "", 0, (0, 0, 0), (0, 0, 0), 0), ("a.test", "/ws", 3, (30, 300, 480), (60, 600, 720), 3), ("b.test", "= /x", 1, (5, 0, 30), (0, 0, 0), 1)],
)

# FIRST rendered alone, or after a later snapshot (no rate either way)
FIRST_NO_RATES = """\
        ngxws top  http://127.0.0.1:8080/st  2025-11-26 03:45:00 UTC

        open tunnels 2   upgrades: switched 2  rejected_cap 0  connect_error 0  connect_timeout 0  upstream_status 1

        direction  frames  frames/s  payload  payload/s  tcp_bytes  tcp_bytes/s
        client         10         -      100          -        160            -
        upstream       20         -      200          -        240            -

        closed by    client  upstream  ngxws_age  ngxws_shutdown  ngxws_timeout  ngxws_error  client_tcp  upstream_tcp
        close code  its own   its own       4001            1001           none         none        none          none
        tunnels           2         0          1               0              0            0           0             0
        mean tunnel lifetime 3.0s over 3 closed

        server   location  open  client.frames  client.f/s  client.tcp  client.B/s  upstream.frames  upstream.f/s  upstream.tcp  upstream.B/s  upgrades  refused  closed
        (other)  -            0              0           -           0           -                0             -             0             -         0        0       0
        a.test   /ws          2             10           -         160           -               20             -           240             -         2        0       0"""

RENDER_CASES = [
    pytest.param(
        FIRST,
        None,
        FIRST_NO_RATES,
        id="first snapshot: no rates",
    ),
    pytest.param(
        SECOND,
        FIRST,
        """\
        ngxws top  http://127.0.0.1:8080/st  2025-11-26 03:45:02 UTC

        open tunnels 4   upgrades: switched 4  rejected_cap 0  connect_error 0  connect_timeout 0  upstream_status 1

        direction  frames  frames/s  payload  payload/s  tcp_bytes  tcp_bytes/s
        client         35      12.5      300      100.0        510        175.0
        upstream       60      20.0      600      200.0        720        240.0

        closed by    client  upstream  ngxws_age  ngxws_shutdown  ngxws_timeout  ngxws_error  client_tcp  upstream_tcp
        close code  its own   its own       4001            1001           none         none        none          none
        tunnels           2         0          1               0              0            0           0             0
        mean tunnel lifetime 3.0s over 3 closed

        server   location  open  client.frames  client.f/s  client.tcp  client.B/s  upstream.frames  upstream.f/s  upstream.tcp  upstream.B/s  upgrades  refused  closed
        (other)  -            0              0         0.0           0         0.0                0           0.0             0           0.0         0        0       0
        a.test   /ws          3             30        10.0         480       160.0               60          20.0           720         240.0         3        0       0
        b.test   = /x         1              5           -          30           -                0             -             0             -         1        0       0""",
        id="rates from two snapshots; a new row has none yet",
    ),
    pytest.param(
        FIRST,
        SECOND,
        FIRST_NO_RATES,
        id="time went backwards (a restart): no rates",
    ),
]


@pytest.mark.parametrize(("doc", "prev", "expected"), RENDER_CASES)
def test_render(doc: dict[str, Any], prev: dict[str, Any] | None, expected: str) -> None:
    assert render(doc, prev, "http://127.0.0.1:8080/st") == textwrap.dedent(expected).split("\n")


def test_render_counter_reset_gives_no_rate() -> None:
    """Counters lower than the previous snapshot's (a restart between two
    polls, time still going forward): no rate, never a negative one."""
    later = json.loads(json.dumps(FIRST))
    later["time"] = SECOND["time"] + 1
    lines = render(later, SECOND, "u")
    assert lines[5].split() == ["client", "10", "-", "100", "-", "160", "-"]
    assert not any("-0." in line or re.search(r"\s-\d", line) for line in lines)


def test_render_frame_tables() -> None:
    """Frames by opcode, the message-size histogram (cumulative, as the JSON
    has it) and the first close frame's code per direction: only the codes
    seen either way, ``none`` for a tunnel that ended without one."""
    doc = json.loads(json.dumps(FIRST))
    for d, n in (("client", 1), ("upstream", 2)):
        doc["totals"][d]["opcodes"] = dict.fromkeys(("text", "binary", "continuation", "close", "ping", "pong", "other"), n)
        doc["totals"][d]["message_size_bytes"] = {
            "buckets": [{"le": b, "count": n * (i + 1)} for i, b in enumerate((64, 1024, 16384, 262144, 1048576))],
            "count": 9 * n,
        }
        doc["totals"][d]["close_codes"] = dict.fromkeys([*(str(c) for c in range(1000, 1016)), "3000-3999", "4000-4999", "other", "none"], 0)
    doc["totals"]["client"]["close_codes"] |= {"1000": 2, "4000-4999": 1}
    doc["totals"]["upstream"]["close_codes"] |= {"1000": 2, "none": 1}
    jsonschema.validate(doc, SCHEMA)
    lines = render(doc, None, "u")
    at = lines.index("mean tunnel lifetime 3.0s over 3 closed") + 1
    assert lines[at:at + 12] == textwrap.dedent("""
        opcode    text  binary  continuation  close  ping  pong  other
        client       1       1             1      1     1     1      1
        upstream     2       2             2      2     2     2      2

        message size  le 64  le 1024  le 16384  le 262144  le 1048576  +Inf
        client            1        2         3          4           5     9
        upstream          2        4         6          8          10    18

        first close code  1000  4000-4999  none
        client               2          1     0
        upstream             2          0     1""").split("\n")


def test_render_refuses_other_schema() -> None:
    with pytest.raises(ValueError, match="ngxws-stats/2"):
        render({"schema": "ngxws-stats/1"}, None, "u")  # closes meant something else there


def test_paint() -> None:
    screen = paint(["abcdef", "gh", "ij", "kl"], width=4, height=3)
    assert screen == "\x1b[Habcd\x1b[K\ngh\x1b[K\n\x1b[J"


# -- where the page is ---------------------------------------------------------------------


def _target(tmp_path: Path, http: str) -> StatsTarget | None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{\n{textwrap.dedent(http)}\n}}\n")
    return stats_target(load_config(str(conf), str(tmp_path), None))


@pytest.mark.parametrize(
    ("http", "expected"),
    [
        ("server { listen 127.0.0.1:8080; location /st { ws_stat; } }", StatsTarget("http://127.0.0.1:8080/st?format=json")),
        ("server { listen 8080; location /st { ws_stat; } }", StatsTarget("http://127.0.0.1:8080/st?format=json")),
        ("server { listen 80; location = /st { ws_stat; } }", StatsTarget("http://127.0.0.1/st?format=json")),
        ("server { listen [::]:81; location ^~ /st/ { ws_stat; } }", StatsTarget("http://[::1]:81/st/?format=json")),
        ("server { listen [::1]:81; location /st { ws_stat; } }", StatsTarget("http://[::1]:81/st?format=json")),
        (
            "server { listen 10.0.0.1:81; listen 127.0.0.2:82; location /st { ws_stat; } }",
            StatsTarget("http://127.0.0.2:82/st?format=json"),
        ),
        (
            "server { listen 10.0.0.1:81; server_name *.w.test ~^r stats.test; location /st { ws_stat; } }",
            StatsTarget("http://10.0.0.1:81/st?format=json", host="stats.test"),
        ),
        (
            "server { listen 8080; server_name .dot.test; location /st { ws_stat; } }",
            StatsTarget("http://127.0.0.1:8080/st?format=json", host="dot.test"),
        ),
        (
            "server { listen 8080; server_name _; location /st { ws_stat; } }",
            StatsTarget("http://127.0.0.1:8080/st?format=json"),
        ),
        (  # the stat location only in the second server, on a shared port: Host picks it
            """server { listen 127.0.0.1:8080; server_name main.test; location / { return 200; } }
            server { listen 127.0.0.1:8080; server_name stats.test; location /ws_status { ws_stat; } }""",
            StatsTarget("http://127.0.0.1:8080/ws_status?format=json", host="stats.test"),
        ),
        (  # nested in a prefix location; a regex ws_stat has no URI to derive
            "server { listen 8080; location ~ ^/re { ws_stat; } location /a/ { location /a/st { ws_stat; } } }",
            StatsTarget("http://127.0.0.1:8080/a/st?format=json"),
        ),
        ("server { listen unix:/tmp/x.sock; location /st { ws_stat; } }", None),
        ("server { listen 8080 proxy_protocol; location /st { ws_stat; } }", None),
        ("server { listen 8080; location ~ ^/st { ws_stat; } }", None),
        ("server { listen 8080; location / { return 200; } }", None),
    ],
)
def test_stats_target(tmp_path: Path, http: str, expected: StatsTarget | None) -> None:
    assert _target(tmp_path, http) == expected


def test_stats_target_tls(tmp_path: Path) -> None:
    """An ssl listener is https, verification off only on loopback; plain
    http is taken first when both reach the page."""
    ca = trustme.CA()
    cert = ca.issue_cert("stats.test")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    tls = "ssl_certificate c.pem; ssl_certificate_key k.pem;"
    assert _target(tmp_path, f"server {{ listen 127.0.0.1:8443 ssl; {tls} location /st {{ ws_stat; }} }}") == StatsTarget(
        "https://127.0.0.1:8443/st?format=json", insecure=True
    )
    assert _target(tmp_path, f"server {{ listen 443 ssl; {tls} location /st {{ ws_stat; }} }}") == StatsTarget(
        "https://127.0.0.1/st?format=json", insecure=True
    )
    assert _target(tmp_path, f"server {{ listen 10.1.1.1:443 ssl; {tls} location /st {{ ws_stat; }} }}") == StatsTarget(
        "https://10.1.1.1/st?format=json", insecure=False
    )
    both = f"server {{ listen 127.0.0.1:8443 ssl; listen 127.0.0.1:8080; {tls} location /st {{ ws_stat; }} }}"
    assert _target(tmp_path, both) == StatsTarget("http://127.0.0.1:8080/st?format=json")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/st", StatsTarget("http://127.0.0.1:8080/st?format=json")),
        ("http://127.0.0.1:8080/st?format=prometheus&x=1", StatsTarget("http://127.0.0.1:8080/st?format=json")),
        ("127.0.0.1:8080/st", StatsTarget("http://127.0.0.1:8080/st?format=json")),
        ("https://localhost:8443/st", StatsTarget("https://localhost:8443/st?format=json", insecure=True)),
        ("https://[::1]/st", StatsTarget("https://[::1]/st?format=json", insecure=True)),
        ("https://stats.example/st", StatsTarget("https://stats.example/st?format=json")),
        ("http://h.test", StatsTarget("http://h.test/?format=json")),
    ],
)
def test_target_from_url(url: str, expected: StatsTarget) -> None:
    assert target_from_url(url) == expected


# -- the command against a running instance --------------------------------------------------


def _conf(port: int, backend: int) -> str:
    ws = f"""
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";"""
    return f"""
worker_processes 2;
events {{ worker_connections 1024; }}
http {{
    server {{
        listen 127.0.0.1:{port};
        server_name main.test;
        location /a {{ {ws} }}
        location /b {{ {ws} }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name stats.test;
        location = /ws_status {{ ws_stat; }}
    }}
}}
"""


def _json(port: int) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/ws_status?format=json", headers={"Host": "stats.test"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def _top(conf: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="250", LINES="60")
    return subprocess.run(
        [sys.executable, "-m", "ngxws", "top", "-c", str(conf), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def _parse(lines: list[str]) -> dict[str, Any]:
    """The numbers of a ``--once`` screen, by their labels."""
    out: dict[str, Any] = {"locations": {}}
    out["active"] = int(re.search(r"open tunnels (\d+)", lines[2]).group(1))  # type: ignore[union-attr]
    out["switched"] = int(re.search(r"switched (\d+)", lines[2]).group(1))  # type: ignore[union-attr]
    for line in lines[5:7]:
        name, frames, frate, payload, prate, tcp, trate = line.split()
        out[name] = {"frames": int(frames), "payload": int(payload), "tcp_bytes": int(tcp), "rates": (frate, prate, trate)}
    closed_by = lines[8].split()[2:]
    counts = [int(n) for n in lines[10].split()[1:]]
    out["closes"] = dict(zip(closed_by, counts, strict=True))
    for title, key in (("opcode ", "opcodes"), ("message size ", "message_size_bytes"), ("first close code ", "close_codes")):
        at = next(i for i, line in enumerate(lines) if line.startswith(title))
        columns = re.split(r"\s{2,}", lines[at])[1:]
        for line in lines[at + 1 : at + 3]:
            name, *counts = line.split()
            out[name][key] = dict(zip(columns, (int(n) for n in counts), strict=True))
    start = next(i for i, line in enumerate(lines) if line.startswith("server "))
    header = re.split(r"\s{2,}", lines[start])
    for line in lines[start + 1 :]:
        row = dict(zip(header, re.split(r"\s{2,}", line), strict=True))
        out["locations"][(row["server"], row["location"])] = row
    return out


def _direction(d: dict[str, Any]) -> dict[str, Any]:
    """What the screen shows of one direction of the JSON's totals (close
    codes: the buckets seen, compared without the zeros)."""
    hist = d["message_size_bytes"]
    return {
        **{k: d[k] for k in ("frames", "payload", "tcp_bytes")},
        "opcodes": d["opcodes"],
        "message_size_bytes": {**{f"le {b['le']}": b["count"] for b in hist["buckets"]}, "+Inf": hist["count"]},
        "close_codes": {c: n for c, n in d["close_codes"].items() if n},
    }


def _expected(doc: dict[str, Any]) -> dict[str, Any]:
    tot = doc["totals"]
    return {
        "active": tot["active"],
        "switched": tot["upgrades"]["switched"],
        "client": _direction(tot["client"]),
        "upstream": _direction(tot["upstream"]),
        "closes": tot["closes"],
        "locations": {
            ("(other)" if not r["server"] else r["server"], "-" if not r["location"] else r["location"]): {
                "open": r["active"],
                "client.frames": r["client"]["frames"],
                "client.tcp": r["client"]["tcp_bytes"],
                "upstream.frames": r["upstream"]["frames"],
                "upstream.tcp": r["upstream"]["tcp_bytes"],
                "upgrades": r["upgrades"]["switched"],
                "closed": sum(r["closes"].values()),
            }
            for r in doc["locations"]
        },
    }


def _shown(parsed: dict[str, Any]) -> dict[str, Any]:
    return {
        "active": parsed["active"],
        "switched": parsed["switched"],
        **{
            d: {
                **{k: v for k, v in parsed[d].items() if k not in ("rates", "close_codes")},
                "close_codes": {c: n for c, n in parsed[d]["close_codes"].items() if n},
            }
            for d in ("client", "upstream")
        },
        "closes": parsed["closes"],
        "locations": {
            key: {k: int(row[k]) for k in ("open", "client.frames", "client.tcp", "upstream.frames", "upstream.tcp", "upgrades", "closed")}
            for key, row in parsed["locations"].items()
        },
    }


async def _client(port: int, path: str, messages: int, keep: asyncio.Event | None) -> None:
    async with connect(f"ws://127.0.0.1:{port}{path}", compression=None, ping_interval=None) as ws:
        for i in range(messages):
            await ws.send(b"m" * (i % 300))
            await ws.recv()
            await asyncio.sleep(0.01)
        if keep is not None:
            await asyncio.wait_for(keep.wait(), 60)


@pytest.mark.timeout(180)
def test_top_shows_the_json_numbers(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(_conf(port, backend), tmp_path, port) as server:
        lt = LoopThread()
        try:
            keep = asyncio.Event()

            async def traffic() -> None:
                await asyncio.gather(
                    *(_client(port, "/a", 250, keep) for _ in range(3)),  # stay open after
                    *(_client(port, "/b", 120, None) for _ in range(2)),  # close when done
                )

            running = asyncio.run_coroutine_threadsafe(traffic(), lt.loop)
            assert wait_for(lambda: _json(port)["totals"]["client"]["frames"] > 50, 30)
            # during the load: two snapshots half a second apart, the rates move
            during = _top(server.conf, "--once", "--interval", "0.5")
            assert during.returncode == 0, during.stderr
            lines = during.stdout.rstrip("\n").split("\n")
            assert lines[0].startswith(f"ngxws top  http://127.0.0.1:{port}/ws_status  ")
            parsed = _parse(lines)
            assert float(parsed["client"]["rates"][0]) > 0 and float(parsed["upstream"]["rates"][0]) > 0
            assert float(parsed["locations"][("main.test", "/a")]["client.f/s"]) > 0

            # after the load (three tunnels still open, two closed: their close
            # frames count as frames too)
            frames = 3 * 250 + 2 * (120 + 1)

            def settled() -> bool:
                tot = _json(port)["totals"]
                return bool(sum(tot["closes"].values()) == 2 and tot["client"]["frames"] == frames)

            assert wait_for(settled, 60), _json(port)["totals"]["closes"]
            after = _top(server.conf, "--once")
            doc = _json(port)
            assert after.returncode == 0, after.stderr
            shown = _parse(after.stdout.rstrip("\n").split("\n"))
            assert _shown(shown) == _expected(doc)
            assert shown["active"] == 3 and shown["client"]["frames"] == frames
            assert shown["client"]["rates"] == ("0.0", "0.0", "0.0")  # idle now
            assert shown["locations"][("main.test", "/b")]["closed"] == "2"

            # the live view: repainted in place, numbers and all
            live = _top(server.conf, "-n", "2", "--interval", "0.2")
            assert live.returncode == 0, live.stderr
            assert live.stdout.count("\x1b[H") == 2 and live.stdout.endswith("\x1b[J")
            second = live.stdout.split("\x1b[H")[2].replace("\x1b[K", "").replace("\x1b[J", "")
            assert _shown(_parse(second.rstrip("\n").split("\n"))) == _expected(_json(port))

            lt.loop.call_soon_threadsafe(keep.set)
            running.result(30)
        finally:
            lt.close()


def test_top_url_and_errors(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "none.conf"
    conf.write_text(f"events {{}}\nhttp {{ server {{ listen 127.0.0.1:{port}; location / {{ return 200; }} }} }}\n")
    no_stat = _top(conf, "--once")
    assert no_stat.returncode == 1 and "no ws_stat location" in no_stat.stderr
    down = _top(conf, "--once", "--url", f"http://127.0.0.1:{port}/st")
    assert down.returncode == 1 and f"cannot read http://127.0.0.1:{port}/st?format=json" in down.stderr
    with ws_backend() as backend, ngxws(_conf(port, backend), tmp_path, port):
        # --url: no Host header of the config, so the default server (no ws_stat) answers 404
        wrong = _top(conf, "--once", "--url", f"http://127.0.0.1:{port}/ws_status")
        assert wrong.returncode == 1 and "404" in wrong.stderr
        bad = tmp_path / "bad.conf"
        bad.write_text("events {}\nhttp { server {\n listen 127.0.0.1:99999; } }\n")
        broken = _top(bad, "--once")  # a bad config: nginx's words, file:line
        assert broken.returncode == 1 and 'invalid port in "127.0.0.1:99999"' in broken.stderr and "bad.conf:3" in broken.stderr


def test_top_over_tls_on_loopback(tmp_path: Path) -> None:
    """An ssl-only listener: https, the certificate (for another name) not
    verified on loopback; the numbers are the JSON's."""
    ca = trustme.CA()
    cert = ca.issue_cert("stats.example")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    port = free_port()
    conf_text = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate c.pem;
        ssl_certificate_key k.pem;
        location /st {{ ws_stat; }}
    }}
}}
"""
    with ngxws(conf_text, tmp_path, port) as server:
        shown = _top(server.conf, "--once", "--interval", "0")
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.rstrip("\n").split("\n")
        assert lines[0].startswith(f"ngxws top  https://127.0.0.1:{port}/st  ")
        assert lines[2].startswith("open tunnels 0 ")
        assert lines[5].split() == ["client", "0", "-", "0", "-", "0", "-"]  # one snapshot: no rates
