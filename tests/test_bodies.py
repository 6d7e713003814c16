"""Request bodies and the HTTP-phase timers (issue 8, items 3 and 4).

- ``client_body_timeout``: a body that stalls is cut after the timeout, with
  no answer (nginx's 408 terminates the request), and the upstream with it;
- ``send_timeout`` on a plain HTTP response: a client that never reads a big
  answer is dropped after the timeout, and the upstream connection too;
- a 1 GiB upload, generated on the fly, through a real ngxws to a backend
  that counts and hashes what it gets, with ``proxy_request_buffering`` on
  (the body goes to a temp file: seen open while it is read, gone after) and
  off (streamed): the worker's resident memory stays within 50 MB of where
  it started, and the backend gets the very bytes that were sent.

The pure ``RequestBody`` store has its own table-driven tests at the end.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import Ngxws, accept_in_threads, free_port, read_head, wait_for

from ngxws.http.body import RequestBody

GiB = 1 << 30
MiB = 1 << 20


# -- a backend that counts ---------------------------------------------------------


@dataclass
class Upload:
    """What the backend got for one request."""

    head: bytes = b""
    count: int = 0
    sha256: str = ""
    closed_early: bool = False


@dataclass
class CountingBackend:
    """Reads each request's body (Content-Length or chunked), counts and hashes
    it, answers 200 with the count.  ``/endless`` answers with a body that never
    ends (for send_timeout); ``/stall`` reads the head and waits."""

    port: int = 0
    uploads: list[Upload] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)  # an /endless or /stall peer went away
    sock: socket.socket | None = None

    def start(self) -> None:
        self.sock = socket.socket()
        # small windows, so that a peer that stops reading blocks its writer soon
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        accept_in_threads(self.sock, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=120)
            up = Upload(head=head)
            self.uploads.append(up)
            if b"/endless " in head.split(b"\r\n", 1)[0]:
                self._endless(conn)
                return
            if b"/deaf " in head.split(b"\r\n", 1)[0]:
                time.sleep(8)  # never reads the body: proxy_send_timeout's case
                return
            if b"/stall " in head.split(b"\r\n", 1)[0]:
                conn.settimeout(20)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
                self.closed.set()
                return
            digest = hashlib.sha256()
            reader = _Reader(conn, rest)
            lower = head.lower()
            try:
                if b"transfer-encoding: chunked" in lower:
                    while True:
                        size = int(reader.line().split(b";")[0], 16)
                        if size == 0:
                            reader.line()
                            break
                        for piece in reader.exactly(size):
                            digest.update(piece)
                            up.count += len(piece)
                        reader.line()
                else:
                    length = 0
                    for line in lower.split(b"\r\n"):
                        if line.startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    for piece in reader.exactly(length):
                        digest.update(piece)
                        up.count += len(piece)
            except (OSError, EOFError):
                up.closed_early = True
                return
            up.sha256 = digest.hexdigest()
            body = b"%d %s\n" % (up.count, up.sha256.encode())
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body))

    def _endless(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        block = b"x" * 65536
        conn.settimeout(30)
        try:
            for _ in range(100_000):  # 6 GiB at most: far more than any buffer
                conn.sendall(block)
        except OSError:
            self.closed.set()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class _Reader:
    """Buffered reads off a socket, in pieces (never the whole body in memory)."""

    def __init__(self, conn: socket.socket, rest: bytes) -> None:
        self.conn = conn
        self.buf = rest
        conn.settimeout(60)

    def _more(self) -> None:
        chunk = self.conn.recv(1 << 20)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._more()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n: int) -> Iterator[bytes]:
        while n > 0:
            if not self.buf:
                self._more()
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            yield piece


@contextmanager
def counting_backend() -> Iterator[CountingBackend]:
    b = CountingBackend()
    b.start()
    try:
        yield b
    finally:
        b.close()


# -- ngxws and its worker -----------------------------------------------------------------


CONF = """
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    client_max_body_size 0;
    client_body_temp_path {temp};
    client_body_timeout 1s;
    server {{
        listen 127.0.0.1:{port};
        location /on/ {{ proxy_pass http://127.0.0.1:{backend}; }}
        location /off/ {{
            proxy_request_buffering off;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:{backend};
        }}
        location /send/ {{ send_timeout 1s; proxy_pass http://127.0.0.1:{backend}; }}
        location /psend/ {{ proxy_send_timeout 1s; proxy_pass http://127.0.0.1:{backend}; }}
        location /psendoff/ {{
            proxy_request_buffering off;
            proxy_send_timeout 1s;
            proxy_pass http://127.0.0.1:{backend};
        }}
    }}
}}
"""


@contextmanager
def proxy(tmp_path: Path, backend: int) -> Iterator[tuple[Ngxws, Path]]:
    port = free_port()
    temp = tmp_path / "body_temp"
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(port=port, backend=backend, temp=temp))
    server = Ngxws(conf, tmp_path, port)
    try:
        yield server, temp
    finally:
        server.stop()


def worker_pid(server: Ngxws) -> int:
    master = server.proc.pid
    children: list[int] = []
    assert wait_for(lambda: bool(children.extend(_children(master)) or children), timeout=10)
    return children[0]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_files_under(pid: int, folder: Path) -> list[str]:
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            out.append(target)
    return out


def _pattern(i: int, block: bytes) -> bytes:
    # every block differs (its index in front), so a lost or repeated block shows in the hash
    return i.to_bytes(8, "big") + block[8:]


# -- the 1 GiB upload --------------------------------------------------------------------


@dataclass
class _Stream:
    """One upload on its own connection, sent and answered in a thread."""

    port: int
    path: str
    total: int
    block: bytes
    sent: hashlib._Hash = field(default_factory=hashlib.sha256)
    head: bytes = b""
    answer: bytes = b""
    error: BaseException | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
                sock.sendall(f"POST {self.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {self.total}\r\n\r\n".encode())
                for i in range(self.total // MiB):
                    data = _pattern(i, self.block)
                    self.sent.update(data)
                    sock.sendall(data)
                self.head, self.answer = read_head(sock, timeout=120)
                while not self.answer.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    self.answer += chunk
        except BaseException as exc:  # reported by the main thread
            self.error = exc


@pytest.mark.parametrize(
    ("mode", "streams", "size"),
    [("on", 1, GiB), ("off", 1, GiB), ("on", 4, 128 * MiB)],
    ids=["buffered-1GiB", "streamed-1GiB", "buffered-4x128MiB"],
)
@pytest.mark.timeout(300)
def test_big_uploads_keep_worker_memory_bounded(tmp_path: Path, mode: str, streams: int, size: int) -> None:
    block = os.urandom(MiB)
    with counting_backend() as backend, proxy(tmp_path, backend.port) as (server, temp):
        pid = worker_pid(server)
        # one small request first: the worker's steady state (imports, buffers) is the baseline
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(f"POST /{mode}/warm HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".encode())
            assert read_head(s, timeout=10)[0].startswith(b"HTTP/1.1 200")
        backend.uploads.clear()
        baseline = peak = rss_kib(pid)
        temp_seen: set[str] = set()
        started = time.monotonic()
        uploads = [_Stream(server.port, f"/{mode}/upload{i}", size, block) for i in range(streams)]
        threads = [threading.Thread(target=u.run, daemon=True) for u in uploads]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) and time.monotonic() - started < 240:
            peak = max(peak, rss_kib(pid))
            temp_seen.update(open_files_under(pid, temp))
            threads[0].join(0.05)
        assert not any(t.is_alive() for t in threads), "the uploads did not finish in 240 s"
        peak = max(peak, rss_kib(pid))
        elapsed = time.monotonic() - started
        growth_mb = (peak - baseline) / 1024
        print(
            f"\n[{mode}] {streams} x {size // MiB} MiB in {elapsed:.1f}s; worker VmRSS {baseline} kB"
            f" -> peak {peak} kB (+{growth_mb:.1f} MB)"
        )
        for u in uploads:
            assert u.error is None, u.error
            assert u.head.startswith(b"HTTP/1.1 200"), u.head
            assert u.answer.decode().split() == [str(size), u.sent.hexdigest()]  # the backend's count and hash
        got = sorted((up.count, up.sha256) for up in backend.uploads)
        assert got == sorted((size, u.sent.hexdigest()) for u in uploads)
        assert all(b"content-length: %d" % size in up.head.lower() for up in backend.uploads)
        assert growth_mb < 50, f"worker RSS grew by {growth_mb:.1f} MB"
        if mode == "on":
            # each body went through a temp file in client_body_temp_path (an
            # unnamed one: O_TMPFILE or unlinked at once, as nginx does) ...
            assert len(temp_seen) >= 1, "no temp file was open in client_body_temp_path during the upload"
            # ... which is gone once the request is over
            assert wait_for(lambda: not open_files_under(pid, temp), timeout=5)
            assert list(temp.iterdir()) == []
        else:
            assert not temp_seen, temp_seen  # streamed: no temp file


def test_client_that_leaves_mid_body_leaves_no_temp_file(tmp_path: Path) -> None:
    with counting_backend() as backend, proxy(tmp_path, backend.port) as (server, temp):
        pid = worker_pid(server)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(f"POST /on/gone HTTP/1.1\r\nHost: x\r\nContent-Length: {8 * MiB}\r\n\r\n".encode())
            s.sendall(b"y" * (4 * MiB))
            assert wait_for(lambda: bool(open_files_under(pid, temp)), timeout=5)
        assert wait_for(lambda: not open_files_under(pid, temp), timeout=5)
        assert list(temp.iterdir()) == []
        assert backend.uploads == []  # a buffered body that never completed never went upstream


def test_streamed_chunked_body_goes_chunked_to_an_http11_upstream(tmp_path: Path) -> None:
    """proxy_request_buffering off, a chunked body still arriving: the
    upstream gets it chunked (ngx_http_proxy_body_output_filter), whole."""
    data = os.urandom(3 * MiB)
    with counting_backend() as backend, proxy(tmp_path, backend.port) as (server, _temp):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST /off/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            assert wait_for(lambda: bool(backend.uploads), timeout=5)  # the head went before the body
            for i in range(0, len(data), 100_000):
                piece = data[i : i + 100_000]
                s.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
            s.sendall(b"0\r\n\r\n")
            head, rest = read_head(s, timeout=10)
        assert head.startswith(b"HTTP/1.1 200"), head
        upload = backend.uploads[-1]
        assert b"transfer-encoding: chunked" in upload.head.lower()
        assert b"content-length" not in upload.head.lower()
        assert (upload.count, upload.sha256) == (len(data), hashlib.sha256(data).hexdigest())


# -- client_body_timeout --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["on", "off"])
def test_stalled_body_is_cut_after_client_body_timeout(tmp_path: Path, mode: str) -> None:
    """nginx: "If a client does not transmit anything within this time, the
    request is terminated with the 408 (Request Time-out) error" -- terminated:
    the connection closes with nothing sent (client_body_timeout 1s here)."""
    with counting_backend() as backend, proxy(tmp_path, backend.port) as (server, _temp):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(f"POST /{mode}/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc".encode())
            time.sleep(0.6)
            s.sendall(b"def")  # a read within the timeout restarts it
            started = time.monotonic()
            s.settimeout(10)
            got = b""
            try:
                while chunk := s.recv(65536):
                    got += chunk
            except ConnectionResetError:
                pass
            waited = time.monotonic() - started
        assert got == b""
        assert 0.8 <= waited <= 3.0, waited
        if mode == "off":  # the request had gone upstream: that connection is closed too
            assert backend.closed.wait(3)


# -- send_timeout on a plain HTTP response ------------------------------------------------


def test_client_that_never_reads_is_dropped_after_send_timeout(tmp_path: Path) -> None:
    """A response the client never reads: after send_timeout (1s) with the
    write blocked, ngxws drops the client connection and the upstream's."""
    with counting_backend() as backend, proxy(tmp_path, backend.port) as (server, _temp):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.connect(("127.0.0.1", server.port))
        try:
            s.sendall(b"GET /send/endless HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            # never read: the upstream's writes block once every buffer on the way is full
            assert backend.closed.wait(20), "the upstream connection was never closed"
            waited = time.monotonic() - started
            assert waited >= 1.0
            # and the client connection is gone: reading drains what was
            # buffered, then ends (FIN or reset), bounded
            s.settimeout(10)
            total = 0
            try:
                while chunk := s.recv(1 << 20):
                    total += len(chunk)
                    assert total < 1 << 30
            except ConnectionResetError:
                pass
        finally:
            s.close()


# -- proxy_send_timeout on the request body -------------------------------------------


@pytest.mark.parametrize("where", ["psend", "psendoff"])
def test_upstream_that_stops_reading_the_body_gets_504(tmp_path: Path, where: str) -> None:
    """nginx: "upstream timed out (110: Connection timed out) while sending
    request to upstream" after proxy_send_timeout (1s), answered 504."""
    data = b"z" * (32 * MiB)
    with counting_backend() as backend, proxy(tmp_path, backend.port) as (server, _temp):
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
            s.sendall(f"POST /{where}/deaf HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode())
            started = time.monotonic()
            s.settimeout(20)
            if where == "psend":
                s.sendall(data)
            else:  # streamed: the client is paused with the upstream; send what goes
                s.setblocking(False)
                view = memoryview(data)
                while view and time.monotonic() - started < 15:
                    readable, writable, _ = select.select([s], [s], [], 0.05)
                    if readable:  # the answer came
                        break
                    if writable:
                        try:
                            view = view[s.send(view) :]
                        except BlockingIOError:
                            pass
                s.settimeout(20)
            head, _rest = read_head(s, timeout=20)
            waited = time.monotonic() - started
        assert head.startswith(b"HTTP/1.1 504"), head
        assert waited < 8, waited


# -- the store itself -------------------------------------------------------------------


def test_body_stays_in_memory_within_the_buffer(tmp_path: Path) -> None:
    body = RequestBody(16, str(tmp_path))
    body.feed(b"0123456789")
    body.feed(b"abcdef")
    body.finish()
    assert not body.in_file and list(tmp_path.iterdir()) == []
    assert (body.take(4), body.take(100), body.take(100)) == (b"0123", b"456789abcdef", b"")
    assert body.exhausted
    assert body.rewind() and body.take(100) == b"0123456789abcdef"  # a second upstream gets it all


def test_body_past_the_buffer_goes_to_an_unnamed_temp_file(tmp_path: Path) -> None:
    temp = tmp_path / "deep" / "temp"  # made on first use, as nginx makes its paths at start
    body = RequestBody(8, str(temp))
    body.feed(b"0123456")
    body.feed(b"789abc")
    assert body.in_file and temp.is_dir() and list(temp.iterdir()) == []
    body.finish()
    got = b""
    while piece := body.take(5):
        got += piece
    assert got == b"0123456789abc" and body.exhausted
    assert body.rewind() and body.take(100) == b"0123456789abc"
    body.close()
    assert body.closed and not body.in_file


def test_streaming_body_is_a_pipe_that_asks_for_backpressure() -> None:
    events: list[str] = []
    body = RequestBody(4, None, streaming=True)
    body.on_data = lambda: events.append("data")
    body.on_drained = lambda: events.append("drained")
    body.feed(b"abc")
    assert not body.over_buffer
    body.feed(b"defg")
    assert body.over_buffer and not body.in_file  # a pipe never spills: the client is paused instead
    assert body.take(5) == b"abc"
    assert events == ["data", "data", "drained"]
    assert body.take(2) == b"de" and body.take(9) == b"fg"
    body.finish()
    assert body.exhausted and events[-1] == "data"
    assert not body.rewind()  # what went upstream is gone
