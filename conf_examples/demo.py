"""`make run`: start an echo backend and ngxws on conf_examples/demo.conf.

Prints the ws:// address to try and the stats page URL, then runs until
Ctrl-C (which stops ngxws cleanly: logs flushed, tunnels closed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = ("127.0.0.1", 9001)
PROXY = "127.0.0.1:8080"


async def echo(ws) -> None:  # type: ignore[no-untyped-def]
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:  # a close with an application code (4000...) is no error here
        pass


async def main() -> int:
    prefix = tempfile.mkdtemp(prefix="ngxws-demo-")
    async with serve(echo, *BACKEND):
        proxy = subprocess.Popen(
            [sys.executable, "-m", "ngxws", "run", "-c", os.path.join(HERE, "demo.conf"), "-p", prefix]
        )
        await asyncio.sleep(0.5)
        if proxy.poll() is not None:
            return proxy.returncode or 1
        print(
            f"\nngxws is proxying websockets on ws://{PROXY}/ to an echo backend on "
            f"{BACKEND[0]}:{BACKEND[1]}.\n"
            f"  try:       python -m websockets ws://{PROXY}/echo\n"
            f"  stats:     curl http://{PROXY}/websocket_status\n"
            f"  prometheus: curl 'http://{PROXY}/websocket_status?format=prometheus'\n"
            "Per-frame log lines appear below. Ctrl-C stops.\n",
            flush=True,
        )
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        waiter = loop.run_in_executor(None, proxy.wait)
        await asyncio.wait([stop, waiter], return_when=asyncio.FIRST_COMPLETED)
        if proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            await waiter
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
