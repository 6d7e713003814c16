"""W8's latency probes, in their own process: ``python -m bench.probe --port N``.

While the load generator floods the proxy, this process asks it, one at a
time, for the status page (``GET /stat``) and for a new websocket (upgrade,
one 100 B text frame, wait for its echo), alternately, and prints one JSON
object with every latency in seconds (``null`` for a probe not answered
within ``--timeout``).

It is a separate process so that its timings are not the load generator's
event loop turns: the flood clients' loop can be busy, this one is idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import uvloop

from bench.wire import Opcode, client_frame, server_frame, upgrade_request

HOST = "127.0.0.1"
_PAYLOAD = b"\x42" * 100
_FRAME = client_frame(Opcode.TEXT, _PAYLOAD)
_ECHO = server_frame(Opcode.TEXT, _PAYLOAD)


async def stat_get(port: int, path: str) -> None:
    """One ``GET path`` with ``Connection: close``; the whole answer read."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        answer = await reader.read(-1)
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stat page: {answer[:60]!r}")
    finally:
        writer.transport.abort()


async def upgrade_echo(port: int) -> None:
    """Upgrade, send one frame, read its echo, drop the connection."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(upgrade_request("/echo", f"{HOST}:{port}"))
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade: {head[:60]!r}")
        writer.write(_FRAME)
        if await reader.readexactly(len(_ECHO)) != _ECHO:
            raise RuntimeError("echo differs")
    finally:
        writer.transport.abort()


async def _timed(probe: asyncio.Future[None] | asyncio.Task[None], timeout: float) -> float | None:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(probe, timeout)
    except (asyncio.TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError):
        return None
    return time.perf_counter() - start


async def run(
    port: int, count: int, stat_path: str, timeout: float, gap: float, budget: float
) -> dict[str, list[float | None]]:
    """``count`` stat GETs and ``count`` upgrade+echo, alternately, one at a
    time; after ``budget`` seconds the probes not yet made count as unanswered."""
    stat: list[float | None] = []
    upgrade: list[float | None] = []
    end = time.perf_counter() + budget
    for _ in range(count):
        if time.perf_counter() > end:
            stat.append(None)
            upgrade.append(None)
            continue
        stat.append(await _timed(asyncio.ensure_future(stat_get(port, stat_path)), timeout))
        await asyncio.sleep(gap)
        upgrade.append(await _timed(asyncio.ensure_future(upgrade_echo(port)), timeout))
        await asyncio.sleep(gap)
    return {"stat": stat, "upgrade": upgrade}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--stat-path", default="/stat")
    parser.add_argument("--timeout", type=float, default=30.0, help="per probe, s")
    parser.add_argument("--gap", type=float, default=0.01, help="pause between probes, s")
    parser.add_argument("--budget", type=float, default=70.0, help="for all probes, s")
    args = parser.parse_args(argv)
    result = uvloop.run(
        run(args.port, args.count, args.stat_path, args.timeout, args.gap, args.budget)
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
