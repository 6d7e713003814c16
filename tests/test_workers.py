"""Master + workers, end to end: ``worker_processes 2`` on real processes and sockets.

Which worker holds a connection is read from ``/proc``: the server side of
each established connection is found in ``/proc/net/tcp`` by the client's
port, and its socket inode in the workers' ``/proc/PID/fd``.  Nothing in
ngxws is instrumented for the tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from harness import (
    ROOT,
    free_port,
    live_children,
    owners,
    parse_stats,
    run,
    start_workers,
    upgrade_request,
    wait_for,
    ws_backend,
    ws_conf,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


def conf(
    port: int,
    backend: int,
    server_extra: str = "",
    workers: int = 2,
    worker_connections: int = 1024,
    main_extra: str = "",
) -> str:
    main = f"worker_processes {workers};\npid ngxws.pid;\nerror_log error.log notice;\n{main_extra}"
    return ws_conf(port, backend, server_extra, main_extra=main, worker_connections=worker_connections)


def source_log(log: Path) -> str:
    """ws_log lines that tell each frame's direction, plus open/close lines."""
    return f'ws_log {log}; ws_log_format "$ws_packet_source"; ws_log_format open "open"; ws_log_format close "close";'


# --- /proc: which process holds what -----------------------------------------


def owner_of(ws: ClientConnection, port: int, pids: set[int]) -> int | None:
    return owners(port, pids).get(ws.local_address[1])


def stats_from_each_worker(port: int, pids: set[int], tries: int = 60) -> dict[int, dict[str, int]]:
    """The stats page as served by each worker in ``pids`` (new connections until each answered)."""
    pages: dict[int, dict[str, int]] = {}
    for _ in range(tries):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            assert wait_for(lambda: s.getsockname()[1] in owners(port, pids), 2)
            pid = owners(port, pids)[s.getsockname()[1]]
            s.sendall(b"GET /websocket_status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        pages[pid] = parse_stats(data.split(b"\r\n\r\n", 1)[1].decode())
        if set(pages) == pids:
            break
    return pages


def error_log(tmp_path: Path) -> str:
    path = tmp_path / "error.log"
    return path.read_text() if path.exists() else ""


def ngxws_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ngxws",
            *args,
            "-c",
            str(tmp_path / "nginx.conf"),
            "-p",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=40,
    )


async def open_ws(port: int, n: int, path: str = "/") -> list[ClientConnection]:
    return list(
        await asyncio.gather(
            *[
                connect(
                    f"ws://127.0.0.1:{port}{path}",
                    compression=None,
                    ping_interval=None,
                    open_timeout=10,
                )
                for _ in range(n)
            ]
        )
    )


def frame_bytes(n: int, masked: bool) -> int:
    head = 2 if n < 126 else 4 if n < 65536 else 10
    return head + (4 if masked else 0) + n


# --- tests ------------------------------------------------------------------------


def test_traffic_spreads_over_both_workers_and_page_totals_are_the_sum(tmp_path: Path) -> None:
    sizes = (10, 125, 126, 300)
    clients = 40
    with ws_backend() as backend:
        port = free_port()
        server, _ = start_workers(tmp_path, conf(port, backend))
        try:
            pids = live_children(server.proc.pid)

            async def scenario() -> Counter[int]:
                conns = await open_ws(port, clients)
                for ws in conns:
                    for n in sizes:
                        await ws.send(os.urandom(n))
                        assert len(await ws.recv()) == n
                assert wait_for(lambda: len(owners(port, pids)) >= clients)
                held = Counter(owners(port, pids).get(ws.local_address[1]) for ws in conns)
                pages = stats_from_each_worker(port, pids)
                assert set(pages) == pids
                assert all(p["active"] == clients for p in pages.values()), pages
                for ws in conns:
                    await ws.close()
                return held

            held = run(scenario())
            print(f"tunnels per worker: {dict(held)}")
            assert set(held) == pids, held
            assert min(held.values()) >= 5, held  # reuseport hashing: ~20/20

            per_client_payload = sum(sizes) + 2  # + the close frame's status code
            expected = {
                "active": 0,
                "client_frames": clients * (len(sizes) + 1),
                "client_payload": clients * per_client_payload,
                "client_bytes": clients
                * (sum(frame_bytes(n, True) for n in sizes) + frame_bytes(2, True)),
                "upstream_frames": clients * (len(sizes) + 1),
                "upstream_payload": clients * per_client_payload,
                "upstream_bytes": clients
                * (sum(frame_bytes(n, False) for n in sizes) + frame_bytes(2, False)),
            }
            assert wait_for(lambda: parse_stats(server.stats())["active"] == 0)
            pages = stats_from_each_worker(port, pids)
            assert set(pages) == pids
            for page in pages.values():
                assert page == expected
        finally:
            code, _, err = server.stop(signal.SIGQUIT)
        assert code == 0, err


