"""ngxws's ws log additions (issue 14): close-line variables, $ws_conn_duration,
$ws_opcode_name, $request_id on open and close lines, escape= and
``ws_log syslog:``; ``ngxws check`` marks each as ngxws-only.

Real ngxws processes, real ``websockets`` peers, real conf files; the syslog
receiver is a UDP socket on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, free_port, ngxws, run, wait_for, ws_backend
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ngxws.sinks.logescape import escape

_WS = """
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
"""


def _conf(port: int, backend: int, server_extra: str) -> str:
    return f"""
events {{ worker_connections 64; }}
http {{
    server {{
        listen 127.0.0.1:{port};
        {server_extra}
        {_WS.format(backend=backend)}
    }}
}}
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


CLOSE_VARS = (
    "$request_id $ws_close_initiator $ws_close_code [$ws_close_reason] $ws_conn_duration "
    "$ws_frames_client $ws_frames_upstream $ws_payload_client $ws_payload_upstream"
)


# the frame lines from the C renderer (FrameTracker.log) and from the Python
# one it falls back to without the extension (FrameLogger.lines_for_frames)
@pytest.mark.parametrize("env", [{}, {"NGXWS_NO_SPEEDUPS": "1"}], ids=["c", "python"])
def test_close_line_variables(tmp_path: Path, env: dict[str, str]) -> None:
    log = tmp_path / "ws.log"
    port = free_port()
    extra = (
        f"ws_log {log};\n"
        "ws_log_format open 'open $request_id $ws_close_code $ws_conn_duration';\n"
        f"ws_log_format close 'close {CLOSE_VARS}';\n"
        "ws_log_format '$ws_opcode_name $ws_opcode $ws_packet_source $ws_close_initiator';\n"
    )
    with ws_backend() as backend, ngxws(_conf(port, backend, extra), tmp_path, port, extra_env=env):

        async def talk() -> None:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None, ping_interval=None) as ws:
                for msg in (b"abc", "hello"):
                    await ws.send(msg)
                    await ws.recv()
                await ws.close(1000, "bye")

        run(talk())
        assert wait_for(lambda: any(line.startswith("close ") for line in _lines(log)), timeout=10)
    lines = _lines(log)
    opened = lines[0].split()
    assert opened[0] == "open" and re.fullmatch(r"[0-9a-f]{32}", opened[1])
    assert opened[2] == "???"  # close-only variables are ??? elsewhere
    assert 0 <= int(opened[3]) < 5000
    frames = lines[1:-1]
    assert frames[:4] == [
        "binary 2 client ???",
        "binary 2 upstream ???",
        "text 1 client ???",
        "text 1 upstream ???",
    ]
    assert frames[4:] == ["close 8 client ???", "close 8 upstream ???"]
    m = re.fullmatch(r"close (\w+) (\w+) (\d+) \[bye\] (\d+) 3 3 (\d+) (\d+)", lines[-1])
    assert m is not None, lines[-1]
    assert m.group(1) == opened[1]  # the same $request_id on the open and the close line
    # who closed first: the client's close frame came first (the echo server
    # then closes its socket first, RFC 6455 7.1.1: that does not count)
    assert m.group(2) == "client"
    assert m.group(3) == "1000"
    assert int(m.group(4)) < 10_000
    assert (int(m.group(5)), int(m.group(6))) == (3 + 5 + 5, 3 + 5 + 5)  # payloads + close 2+3


def test_close_line_when_ngxws_ends_the_tunnel(tmp_path: Path) -> None:
    log = tmp_path / "ws.log"
    port = free_port()
    extra = f"ws_log {log};\nws_conn_age 1s;\nws_log_format close '{CLOSE_VARS}';\nws_log_format open 'open';\n"
    with ws_backend() as backend, ngxws(_conf(port, backend, extra), tmp_path, port):

        async def wait_aged() -> None:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None, ping_interval=None) as ws:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()

        run(wait_aged(), timeout=20)
        assert wait_for(lambda: len(_lines(log)) >= 2, timeout=10)
    close = _lines(log)[-1].split(" ", 4)
    assert close[1:3] == ["ngxws_age", "4001"], close
    assert close[3] == "[Connection"
    assert "is Aged]" in close[4]
    duration = int(close[4].split()[2])
    assert 1000 <= duration < 10_000


