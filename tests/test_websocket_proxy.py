"""ngxws as a websocket proxy with the module's directives, end to end.

Real ngxws process, real conf files, real ``websockets`` clients and
backends, raw sockets where bytes must be checked exactly.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
from harness import (
    ROOT,
    Ngxws,
    free_port,
    mask_frame,
    ngxws,
    parse_stats,
    raw_backend,
    read_head,
    read_until_closed,
    run,
    upgrade_request,
    wait_for,
    ws_backend,
    ws_conf,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def conf(port: int, backend: int, server_extra: str = "", locations: str | None = None) -> str:
    return ws_conf(port, backend, server_extra, locations)


# --- basic round trip, stats page ---------------------------------------------


def test_echo_round_trip_and_stats_page(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(conf(port, backend), tmp_path, port) as px:
        assert px.stats() == (
            "WebSocket connections: 0\n"
            "client websocket frames  | client websocket payload | client tcp data\n"
            "0 0 0\n"
            "upstream websocket frames  | upstream websocket payload | upstream tcp data\n"
            "0 0 0\n"
        )

        async def session() -> None:
            async with connect(px.ws_url("/chat"), compression=None) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                assert parse_stats(px.stats())["active"] == 1
                await ws.send(b"\x00" * 300)
                assert await ws.recv() == b"\x00" * 300

        run(session())
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        s = parse_stats(px.stats())
        # 2 data frames + close frame from each side; masked client frames
        assert s["client_frames"] == 3 and s["upstream_frames"] == 3
        assert s["client_payload"] == 5 + 300 + 2 and s["upstream_payload"] == 5 + 300 + 2
        # client: (2+4+5) + (4+4+300) + (2+4+2); upstream unmasked: (2+5) + (4+300) + (2+2)
        assert s["client_bytes"] == 11 + 308 + 8
        assert s["upstream_bytes"] == 7 + 304 + 4
        status, headers, _ = px.get("/websocket_status")
        assert headers["Content-Type"] == "text/plain"


def test_prometheus_format_on_the_stat_location(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(conf(port, backend), tmp_path, port) as px:

        async def session() -> None:
            async with connect(px.ws_url(), compression=None) as ws:
                await ws.send("abc")
                await ws.recv()

        run(session())
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        status, _, body = px.get("/websocket_status?format=prometheus")
        text = body.decode()
        assert status == 200
        assert re.search(r"^nginx_websocket_connections_active 0$", text, re.M)
        assert re.search(r'^nginx_websocket_frames_total\{direction="in"\} 2$', text, re.M)
        assert re.search(r'^nginx_websocket_payload_bytes_total\{direction="out"\} 5$', text, re.M)


# --- the module's load scenario ------------------------------------------------

def test_load_100_clients_50_frames(tmp_path: Path) -> None:
    """Issue 2's "done when": the module README's example config
    (conf_examples/module_readme.conf, ports rewritten), 100 clients x 50 frames."""
    port = free_port()
    log = tmp_path / "websocket.log"  # `ws_log websocket.log;` under the prefix
    example = (ROOT / "conf_examples" / "module_readme.conf").read_text()
    clients, frames = 100, 50
    sizes = [(i * 37) % 500 + 1 for i in range(frames)]

    async def one(px: Ngxws, n: int) -> None:
        async with connect(px.ws_url(f"/load/{n}"), compression=None, max_size=None) as ws:
            for size in sizes:
                await ws.send(b"x" * size)
                assert len(await ws.recv()) == size

    with ws_backend() as backend:
        text = example.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace(
            "127.0.0.1:9000", f"127.0.0.1:{backend}"
        )
        assert text != example
        px = Ngxws(_write(tmp_path, text), tmp_path, port)

        async def all_clients() -> None:
            await asyncio.gather(*(one(px, n) for n in range(clients)))

        try:
            run(all_clients())
            assert wait_for(lambda: parse_stats(px.stats())["active"] == 0, timeout=10)
            s = parse_stats(px.stats())
        finally:
            code, _, err = px.stop()
        assert code == 0, err

    payload = sum(sizes) * clients
    close_payload = 2 * clients  # close frame with code, no reason, each way
    assert s["client_frames"] == clients * (frames + 1)
    assert s["upstream_frames"] == clients * (frames + 1)
    assert s["client_payload"] == payload + close_payload
    assert s["upstream_payload"] == payload + close_payload
    lines = log.read_text().splitlines()
    frame_lines = [ln for ln in lines if "packet of type" in ln]
    assert len(frame_lines) == s["client_frames"] + s["upstream_frames"]
    from_client = [ln for ln in frame_lines if " from client, " in ln]
    assert len(from_client) == s["client_frames"]
    logged_payload = sum(int(ln.rsplit(" ", 1)[1]) for ln in frame_lines)
    assert logged_payload == s["client_payload"] + s["upstream_payload"]
    assert sum(ln.endswith("Connection opened") for ln in lines) == clients
    assert sum(ln.endswith("Connection closed") for ln in lines) == clients
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT: packet of type 2 received from client, packet size is \d+$", frame_lines[0])


# --- byte transparency ----------------------------------------------------------


def test_relay_is_byte_for_byte(tmp_path: Path) -> None:
    """The upstream receives exactly the client's bytes: masks, fragments,
    control frames, RSV bits, reserved opcodes and unmasked frames included."""
    port = free_port()
    stream = (
        mask_frame(0x1, b"frag-one-", fin=False)
        + mask_frame(0x9, b"ping in the middle")
        + mask_frame(0x0, b"frag-two", fin=True)
        + mask_frame(0x2, bytes(range(256)) * 300)  # 16-bit length
        + mask_frame(0x2, b"z" * 70000, mask=b"\xff\x00\xaa\x55")  # 64-bit length
        + bytes([0xC1, 0x03]) + b"abc"  # RSV1 (deflate), unmasked
        + mask_frame(0x3, b"reserved opcode")
        + mask_frame(0x8, struct.pack("!H", 1000))
    )
    with raw_backend() as (backend, received, done), ngxws(conf(port, backend), tmp_path, port) as px:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(upgrade_request())
            head, rest = read_head(c)
            assert head.startswith(b"HTTP/1.1 101"), head
            # write in awkward pieces so headers are split across reads
            for i in range(0, len(stream), 7777):
                c.sendall(stream[i : i + 7777])
                time.sleep(0.001)
            assert wait_for(lambda: sum(map(len, received)) >= len(stream), timeout=10)
        assert b"".join(received)[: len(stream)] == stream
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        s = parse_stats(px.stats())
        assert s["client_frames"] == 8
        assert s["client_bytes"] == len(stream)
        assert s["client_payload"] == 9 + 18 + 8 + 256 * 300 + 70000 + 3 + 15 + 2


def test_handshake_head_and_101_passthrough(tmp_path: Path) -> None:
    port = free_port()
    with raw_backend() as (backend, received, done), ngxws(conf(port, backend), tmp_path, port):
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(upgrade_request())
            head, _ = read_head(c)
            lines = head.decode().split("\r\n")
            assert lines[0] == "HTTP/1.1 101 Switching Protocols"
            fields = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            assert fields["upgrade"] == "websocket"
            assert fields["connection"] == "upgrade"
            assert fields["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# --- limits --------------------------------------------------------------------


def test_max_connections_closes_1013_without_contacting_upstream(tmp_path: Path) -> None:
    port = free_port()
    contacted: list[int] = []

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        contacted.append(1)
        async for m in ws:
            await ws.send(m)

    with ws_backend(handler) as backend, ngxws(conf(port, backend, "ws_max_connections 2;"), tmp_path, port) as px:

        async def scenario() -> None:
            a = await connect(px.ws_url(), compression=None)
            b = await connect(px.ws_url(), compression=None)
            c = await connect(px.ws_url(), compression=None)  # handshake succeeds...
            with pytest.raises(ConnectionClosed):
                await c.recv()
            assert c.close_code == 1013
            assert c.close_reason == "Try Again Later"
            # the backend's handler runs after its 101 went out: wait for b's
            assert wait_for(lambda: len(contacted) >= 2)
            await asyncio.sleep(0.2)
            assert len(contacted) == 2
            # plain HTTP is never limited
            assert px.get("/websocket_status")[0] == 200
            await a.close()
            assert wait_for(lambda: parse_stats(px.stats())["active"] == 1)
            d = await connect(px.ws_url(), compression=None)  # room again
            await d.send("x")
            assert await d.recv() == "x"
            await b.close()
            await d.close()

        run(scenario())
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        s = parse_stats(px.stats())
        # the 1013 close frame ngxws wrote is not counted
        assert s["upstream_frames"] == 1 + 3


def test_limited_upgrade_with_bad_key_gets_400(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(conf(port, backend, "ws_max_connections 1;"), tmp_path, port) as px:

        async def scenario() -> None:
            a = await connect(px.ws_url(), compression=None)
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(upgrade_request(key="short"))
                head, _ = read_head(c)
                assert head.startswith(b"HTTP/1.1 400"), head
            await a.close()

        run(scenario())


def test_conn_age_closes_idle_tunnel_4001(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(conf(port, backend, "ws_conn_age 1s;"), tmp_path, port) as px:

        async def scenario() -> float:
            async with connect(px.ws_url(), compression=None) as ws:
                t0 = time.monotonic()
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)  # idle: nothing sent
                assert ws.close_code == 4001
                assert ws.close_reason == "Connection is Aged"
                return time.monotonic() - t0

        elapsed = run(scenario())
        assert 0.8 <= elapsed < 3.0
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)


# --- bad input -------------------------------------------------------------------


def test_unfollowable_length_closes_only_that_connection(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(conf(port, backend), tmp_path, port) as px:

        async def scenario() -> None:
            async with connect(px.ws_url(), compression=None) as good:
                await good.send("before")
                assert await good.recv() == "before"
                with socket.create_connection(("127.0.0.1", port)) as bad:
                    bad.sendall(upgrade_request())
                    head, _ = read_head(bad)
                    assert head.startswith(b"HTTP/1.1 101")
                    bad.sendall(mask_frame(0x1, b"ok") + bytes([0x82, 0xFF]) + b"\x80" + b"\x00" * 7 + b"mask")
                    read_until_closed(bad)  # closed by ngxws
                await good.send("after")
                assert await good.recv() == "after"

        run(scenario())
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        s = parse_stats(px.stats())
        assert s["client_frames"] == 2 + 1 + 1  # good: 2 texts + close; bad: 1 before the junk


def test_garbage_request_gets_400_and_server_keeps_serving(tmp_path: Path) -> None:
    port = free_port()
    with ws_backend() as backend, ngxws(conf(port, backend), tmp_path, port) as px:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            reply = read_until_closed(c)
            assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
        assert px.get("/websocket_status")[0] == 200


def test_no_location_404_and_dead_upstream_502(tmp_path: Path) -> None:
    port = free_port()
    dead = free_port()
    locations = f"""
        location /ws/ {{
            proxy_pass http://127.0.0.1:{dead};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    """
    with ngxws(conf(port, dead, locations=locations), tmp_path, port) as px:
        assert px.get("/nothing-here")[0] == 404
        assert px.get("/ws/x")[0] == 502

        async def ws_502() -> None:
            with pytest.raises(InvalidStatus) as exc:
                await connect(px.ws_url("/ws/x"), compression=None)
            assert exc.value.response.status_code == 502

        run(ws_502())
        assert parse_stats(px.stats())["active"] == 0


def test_non_101_answer_is_passed_back(tmp_path: Path) -> None:
    port = free_port()

    async def reject(connection, request):  # type: ignore[no-untyped-def]
        return connection.respond(403, "go away\n")

    with ws_backend(process_request=reject) as backend, ngxws(conf(port, backend), tmp_path, port) as px:

        async def scenario() -> None:
            with pytest.raises(InvalidStatus) as exc:
                await connect(px.ws_url(), compression=None)
            assert exc.value.response.status_code == 403
            assert exc.value.response.body == b"go away\n"

        run(scenario())
        assert parse_stats(px.stats())["active"] == 0


# --- logging ---------------------------------------------------------------------


def test_chainstack_golden_output(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "chain.log"
    extra = f"""
        ws_log {log};
        ws_log_format open "OPEN";
        ws_log_format client "CLIENT->SERVER: $ws_message_size ($http_upgrade)";
        ws_log_format server "SERVER->CLIENT: $ws_message_size ($http_upgrade)";
        ws_log_format close "CLOSE";
        ws_log_enabled on;
    """
    with ws_backend() as backend, ngxws(conf(port, backend, extra), tmp_path, port) as px:

        async def scenario() -> None:
            async with connect(px.ws_url(), compression=None) as ws:
                await ws.send("m" * 1311)
                assert len(await ws.recv()) == 1311

        run(scenario())
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        px.stop()
    assert log.read_text() == "OPEN\nCLIENT->SERVER: 1311 (websocket)\nSERVER->CLIENT: 1311 (websocket)\nCLOSE\n"


def test_log_variables(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "vars.log"
    extra = f"""
        ws_log {log};
        ws_log_format "$ws_opcode|$ws_payload_size|$ws_packet_source|$request|$uri|$remote_addr|$server_port|$upstream_addr|$http_x_test_header|$remote_user|$nope|${{ws_opcode}}x";
        ws_log_format open "open $request_id $server_addr";
        ws_log_format close "close $ws_conn_age";
    """
    with ws_backend() as backend, ngxws(conf(port, backend, extra), tmp_path, port) as px:

        async def scenario() -> None:
            async with connect(
                px.ws_url("/a/b?q=1"), compression=None, additional_headers={"X-Test-Header": "hdr"}
            ) as ws:
                await ws.send("12345")
                await ws.recv()

        run(scenario())
        assert wait_for(lambda: parse_stats(px.stats())["active"] == 0)
        px.stop()
    lines = log.read_text().splitlines()
    assert re.fullmatch(r"open [0-9a-f]{32} 127\.0\.0\.1", lines[0])
    assert lines[1] == f"1|5|client|GET /a/b?q=1 HTTP/1.1|/a/b|127.0.0.1|{port}|127.0.0.1:{backend}|hdr||$nope|1x"
    assert lines[2] == f"1|5|upstream|GET /a/b?q=1 HTTP/1.1|/a/b|127.0.0.1|{port}|127.0.0.1:{backend}|hdr||$nope|1x"
    assert lines[-1] == "close 0"


def test_sigterm_flushes_every_log_line_and_closes_tunnels(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "flush.log"
    extra = f'ws_log {log}; ws_log_format "$ws_packet_source $ws_payload_size";'
    with ws_backend() as backend:
        px = Ngxws(_write(tmp_path, conf(port, backend, extra)), tmp_path, port)

        async def scenario() -> None:
            async with connect(px.ws_url(), compression=None) as ws:
                for i in range(200):
                    await ws.send("y" * i)
                    await ws.recv()
                code, _, err = px.stop(signal.SIGTERM)
                assert code == 0, err
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)

        run(scenario())
    lines = log.read_text().splitlines()
    assert len([ln for ln in lines if ln.startswith("client ")]) == 200
    assert len([ln for ln in lines if ln.startswith("upstream ")]) == 200


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


def test_config_error_names_file_line_and_nothing_starts(tmp_path: Path) -> None:
    import subprocess
    import sys

    port = free_port()
    path = _write(tmp_path, conf(port, 9, "ws_lgo x;"))
    proc = subprocess.run(
        [sys.executable, "-m", "ngxws", "run", "-c", str(path), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
    assert proc.returncode == 1
    line = path.read_text().splitlines().index("        ws_lgo x;") + 1
    assert f'unknown directive "ws_lgo" in {path}:{line}' in proc.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