def test_connection_cap_holds_across_workers_under_a_burst(tmp_path: Path) -> None:
    limit, burst = 10, 30
    with ws_backend() as backend:
        port = free_port()
        server, _ = start_workers(tmp_path, conf(port, backend, f"ws_max_connections {limit};"))
        try:
            pids = live_children(server.proc.pid)

            async def one_burst() -> Counter[tuple[int | None, str]]:
                # Connect all first and note each one's worker, then send all upgrades at once.
                conns = await asyncio.gather(
                    *[asyncio.open_connection("127.0.0.1", port) for _ in range(burst)]
                )
                local = [w.get_extra_info("sockname")[1] for _r, w in conns]
                assert wait_for(lambda: set(local) <= set(owners(port, pids)))
                held = owners(port, pids)
                for _r, w in conns:
                    w.write(upgrade_request())

                async def outcome(r: asyncio.StreamReader) -> str:
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
                    assert head.startswith(b"HTTP/1.1 101 ")
                    try:
                        after = await asyncio.wait_for(r.read(4), 0.5)
                    except asyncio.TimeoutError:
                        return "open"  # the upstream's 101; nothing more until someone speaks
                    assert after[:1] == b"\x88", after  # ngxws's own close frame
                    return f"refused {int.from_bytes(after[2:4], 'big')}"

                results = await asyncio.gather(*[outcome(r) for r, _w in conns])
                assert parse_stats(server.stats())["active"] == results.count("open")
                for _r, w in conns:
                    w.close()
                await asyncio.gather(*[w.wait_closed() for _r, w in conns], return_exceptions=True)
                assert wait_for(lambda: parse_stats(server.stats())["active"] == 0)
                return Counter(zip((held.get(p) for p in local), results, strict=True))

            for _ in range(2):
                outcome = run(one_burst())
                print(f"(worker, outcome): {dict(outcome)}")
                assert sum(n for (_pid, r), n in outcome.items() if r == "open") == limit
                assert (
                    sum(n for (_pid, r), n in outcome.items() if r == "refused 1013")
                    == burst - limit
                )
                assert {pid for pid, _r in outcome} == pids  # the burst reached both workers
                # A worker refused while holding fewer than `limit` itself: it counted the other's tunnels.
                assert any(
                    outcome[(pid, "refused 1013")] and outcome[(pid, "open")] < limit
                    for pid in pids
                )
        finally:
            server.stop()