def test_escape_json_and_default(tmp_path: Path) -> None:
    log = tmp_path / "ws.log"
    port = free_port()
    extra = (
        f"ws_log {log};\n"
        "ws_log_format escape=json open '{\"ua\":\"$http_x_test\",\"id\":\"$request_id\",\"ms\":$ws_conn_duration}';\n"
        "ws_log_format escape=default close 'close $http_x_test';\n"
    )
    tricky = 'a"b\\c\td'
    with ws_backend() as backend, ngxws(_conf(port, backend, extra), tmp_path, port):

        async def talk() -> None:
            async with connect(
                f"ws://127.0.0.1:{port}/", additional_headers={"X-Test": tricky}, compression=None
            ) as ws:
                await ws.send("x")
                await ws.recv()

        run(talk())
        assert wait_for(lambda: _lines(log)[-1:] != [] and _lines(log)[-1].startswith("close"), timeout=10)
    lines = _lines(log)  # open, the v1 default frame lines, close
    opened, closed = lines[0], lines[-1]
    doc = json.loads(opened)  # goes straight into a log pipeline
    assert doc["ua"] == tricky and len(doc["id"]) == 32 and isinstance(doc["ms"], int)
    assert closed == "close a\\x22b\\x5Cc\\x09d"  # nginx's default escaping


def test_escape_modes_as_nginx() -> None:
    assert escape('"\\\n\x01é', "json") == '\\"\\\\\\n\\u0001é'
    assert escape('"\\\n\x7fé', "default") == "\\x22\\x5C\\x0A\\x7F\\xC3\\xA9"
    assert escape('"\\\n', "none") == '"\\\n'
    assert escape("plain", "default") == "plain"


def test_ws_log_to_syslog_over_udp(tmp_path: Path) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    syslog_port = receiver.getsockname()[1]
    port = free_port()
    extra = (
        f"ws_log syslog:server=127.0.0.1:{syslog_port},tag=ngxws_test,facility=local3,severity=notice;\n"
        "ws_log_format open 'opened $request_id';\n"
        "ws_log_format close 'closed $request_id';\n"
        "ws_log_format '$ws_opcode_name from $ws_packet_source';\n"
    )
    try:
        with ws_backend() as backend, ngxws(_conf(port, backend, extra), tmp_path, port):

            async def talk() -> None:
                async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                    await ws.send("x")
                    await ws.recv()

            run(talk())
            got: list[bytes] = []
            for _ in range(20):  # bounded: open, 4 frames (2 data, 2 close), close
                got.append(receiver.recv(65536))
                if got[-1].split(b": ", 1)[1].startswith(b"closed"):
                    break
    finally:
        receiver.close()
    pri = 19 * 8 + 5  # local3.notice
    pattern = re.compile(
        rb"<%d>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \S+ ngxws_test: (.*)" % pri
    )
    messages = []
    for datagram in got:
        m = pattern.fullmatch(datagram)
        assert m is not None, datagram
        messages.append(m.group(1).decode())
    assert messages[0].startswith("opened ") and messages[-1] == "closed " + messages[0][7:]
    assert "text from client" in messages and "text from upstream" in messages


def _check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ngxws", "check", "-c", str(conf)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_check_marks_ngxws_only(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        _conf(
            8080,
            8081,
            "ws_log syslog:server=127.0.0.1:5514;\n"
            "ws_log_format escape=json close '$ws_close_code $ws_conn_duration $time_local';\n",
        )
    )
    done = _check(conf)
    assert done.returncode == 0, done.stderr
    marked = [line for line in done.stdout.splitlines() if "ngxws-only" in line]
    assert any('ws_log "syslog:server=127.0.0.1:5514"' in line for line in marked), done.stdout
    assert any("escape=json" in line for line in marked)
    assert any("$ws_close_code" in line for line in marked)
    assert any("$ws_conn_duration" in line for line in marked)
    assert not any("$time_local" in line for line in marked)
    assert all(f"{conf.name}:" in line for line in marked)


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        ("ws_log_format escape=yaml open 'x';", 'unknown log format escaping "yaml"'),
        ("ws_log_format open 'x' 'y';", 'invalid number of arguments in "ws_log_format" directive'),
        ("ws_log syslog:facility=local7;", "no syslog server specified"),
        ("ws_log syslog:server=127.0.0.1,facility=nope;", 'unknown syslog facility "nope"'),
        ("ws_log syslog:server=127.0.0.1,tag=a-b;", 'syslog "tag" only allows alphanumeric characters and underscore'),
    ],
)
def test_bad_ngxws_log_parameters(tmp_path: Path, directive: str, error: str) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(_conf(8080, 8081, directive))
    done = _check(conf)
    assert done.returncode == 1
    assert error in done.stderr and f"{conf}:6" in done.stderr, done.stderr
