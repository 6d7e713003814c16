"""An upgrade's upstream as a plain socket (ngxws/proxy/dial.py), its tunnel
relayed in C from the start (``splice.splice_born``), end to end.

A real ngxws on an unlogged server and a raw upstream on loopback that
answers each upgrade the way the test scripts it:
- a simple 101 with a server frame in the same packet, and a client that
  sends a frame right behind its head: both leftovers arrive, in order,
  after the 101, and are counted (the stats page);
- a 101 split over two writes, and a 101 whose head the simple reader does
  not take (blanks around a value): the general reader takes the socket over,
  the tunnel still opens;
- another answer (404 with a body) is passed on, and the connection stays
  usable for the next request;
- an upstream that closes (or resets) before any answer: 502 and nginx's
  error-log line;
- the end of either peer ends the tunnel; a graceful stop says 1001 on it;
- a server that logs (ws_log) keeps the transport path: its lines are
  written as before.
Refused connects and both timeouts on this path are tests/test_fast_upgrade.py's.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import (
    accept_in_threads,
    free_port,
    mask_frame,
    ngxws,
    parse_stats,
    read_at_least,
    read_head,
    switching_protocols,
    upgrade_request,
    wait_for,
)

from ngxws.ws.frames import CSplice

pytestmark = pytest.mark.skipif(CSplice is None, reason="C extension not built")

Script = Callable[[socket.socket, bytes, bytes], None]


@contextmanager
def scripted_backend(script: Script) -> Iterator[int]:
    """A raw upstream: reads each request head, then runs ``script(conn, head, rest)``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve(conn: socket.socket) -> None:
        with conn:
            head, rest = read_head(conn, timeout=10)
            if head:
                try:
                    script(conn, head, rest)
                except OSError:
                    pass

    accept_in_threads(srv, serve)
    try:
        yield int(srv.getsockname()[1])
    finally:
        srv.close()