def test_reload_keeps_open_tunnel_while_new_connections_get_the_new_config(tmp_path: Path) -> None:
    async def tagged(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"B:{message}")

    log = tmp_path / "ws.log"
    with ws_backend() as old_backend, ws_backend(tagged) as new_backend:
        port = free_port()
        old_conf = conf(
            port,
            old_backend,
            f'ws_log {log}; ws_log_format open "A-open"; ws_log_format close "A-close";',
        )
        new_conf = conf(
            port,
            new_backend,
            f'ws_log {log}; ws_log_format open "B-open"; ws_log_format close "B-close";',
        )
        server, _ = start_workers(tmp_path, old_conf)
        try:
            old_pids = live_children(server.proc.pid)

            async def scenario() -> None:
                [kept] = await open_ws(port, 1)
                await kept.send("before")
                assert await kept.recv() == "before"
                holder = owner_of(kept, port, old_pids)
                assert holder in old_pids
                before = parse_stats(server.stats())

                (tmp_path / "nginx.conf").write_text(new_conf)
                os.kill(server.proc.pid, signal.SIGHUP)

                async def answer() -> str:
                    [ws] = await open_ws(port, 1)
                    await ws.send("x")
                    reply = str(await ws.recv())
                    await ws.close()
                    return reply

                # until every old worker has closed its listening socket (a
                # worker answers HUP's drain in its own time), a new connection
                # may still reach one: wait for 8 new-config answers in a row
                deadline = time.monotonic() + 10
                in_a_row = 0
                while in_a_row < 8:
                    in_a_row = in_a_row + 1 if await answer() == "B:x" else 0
                    assert time.monotonic() < deadline, "new config never took effect"

                # the old tunnel still runs, on the old worker, to the old backend
                await kept.send("after")
                assert await kept.recv() == "after"
                children = live_children(server.proc.pid)
                assert holder in children
                assert len(children - old_pids) == 2
                assert wait_for(
                    lambda: live_children(server.proc.pid) == children - (old_pids - {holder})
                )
                after = parse_stats(server.stats())
                assert after["active"] == 1
                assert (
                    after["client_frames"] >= before["client_frames"] + 10
                )  # continued, not reset
                await kept.close()

            run(scenario())
            # the last old worker leaves once its tunnel has ended
            assert wait_for(lambda: not (live_children(server.proc.pid) & old_pids), 5)
            assert len(live_children(server.proc.pid)) == 2
        finally:
            code, _, err = server.stop(signal.SIGQUIT)
        assert code == 0, err
    lines = log.read_text().splitlines()
    # A: the kept tunnel, plus any probe that reached an old worker before the switch
    assert lines.count("A-open") >= 1 and lines.count("A-open") == lines.count("A-close")
    assert lines.count("B-open") >= 8 and lines.count("B-open") == lines.count("B-close")
    assert "reconfigured" in error_log(tmp_path)


def test_bad_config_on_reload_keeps_the_old_one_and_logs_why(tmp_path: Path) -> None:
    with ws_backend() as backend:
        port = free_port()
        good = conf(port, backend)
        server, _ = start_workers(tmp_path, good)
        try:
            pids = live_children(server.proc.pid)
            (tmp_path / "nginx.conf").write_text(
                good.replace(
                    "location /websocket_status", "ws_lgo on;\n location /websocket_status"
                )
            )
            result = ngxws_cli(tmp_path, "-s", "reload")
            assert result.returncode == 1  # `-s` reads the config first, like nginx -s
            os.kill(server.proc.pid, signal.SIGHUP)
            assert wait_for(lambda: "[emerg]" in error_log(tmp_path))
            line = next(ln for ln in error_log(tmp_path).splitlines() if "[emerg]" in ln)
            assert 'unknown directive "ws_lgo"' in line and "nginx.conf:" in line
            assert "keeping the running configuration" in line
            time.sleep(0.3)
            assert live_children(server.proc.pid) == pids  # nothing restarted
            assert parse_stats(server.stats())["active"] == 0

            async def echo() -> None:
                [ws] = await open_ws(port, 1)
                await ws.send("still")
                assert await ws.recv() == "still"
                await ws.close()

            run(echo())
            (tmp_path / "nginx.conf").write_text(good)
            result = ngxws_cli(tmp_path, "-s", "stop")  # waits until the master is gone
            assert result.returncode == 0, result.stderr
            assert server.proc.wait(5) == 0
            assert not (tmp_path / "ngxws.pid").exists()
        finally:
            server.stop()


