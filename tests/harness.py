"""Real servers for the integration tests: ngxws itself, websocket backends, raw peers.

Everything listens on 127.0.0.1 on ports the kernel picked; every wait is
bounded.  ``Ngxws`` runs the real command (``python -m ngxws run``) on a real
conf file, exactly as a user would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ports import free_port
from websockets.asyncio.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parent.parent
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


WS_LOCATION = """
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
"""


def ws_conf(
    port: int,
    backend: int,
    server_extra: str = "",
    locations: str | None = None,
    main_extra: str = "",
    worker_connections: int = 1024,
) -> str:
    """A one-server conf: ws_stat on /websocket_status, a websocket proxy on /."""
    locs = locations if locations is not None else WS_LOCATION.format(backend=backend)
    return f"""
{main_extra}
events {{ worker_connections {worker_connections}; }}
http {{
    server {{
        listen 127.0.0.1:{port};
        {server_extra}
        location /websocket_status {{ ws_stat; }}
        {locs}
    }}
}}
"""


def run(coro: Awaitable[Any], timeout: float = 60) -> Any:
    """Run one test scenario, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def mask_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """A client frame built by hand (tests must not trust the code under test)."""
    import struct

    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def owners(port: int, pids: set[int]) -> dict[int, int]:
    """client port -> pid of the worker holding the server side of that connection."""
    inode_pid: dict[int, int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inode_pid[int(link[8:-1])] = pid
    out: dict[int, int] = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local_port = int(parts[1].split(":")[1], 16)
            remote_port = int(parts[2].split(":")[1], 16)
            inode = int(parts[9])
            if local_port == port and parts[3] == "01" and inode in inode_pid:
                out[remote_port] = inode_pid[inode]
    return out


class Ngxws:
    """``python -m ngxws run -c CONF -p PREFIX`` as a child process."""

    def __init__(
        self,
        conf: Path,
        prefix: Path,
        port: int,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.conf = conf
        self.prefix = prefix
        self.port = port
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ngxws", "run", "-c", str(conf), "-p", str(prefix), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(port)
        except TimeoutError:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
            raise RuntimeError(f"ngxws did not start: {err.decode()} {out.decode()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
        return self.proc.returncode, out.decode(), err.decode()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url(path))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def stats(self) -> str:
        status, _, body = self.get("/websocket_status")
        assert status == 200, status
        return body.decode()


def start_workers(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[Ngxws, int]:
    """``text`` as tmp_path/nginx.conf, ngxws running it until its
    ``worker_processes`` workers are up; the server and the port of its
    first ``listen 127.0.0.1:PORT``."""
    found = re.search(r"listen 127\.0\.0\.1:(\d+)", text)
    workers = re.search(r"worker_processes (\d+);", text)
    assert found is not None and workers is not None
    (tmp_path / "nginx.conf").write_text(text)
    server = Ngxws(tmp_path / "nginx.conf", tmp_path, int(found.group(1)), extra_env=env)
    assert wait_for(lambda: len(live_children(server.proc.pid)) == int(workers.group(1)))
    return server, int(found.group(1))


@contextmanager
def ngxws(
    conf_text: str, tmp_path: Path, port: int, name: str = "nginx.conf", extra_env: dict[str, str] | None = None
) -> Iterator[Ngxws]:
    """Write ``conf_text`` and run ngxws on it for the duration of the block."""
    conf = tmp_path / name
    conf.write_text(conf_text)
    server = Ngxws(conf, tmp_path, port, extra_env=extra_env)
    try:
        yield server
    finally:
        server.stop()


class LoopThread:
    """An asyncio loop in a thread, for backends the (sync) tests talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextmanager
def ws_backend(
    handler: Callable[[ServerConnection], Awaitable[None]] | None = None, **kwargs: Any
) -> Iterator[int]:
    """A real ``websockets`` server on a free port (echo unless told otherwise)."""

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    # no keepalive pings unless a test asks: on a loaded machine a test can
    # outlive the 20 s default, and a ping would show up in exact counters
    kwargs.setdefault("ping_interval", None)
    port = free_port()
    with served_in_thread(lambda: serve(handler or echo, "127.0.0.1", port, **kwargs)):
        yield port


@contextmanager
def served_in_thread(start: Callable[[], Awaitable[Any]]) -> Iterator[None]:
    """Run a ``websockets`` server (whatever ``start()`` awaits to) in its own
    loop thread for the duration of the block; close it cleanly after."""
    lt = LoopThread()

    async def begin() -> Any:
        return await start()

    server = lt.run(begin())
    try:
        yield
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        try:
            lt.run(stop(), timeout=10)
        finally:
            lt.close()


@contextmanager
def raw_backend(reply_101: bool = True) -> Iterator[tuple[int, list[bytes], threading.Event]]:
    """A raw TCP peer: answers the handshake with a fixed 101, then records every
    byte it receives after the head (to check byte transparency)."""
    received: list[bytes] = []
    done = threading.Event()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = int(srv.getsockname()[1])

    def serve_one(conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=10)
            if not head:
                return
            if reply_101:
                conn.sendall(switching_protocols(head))
            if rest:
                received.append(rest)
            try:
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received.append(chunk)
            except OSError:
                pass
            done.set()

    accept_in_threads(srv, serve_one)
    try:
        yield port, received, done
    finally:
        srv.close()


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """(far, near): both ends of one loopback TCP connection, blocking."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        far = socket.create_connection(srv.getsockname())
        near, _ = srv.accept()
    return far, near


def shut(sock: socket.socket) -> None:
    """Close a connection a thread may be blocked reading: ``shutdown`` first
    wakes that ``recv`` (``close()`` alone leaves it waiting on the file)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the peer is gone already
    sock.close()


_ACCEPT_WAIT = 0.2  # s: how soon an accept thread notices its socket was closed


def accept_in_threads(
    srv: socket.socket,
    serve: Callable[[socket.socket], None],
    on_accept: Callable[[socket.socket], None] | None = None,
) -> None:
    """Accept on ``srv`` in a daemon thread until it is closed; each connection is
    given to ``on_accept`` (if any) and then served by ``serve`` in its own daemon thread.

    The thread waits in bounded steps: one parked in ``accept()`` keeps a
    closed socket's file alive on Linux, the port stays in LISTEN, and a
    later test's connection to that port would be accepted and answered by
    a backend whose test is over (CI saw nginx answered by the differential
    suite's ``b1`` in the corpus run).  Waiting with a timeout, the thread
    holds the socket only for a step and then finds it closed."""
    srv.settimeout(_ACCEPT_WAIT)  # accepted connections stay blocking (socket.accept)

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if on_accept is not None:
                on_accept(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def ws_accept(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for ``key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def request_key(head: bytes) -> bytes:
    """The Sec-WebSocket-Key of a request head (the last one), or b""."""
    key = b""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    return key


def switching_protocols(head: bytes) -> bytes:
    """A websocket 101 answering the request ``head``."""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + ws_accept(request_key(head)) + b"\r\n\r\n"
    )


def live_children(parent: int) -> set[int]:
    """Live (not zombie) children of ``parent``, from /proc."""
    out: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] not in ("Z", "X"):
            out.add(int(entry))
    return out


def upgrade_request(path: str = "/", key: str = "dGhlIHNhbXBsZSBub25jZQ==", host: str = "localhost") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def read_head(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bytes]:
    """Read an HTTP response head from a raw socket; return (head, bytes after it)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (TimeoutError, ConnectionResetError):
        return out


def read_at_least(sock: socket.socket, have: bytes, n: int) -> bytes:
    """``have`` and what ``sock`` sends next, until there are ``n`` bytes or the peer closes."""
    while len(have) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        have += chunk
    return have


def parse_stats(page: str) -> dict[str, int]:
    """The v1 page by position, as users' scripts read it."""
    lines = page.split("\n")
    cf, cp, ct = (int(x) for x in lines[2].split())
    uf, up, ut = (int(x) for x in lines[4].split())
    return {
        "active": int(lines[0].split()[2]),
        "client_frames": cf,
        "client_payload": cp,
        "client_bytes": ct,
        "upstream_frames": uf,
        "upstream_payload": up,
        "upstream_bytes": ut,
    }


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def assert_location_refused(tmp_path: Path, block: str, message: str) -> None:
    """``block`` in a server of an otherwise valid conf (at line 5): ``ngxws
    check`` exits 1 with ``message`` and that file:line, as ``nginx -t``."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:1;\n  {block}\n }}\n}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "ngxws", "check", "-c", str(conf), "-p", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert message in done.stderr and f"{conf}:5" in done.stderr, done.stderr


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server started with ``start_new_session=True`` and every
    process of its group: killing the master alone would leave its workers
    running, still listening and proxying for a test that is over."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=5)


def wait_pid_file(proc: subprocess.Popen[bytes], pid_file: Path, limit: float = 15.0) -> str:
    """'' once nginx has written ``pid_file``; else what went wrong.

    nginx writes its pid file only after it has bound every listen (it
    retries a busy address for 2.5 s first), so a port that answers before
    that may be somebody else's: a test must not take that for nginx."""
    deadline = time.monotonic() + limit
    while not pid_file.exists():
        if proc.poll() is not None:
            return f"exited with {proc.returncode} before writing {pid_file.name}"
        if time.monotonic() > deadline:
            return f"no {pid_file.name} after {limit:.0f} s"
        time.sleep(0.02)
    return ""