def _conf(port: int, backend: int, extra: str = "", log: Path | None = None) -> str:
    error_log = f"error_log {log} info;" if log is not None else ""
    return f"""
events {{}}
{error_log}
http {{
    server {{
        listen 127.0.0.1:{port};
        {extra}
        location = /websocket_status {{ ws_stat; }}
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""


def _server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    return bytes((0x80 | opcode, len(payload))) + payload


def _recv_exactly(sock: socket.socket, have: bytes, n: int, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    return read_at_least(sock, have, n)


def _ask(port: int, path: str = "/ws", status: bytes = b"101") -> tuple[socket.socket, bytes]:
    """A client that sent an upgrade request for ``path`` and got ``status``:
    (its socket, the bytes after the answer's head)."""
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(upgrade_request(path))
    head, rest = read_head(c)
    assert head.startswith(b"HTTP/1.1 " + status + b" "), head
    return c, rest


def _read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def test_leftovers_both_ways_arrive_after_the_101_and_are_counted(tmp_path: Path) -> None:
    got: list[bytes] = []
    done = threading.Event()
    hello = _server_frame(b"hello")

    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        conn.sendall(switching_protocols(head) + hello)  # one packet: 101 + a frame
        data = rest
        conn.settimeout(5)
        while len(data) < 2 * (6 + 3):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        got.append(data)
        done.set()
        conn.recv(10)  # until the client leaves

    port = free_port()
    with scripted_backend(script) as backend, ngxws(_conf(port, backend), tmp_path, port) as nx:
        c = socket.create_connection(("127.0.0.1", port))
        first = mask_frame(0x1, b"one")
        c.sendall(upgrade_request("/ws") + first)  # a frame right behind the head
        head, rest = read_head(c)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert _recv_exactly(c, rest, len(hello)) == hello
        c.sendall(mask_frame(0x1, b"two"))
        assert done.wait(5)
        assert got == [first + mask_frame(0x1, b"two")]
        page = parse_stats(nx.stats())
        assert (page["active"], page["client_frames"], page["upstream_frames"]) == (1, 2, 1), page
        assert page["client_bytes"] == 2 * len(first) and page["upstream_bytes"] == len(hello), page
        c.close()
        assert wait_for(lambda: parse_stats(nx.stats())["active"] == 0)


@pytest.mark.parametrize("shape", ["split", "padded"])
def test_a_101_the_simple_reader_does_not_take_still_tunnels(tmp_path: Path, shape: str) -> None:
    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        answer = switching_protocols(head)
        if shape == "split":
            conn.sendall(answer[:20])
            time.sleep(0.1)
            conn.sendall(answer[20:])
        else:  # blanks around a value: llhttp's reading (it trims them), not parse_101's
            conn.sendall(answer[:-2] + b"X-Pad:   padded  \r\n\r\n")
        conn.settimeout(5)
        data = conn.recv(65536)
        conn.sendall(_server_frame(data[6:]))  # the payload back (the client masks with zeros)

    port = free_port()
    with scripted_backend(script) as backend, ngxws(_conf(port, backend), tmp_path, port):
        c, rest = _ask(port)
        frame = mask_frame(0x1, b"abc", mask=b"\0\0\0\0")
        c.sendall(frame)
        assert _recv_exactly(c, rest, 5) == _server_frame(b"abc")
        c.close()


def test_another_answer_is_passed_on_and_the_connection_goes_on(tmp_path: Path) -> None:
    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        if b"/missing" in head:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
        else:
            conn.sendall(switching_protocols(head))
            conn.recv(10)

    port = free_port()
    with scripted_backend(script) as backend, ngxws(_conf(port, backend), tmp_path, port):
        c, rest = _ask(port, "/missing", b"404")
        assert _recv_exactly(c, rest, 4) == b"nope"
        c.sendall(upgrade_request("/ws"))  # keep-alive: the next request on it
        head, _ = read_head(c)
        assert head.startswith(b"HTTP/1.1 101 "), head
        c.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_an_upstream_that_ends_before_answering_is_502(tmp_path: Path, how: str) -> None:
    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        if how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    port = free_port()
    log = tmp_path / "error.log"
    with scripted_backend(script) as backend, ngxws(_conf(port, backend, log=log), tmp_path, port) as nx:
        c, _ = _ask(port, status=b"502")
        c.close()
        assert wait_for(
            lambda: log.exists()
            and "upstream prematurely closed connection while reading response header" in log.read_text()
        ), (log.read_text() if log.exists() else "no error.log", nx)


@pytest.mark.parametrize("who", ["client", "upstream"])
def test_the_end_of_either_peer_ends_the_tunnel(tmp_path: Path, who: str) -> None:
    ended = threading.Event()

    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        conn.sendall(switching_protocols(head))
        if who == "upstream":
            time.sleep(0.1)
            return  # closes
        conn.settimeout(5)
        if conn.recv(10) == b"":
            ended.set()

    port = free_port()
    with scripted_backend(script) as backend, ngxws(_conf(port, backend), tmp_path, port):
        c, _ = _ask(port)
        if who == "client":
            c.close()
            assert ended.wait(5)
        else:
            assert _read_all(c) == b""
            c.close()


def test_a_logging_server_keeps_its_lines(tmp_path: Path) -> None:
    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        conn.sendall(switching_protocols(head) + _server_frame(b"hi"))
        conn.settimeout(5)
        conn.recv(100)

    port = free_port()
    wslog = tmp_path / "ws.log"
    extra = f'ws_log {wslog}; ws_log_format "$ws_packet_source $ws_payload_size";'
    with scripted_backend(script) as backend, ngxws(_conf(port, backend, extra), tmp_path, port):
        c, rest = _ask(port)
        assert _recv_exactly(c, rest, 4) == _server_frame(b"hi")
        c.sendall(mask_frame(0x1, b"abc"))
        assert wait_for(lambda: wslog.exists() and "client 3" in wslog.read_text()), (
            wslog.read_text() if wslog.exists() else ""
        )
        assert "upstream 2" in wslog.read_text()
        c.close()


def test_graceful_stop_says_1001_on_a_tunnel_relayed_in_c(tmp_path: Path) -> None:
    """SIGQUIT: a tunnel relayed in C from its start (no ws_log) still gets
    ngxws's own close 1001 between the upstream's frames, and the worker exits."""
    sent = threading.Event()

    def script(conn: socket.socket, head: bytes, rest: bytes) -> None:
        conn.sendall(switching_protocols(head) + _server_frame(b"hello"))
        sent.set()
        conn.settimeout(10)
        while conn.recv(65536):
            pass

    port = free_port()
    with scripted_backend(script) as backend, ngxws(_conf(port, backend), tmp_path, port) as nx:
        c, rest = _ask(port)
        assert _recv_exactly(c, rest, 7) == _server_frame(b"hello")
        os.kill(nx.proc.pid, signal.SIGQUIT)
        tail = _read_all(c, timeout=10)
        assert tail[:2] == b"\x88\x0c" and tail[2:4] == (1001).to_bytes(2, "big"), tail
        assert tail[4:14] == b"Going Away"
        c.close()
        assert nx.proc.wait(15) == 0


def test_a_loopback_connect_is_up_when_connect_returns() -> None:
    """Why a loopback Dial goes on at once (``at_once``): its handshake is
    over when the non-blocking connect() returns, which ``dial`` (_dial.c)
    says with err 0; a connect whose SYN gets no answer (a full accept queue)
    is not up (EINPROGRESS: it waits for the write readiness); a refused one
    is refused, at once or on its write readiness.  The socket is non-blocking, with TCP_NODELAY."""
    import errno
    import fcntl
    import select

    from ngxws.ws.frames import c_dial

    if c_dial is None:
        pytest.skip("C extension not built")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = int(lsock.getsockname()[1])
    fds: list[int] = []
    held: list[socket.socket] = [lsock]
    try:
        fd, err = c_dial(socket.AF_INET, "127.0.0.1", port)
        fds.append(fd)
        assert err == 0
        up = socket.socket(fileno=os.dup(fd))
        held.append(up)
        assert up.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert up.getpeername() == ("127.0.0.1", port)
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        held.append(full)
        waiting = None
        for _ in range(8):  # bounded: a backlog of 0 queues one or two
            fd, err = c_dial(socket.AF_INET, "127.0.0.1", int(full.getsockname()[1]))
            fds.append(fd)
            if err != 0:
                waiting = err
                break
        assert waiting == errno.EINPROGRESS
        closed_port = free_port()
        fd, err = c_dial(socket.AF_INET, "127.0.0.1", closed_port)
        fds.append(fd)
        if err == errno.EINPROGRESS:  # the reset is the write readiness's news (Dial._connect_done)
            select.select([], [fd], [], 5.0)
            refused = socket.socket(fileno=os.dup(fd))
            held.append(refused)
            err = refused.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        assert err == errno.ECONNREFUSED
        with pytest.raises(ValueError):
            c_dial(socket.AF_INET, "::1", port)  # not an address of its family
    finally:
        for fd in fds:
            os.close(fd)
        for s in held:
            s.close()
