"""W9/W10: static files from ``location /static/`` (alias to :data:`STATIC_ROOT`).

W9: ``conns`` keep-alive clients GET a 1 KiB file, one request at a time
each, as fast as answers come; the value is answers per second.  W10:
``conns`` clients GET a 1 GiB file over and over, reading and dropping the
body; the value is body MB per second.  Both sides serve the same files
(written once, the big one sparse), so both read the same bytes from the
page cache.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from pathlib import Path

STATIC_ROOT = Path(tempfile.gettempdir()) / "ngxws-bench-static"
SMALL = "small.html"
BIG = "big.bin"
SMALL_SIZE = 1024
BIG_SIZE = 1 << 30


def ensure_files() -> None:
    """The docroot, once: a 1 KiB page and a sparse 1 GiB file."""
    STATIC_ROOT.mkdir(exist_ok=True)
    small = STATIC_ROOT / SMALL
    if not small.exists() or small.stat().st_size != SMALL_SIZE:
        small.write_bytes(b"<p>" + b"x" * (SMALL_SIZE - 8) + b"</p>\n")
    big = STATIC_ROOT / BIG
    if not big.exists() or big.stat().st_size != BIG_SIZE:
        with open(big, "wb") as f:
            f.truncate(BIG_SIZE)


class Counter:
    def __init__(self) -> None:
        self.answers = 0
        self.body_bytes = 0
        self.errors = 0
        self.last_error = ""


def _request(path: str, host: str) -> bytes:
    return f"GET /static/{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def _client(host: str, port: int, path: str, counter: Counter, stop: asyncio.Event) -> None:
    """A keep-alive connection, opened again when the server ends it
    (nginx's keepalive_requests 100), bounded by the measure's stop."""
    for _ in range(1_000_000):
        if stop.is_set() or not await _connection(host, port, path, counter, stop):
            return


async def _connection(host: str, port: int, path: str, counter: Counter, stop: asyncio.Event) -> bool:
    """Request, read the head and Content-Length bytes, repeat; True when
    the server closed between two answers (open another)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    try:
        await loop.sock_connect(sock, (host, port))
        request = _request(path, f"{host}:{port}")
        pending = b""
        while not stop.is_set():
            await loop.sock_sendall(sock, request)
            while b"\r\n\r\n" not in pending:
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    if not pending:
                        return True  # keepalive_requests reached: a new connection
                    raise ConnectionError("closed before the head")
                pending += chunk
            head, _, rest = pending.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            got = min(len(rest), length)
            pending = rest[length:] if len(rest) > length else b""
            counter.body_bytes += got
            while got < length:
                n = await loop.sock_recv_into(sock, view[: min(len(buf), length - got)])
                if n == 0:
                    raise ConnectionError("closed mid-body")
                got += n
                counter.body_bytes += n
                if stop.is_set():
                    return False
            counter.answers += 1
    except (OSError, ValueError) as exc:
        counter.errors += 1
        counter.last_error = str(exc)
    finally:
        sock.close()
    return False


async def run_clients(
    host: str, port: int, path: str, conns: int, warmup: float, duration: float
) -> tuple[Counter, float, int, int]:
    """Run ``conns`` clients; return the counter, the window's length and the
    answers and body bytes counted in it."""
    counter = Counter()
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(_client(host, port, path, counter, stop)) for _ in range(conns)]
    try:
        await asyncio.sleep(warmup)
        start, a0, b0 = time.perf_counter(), counter.answers, counter.body_bytes
        await asyncio.sleep(duration)
        seconds = time.perf_counter() - start
        return counter, seconds, counter.answers - a0, counter.body_bytes - b0
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["STATIC_ROOT", "SMALL", "BIG", "ensure_files", "run_clients"]