def test_usr1_after_rename_writes_to_the_new_file_and_loses_no_line(tmp_path: Path) -> None:
    log = tmp_path / "ws.log"
    rotated = tmp_path / "ws.log.1"
    messages, clients = 150, 4
    with ws_backend() as backend:
        port = free_port()
        server, _ = start_workers(tmp_path, conf(port, backend, source_log(log)))
        try:

            async def talk(ws: ClientConnection, rotate_at: int | None) -> None:
                for i in range(messages):
                    if i == rotate_at:
                        os.rename(log, rotated)
                        (tmp_path / "error.log").rename(tmp_path / "error.log.1")
                        os.kill(server.proc.pid, signal.SIGUSR1)
                    await ws.send(b"m")
                    await ws.recv()
                    await asyncio.sleep(0.002)
                await ws.close()

            async def scenario() -> None:
                conns = await open_ws(port, clients)
                await asyncio.gather(
                    *[talk(ws, messages // 2 if i == 0 else None) for i, ws in enumerate(conns)]
                )

            run(scenario())
            assert wait_for(lambda: parse_stats(server.stats())["active"] == 0)
        finally:
            code, _, err = server.stop(signal.SIGQUIT)
        assert code == 0, err
    old_lines = rotated.read_text().splitlines()
    new_lines = log.read_text().splitlines()
    print(f"lines before/after reopen: {len(old_lines)}/{len(new_lines)}")
    lines = Counter(old_lines + new_lines)
    assert lines == Counter(
        {
            "client": clients * (messages + 1),
            "upstream": clients * (messages + 1),
            "open": clients,
            "close": clients,
        }
    )
    assert (
        new_lines.count("client") > clients * messages // 10
    )  # the second half went to the new file
    assert "close" in new_lines
    # the error log was reopened too: the stop is in the new file
    assert "signal 3 (SIGQUIT) received" in error_log(tmp_path)
    assert "signal 10 (SIGUSR1) received" in (tmp_path / "error.log.1").read_text()


def test_quit_sends_1001_to_open_clients_and_loses_no_log_line(tmp_path: Path) -> None:
    log = tmp_path / "ws.log"
    clients, messages = 8, 20
    with ws_backend() as backend:
        port = free_port()
        server, _ = start_workers(tmp_path, conf(port, backend, source_log(log)))
        pids = live_children(server.proc.pid)

        async def scenario() -> list[tuple[int | None, str | None]]:
            conns = await open_ws(port, clients)
            # both workers must say goodbye: the kernel may hand a burst of
            # connections to one of them, so more are opened (bounded) until
            # each holds one
            for _ in range(40):
                if {owner_of(ws, port, pids) for ws in conns} == pids:
                    break
                conns += await open_ws(port, 1)
            assert {owner_of(ws, port, pids) for ws in conns} == pids
            for ws in conns:
                for _ in range(messages):
                    await ws.send(b"hello")
                    await ws.recv()
            os.kill(server.proc.pid, signal.SIGQUIT)
            closes = []
            for ws in conns:
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except ConnectionClosed as exc:
                    closes.append((exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None))
            return closes

        closes = run(scenario())
        assert server.proc.wait(15) == 0
        server.stop()
    clients = len(closes)
    assert closes == [(1001, "Going Away")] * clients
    assert not (tmp_path / "ngxws.pid").exists()
    lines = Counter(log.read_text().splitlines())
    # our own 1001 is neither counted nor logged as a frame: the module never saw it
    assert lines == Counter(
        {
            "client": clients * messages,
            "upstream": clients * messages,
            "open": clients,
            "close": clients,
        }
    )
    assert all(f"{pid}#0: exit" in error_log(tmp_path) for pid in pids)


def test_killed_worker_is_replaced_and_the_page_corrected(tmp_path: Path) -> None:
    clients = 12
    with ws_backend() as backend:
        port = free_port()
        server, _ = start_workers(tmp_path, conf(port, backend))
        try:
            pids = live_children(server.proc.pid)

            async def scenario() -> None:
                conns = await open_ws(port, clients)
                for ws in conns:
                    await ws.send(b"0123456789")
                    await ws.recv()
                assert wait_for(lambda: len(owners(port, pids)) >= clients)
                held = {ws: owner_of(ws, port, pids) for ws in conns}
                victim = Counter(held.values()).most_common(1)[0][0]
                assert victim is not None
                lost = sum(1 for pid in held.values() if pid == victim)
                before = parse_stats(server.stats())
                assert before["active"] == clients

                os.kill(victim, signal.SIGKILL)
                assert wait_for(
                    lambda: (
                        len(live_children(server.proc.pid) - {victim}) == 2
                        and victim not in live_children(server.proc.pid)
                    )
                )
                replacement = (live_children(server.proc.pid) - pids).pop()
                assert wait_for(lambda: parse_stats(server.stats())["active"] == clients - lost)
                after = parse_stats(server.stats())
                for key in before:  # totals kept: the dead worker's traffic still counts
                    if key != "active":
                        assert after[key] >= before[key], key

                for ws, pid in held.items():
                    if pid == victim:
                        try:
                            await asyncio.wait_for(ws.recv(), 5)
                        except ConnectionClosed:
                            pass
                        else:  # pragma: no cover
                            raise AssertionError("a tunnel of the killed worker survived")
                    else:
                        await ws.send(b"alive")
                        assert await ws.recv() == b"alive"

                # the replacement serves new connections (it took over the victim's socket)
                served = False
                for _ in range(40):
                    [ws] = await open_ws(port, 1)
                    await ws.send(b"new")
                    assert await ws.recv() == b"new"
                    served = owner_of(ws, port, {replacement}) == replacement
                    await ws.close()
                    if served:
                        break
                assert served
                for ws, pid in held.items():
                    if pid != victim:
                        await ws.close()

            run(scenario())
            assert wait_for(lambda: parse_stats(server.stats())["active"] == 0)
            assert "exited on signal 9" in error_log(tmp_path)
        finally:
            code, _, err = server.stop()
        assert code == 0, err


def test_signal_commands_use_the_pid_file_and_systemd_hears_of_it(tmp_path: Path) -> None:
    log = tmp_path / "ws.log"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # what systemd listens on
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(10)

    def notified() -> str:
        return notify.recv(4096).decode()

    with ws_backend() as backend, notify:
        port = free_port()
        server, _ = start_workers(
            tmp_path,
            conf(port, backend, f'ws_log {log}; ws_log_format open "open";'),
            env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
        )
        try:
            assert notified().startswith("READY=1")  # once both workers accept
            assert (tmp_path / "ngxws.pid").read_text().strip() == str(server.proc.pid)
            pids = live_children(server.proc.pid)

            result = ngxws_cli(tmp_path, "-s", "reload")
            assert result.returncode == 0, result.stderr
            assert notified().startswith("RELOADING=1\nMONOTONIC_USEC=")
            assert notified().startswith("READY=1")
            assert wait_for(
                lambda: (
                    len(live_children(server.proc.pid)) == 2
                    and not (live_children(server.proc.pid) & pids)
                )
            )

            os.rename(log, tmp_path / "ws.log.1")
            result = ngxws_cli(tmp_path, "-s", "reopen")
            assert result.returncode == 0, result.stderr
            assert wait_for(lambda: log.exists())

            result = ngxws_cli(tmp_path, "-s", "quit")  # returns once the master is gone
            assert result.returncode == 0, result.stderr
            assert notified() == "STOPPING=1"
            assert server.proc.wait(5) == 0
            assert not (tmp_path / "ngxws.pid").exists()
            result = ngxws_cli(tmp_path, "-s", "quit")
            assert result.returncode == 1 and "ngxws.pid" in result.stderr
        finally:
            server.stop()


def test_worker_connections_caps_each_worker(tmp_path: Path) -> None:
    with ws_backend() as backend:
        port = free_port()
        server, _ = start_workers(tmp_path, conf(port, backend, workers=1, worker_connections=5))
        try:

            async def scenario() -> None:
                conns = await open_ws(port, 2)  # 2 tunnels = 4 connections (client + upstream each)
                idle = socket.create_connection(("127.0.0.1", port))  # the 5th
                assert wait_for(lambda: len(owners(port, live_children(server.proc.pid))) == 3)
                over = socket.create_connection(("127.0.0.1", port))
                over.settimeout(5)
                assert over.recv(1) == b""  # closed at once
                over.close()
                idle.close()
                for ws in conns:
                    await ws.close()

            run(scenario())
            assert wait_for(lambda: "5 worker_connections are not enough" in error_log(tmp_path))
            assert "[alert]" in error_log(tmp_path)
        finally:
            server.stop()


def test_a_log_file_that_cannot_be_opened_stops_the_start_like_nginx(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "nginx.conf").write_text(conf(port, free_port(), "ws_log /nonexistent/dir/ws.log;"))
    result = ngxws_cli(tmp_path, "run")
    assert result.returncode == 1
    assert "[emerg]" in error_log(tmp_path)
    assert 'open() "/nonexistent/dir/ws.log" failed (2: No such file or directory)' in error_log(
        tmp_path
    )
    assert not (tmp_path / "ngxws.pid").exists()
    assert "start worker process" not in error_log(tmp_path)
