"""Differential testing against Debian's nginx: the same conf, the same bytes.

A *group* is one conf template (the ``http {}`` body plus optional main-level
lines) with placeholders; nginx and ngxws each get their own copy with their
own listen ports and work directory, and share the recording backends.  A
*case* is the raw request(s) sent to both; what the client got and what the
backends received are reduced to an ``Observation`` and compared.

Placeholders (``@NAME@`` so that nginx's braces stay readable):

- ``@L0@`` .. ``@L3@``  listen ports (different for nginx and ngxws);
- ``@B0@`` .. ``@B3@``  backend ports (the same for both);
- ``@DEAD@``            a port nothing listens on;
- ``@DIR@``             the side's work directory (where the conf lives);
- ``@BSOCK@``           backend 0's unix socket path.

What is normalised, and why (everything else must agree):

- ``Server`` and ``Date`` headers are not compared (ngxws names itself);
- the HTML body (and so the Content-Length) of responses the server wrote
  itself -- error pages, redirects -- is not compared: nginx prints its
  version there;
- the side's own listen ports are replaced by their placeholder wherever
  they appear (Location, Host-derived headers the backend received).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LISTENS = 4
BACKENDS = 4


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import (  # noqa: E402  (tests/harness.py: raw-peer helpers)
    accept_in_threads,
    kill_group,
    read_at_least,
    shut,
    wait_pid_file,
    ws_accept,
)
from ports import free_port  # noqa: E402  (tests/ports.py: ports outside the ephemeral range)

# -- backends -----------------------------------------------------------------


@dataclass
class Received:
    """One request as a backend read it: the exact head and body bytes."""

    backend: str
    head: bytes
    body: bytes


class RecordingBackend:
    """A raw HTTP/1.x server that records every request it is sent.

    Paths steer the answer: ``/hang`` never answers, ``/slow`` answers after
    1.5 s, ``/chunked`` answers chunked, ``/eof`` close-delimited,
    ``/status/NNN`` with that status (those two for an upgrade too); any
    other websocket upgrade gets a 101 and then
    every byte echoed (``/mute``: nothing is ever sent back; ``/deaf``: nothing
    is ever read again).  ``AUTH_PATHS`` answer as an auth service (``_auth``).
    Otherwise a small 200 naming the backend.
    """

    def __init__(self, name: str, unix: str | None = None) -> None:
        self.name = name
        self.records: list[Received] = []
        self._lock = threading.Lock()
        if unix is not None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix)
            self.port = 0
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = int(self.sock.getsockname()[1])
        self.sock.listen(128)
        self._conns: list[socket.socket] = []
        accept_in_threads(self.sock, self._serve, self._conns.append)

    def take(self) -> list[Received]:
        with self._lock:
            out, self.records = self.records, []
        return out

    def close(self) -> None:
        self.sock.close()
        for c in self._conns:
            shut(c)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                headers = _header_dict(head)
                body = b""
                if "content-length" in headers:
                    n = int(headers["content-length"])
                    buf = read_at_least(conn, buf, n)
                    body, buf = buf[:n], buf[n:]
                elif "chunked" in headers.get("transfer-encoding", "").lower():
                    body, buf = _read_chunked(conn, buf)
                with self._lock:
                    self.records.append(Received(self.name, head + b"\r\n\r\n", body))
                path = head.split(b" ", 2)[1].decode("latin-1")
                if any(p in path for p in AUTH_PATHS):
                    self._auth(conn, path, headers)
                    if not _keeps_alive(head, headers):
                        return
                    continue
                # /hang and /status/NNN answer an upgrade as any request (no 101)
                if headers.get("upgrade", "").lower() == "websocket" and not re.search(r"/hang|/status/\d", path):
                    self._upgrade(conn, headers, buf, echo="/mute" not in path, deaf="/deaf" in path)
                    return
                if not self._answer(conn, path, head):
                    return
                if not _keeps_alive(head, headers):
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, conn: socket.socket, path: str, head: bytes) -> bool:
        name = self.name.encode()
        if "/hang" in path:
            time.sleep(5)
            return False
        if "/slow" in path:
            time.sleep(1.5)
        status = b"200 OK"
        m = re.search(r"/status/(\d{3})", path)
        if m:
            status = m.group(1).encode() + b" Whatever"
        body = b"backend " + name + b"\n"
        common = b"Content-Type: text/plain\r\nX-Backend: " + name + b"\r\n"
        if "/hdrs" in path:  # headers nginx hides, or passes, by proxy_hide/pass_header
            common += (b"X-Powered-By: Express\r\nServer: backend-srv\r\nX-Pad: pad\r\n"
                       b"Date: Mon, 01 Jan 2001 00:00:00 GMT\r\nX-Secret: s\r\n")
        # a Location (or Refresh) header, "!" for "/" and "~" for ":" (they
        # survive nginx's URI normalisation): /location=http~!!backend!x
        # (and the headers an X-Accel-Redirect carries: "%3F" for "?")
        for name in ("location", "refresh", "set-cookie", *_ACCEL_HEADERS):
            for m in re.finditer(rf"/{name}=([^/?]+)", path):
                value = m.group(1).replace("!", "/").replace("~", ":").replace("%20", " ").replace("%3B", ";")
                value = value.replace("%3F", "?").replace("%2C", ",").replace("%25", "%")
                common += name.title().encode() + b": " + value.encode() + b"\r\n"
        if "/chunked" in path:
            conn.sendall(
                b"HTTP/1.1 " + status + b"\r\n" + common + b"Transfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
            )
            return True
        if "/eof" in path:
            conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + common + b"Connection: close\r\n\r\n" + body)
            return False
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\n" + common
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + (b"" if head.startswith(b"HEAD ") else body)
        )
        return True

    def _auth(self, conn: socket.socket, path: str, headers: dict[str, str]) -> None:
        """What Authelia's /api/authz/auth-request and oauth2-proxy's /oauth2/auth
        answer nginx's auth_request: by the session cookie (or a bearer token)
        200/202 with the user in headers, else 401 with a challenge and where
        to log in (Authelia's Location); ``session=forbidden`` 403,
        ``session=broken`` 500."""
        cookie = headers.get("cookie", "")
        if "session=good" in cookie or headers.get("authorization") == "Bearer good":
            status = b"202 Accepted" if "oauth2" in path else b"200 OK"
            extra = (
                b"Remote-User: alice\r\nRemote-Groups: admins,dev\r\nRemote-Name: Alice\r\n"
                b"Remote-Email: alice@example.com\r\nX-Auth-Request-User: alice\r\n"
                b"X-Auth-Request-Email: alice@example.com\r\n"
            )
        elif "session=forbidden" in cookie:
            status, extra = b"403 Forbidden", b""
        elif "session=broken" in cookie:
            status, extra = b"500 Internal Server Error", b""
        else:
            target = headers.get("x-original-url", "").encode("latin-1")
            status = b"401 Unauthorized"
            extra = (
                b'WWW-Authenticate: Bearer realm="auth"\r\nWWW-Authenticate: Basic realm="auth"\r\n'
                b"Location: https://auth.example.com/?rd=" + target + b"\r\n"
            )
        conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + extra + b"Content-Length: 5\r\n\r\nauth\n")

    def _upgrade(self, conn: socket.socket, headers: dict[str, str], rest: bytes, echo: bool, deaf: bool = False) -> None:
        key = headers.get("sec-websocket-key", "").encode()
        accept = ws_accept(key)
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nX-Backend: " + self.name.encode() + b"\r\n\r\n"
        )
        if deaf:
            # hold the connection without reading: the proxy's writes block
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            time.sleep(10)
            return
        if rest and echo:
            conn.sendall(rest)
        conn.settimeout(60)
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            if echo:
                conn.sendall(chunk)


# Paths RecordingBackend answers as an auth service (Authelia's, oauth2-proxy's).
AUTH_PATHS = ("/api/authz/", "/oauth2/auth")


# headers a backend route may add (cases_x_accel.py): /x-accel-redirect=!protected!f
_ACCEL_HEADERS = ("x-accel-redirect", "content-disposition", "cache-control", "expires", "etag", "last-modified",
                  "accept-ranges", "x-extra")


def _header_dict(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out.setdefault(name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))
    return out


def _keeps_alive(head: bytes, headers: dict[str, str]) -> bool:
    conn = headers.get("connection", "").lower()
    if head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
        return conn == "keep-alive"
    return conn != "close"


def _read_chunked(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        line, _, buf = buf.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        while len(buf) < size + 2:
            buf += sock.recv(65536)
        body += buf[:size]
        buf = buf[size + 2 :]
        if size == 0:
            return body, buf


# -- the two servers ------------------------------------------------------------


PREAMBLE = """\
daemon off;
master_process off;
error_log @DIR@/error.log info;
pid @DIR@/run.pid;
"""

HTTP_PREAMBLE = """\
    access_log off;
    client_body_temp_path @DIR@/tmp_body;
    proxy_temp_path @DIR@/tmp_proxy;
    fastcgi_temp_path @DIR@/tmp_fcgi;
    uwsgi_temp_path @DIR@/tmp_uwsgi;
    scgi_temp_path @DIR@/tmp_scgi;
"""


@dataclass
class Group:
    """One conf: ``http`` is the http block's body; ``main`` extra top-level lines;
    ``files`` extra files written next to the conf (name -> text)."""

    name: str
    http: str
    main: str = ""
    events: str = ""
    files: dict[str, str] = field(default_factory=dict)
    # a docroot both servers serve (``@ROOT@``): written once, with one
    # fixed mtime, so ETag/Last-Modified can be compared; a name ending in
    # "/" is a directory
    docroot: dict[str, bytes] = field(default_factory=dict)

    def render(self, values: dict[str, str]) -> str:
        text = (
            PREAMBLE + self.main + "\nevents {\n" + self.events + "\n}\nhttp {\n"
            + HTTP_PREAMBLE + self.http + "\n}\n"
        )
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        assert "@" not in re.sub(r"\\@|\"@|@[a-z]", "", text), text
        return text


class Side:
    """nginx or ngxws running one group's conf."""

    def __init__(
        self, kind: str, group: Group, backends: Sequence[RecordingBackend], dead: int, root: str = ""
    ) -> None:
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"diff-{kind}-{group.name}-"))
        self.ports = [free_port() for _ in range(LISTENS)]
        values = {f"L{i}": str(p) for i, p in enumerate(self.ports)}
        values.update({f"B{i}": str(b.port) for i, b in enumerate(backends) if b.port})
        values["DEAD"] = str(dead)
        values["ROOT"] = root
        values["DIR"] = str(self.dir)
        values["BSOCK"] = str(backends[-1].sock.getsockname())
        for name, text in group.files.items():
            (self.dir / name).write_text(text)
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(group.render(values))
        if kind == "nginx":
            cmd = [NGINX, "-p", str(self.dir), "-c", str(self.conf)]
        else:
            cmd = [sys.executable, "-m", "ngxws", "run", "-c", str(self.conf), "-p", str(self.dir)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait_listening(group)

    def _wait_listening(self, group: Group) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                log = (self.dir / "error.log").read_text() if (self.dir / "error.log").exists() else ""
                raise RuntimeError(f"{self.kind} did not start on {group.name}: {err.decode()} {out.decode()} {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports[0]), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.03)
                continue
            # the port answers; nginx's own only once it wrote its pid file
            problem = wait_pid_file(self.proc, self.dir / "run.pid") if self.kind == "nginx" else ""
            if not problem:
                return
            self.stop()
            raise RuntimeError(f"{self.kind} did not start on {group.name}: {problem}")
        self.stop()
        raise RuntimeError(f"{self.kind} not listening on {group.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def address(self, target: str) -> tuple[int, tuple[object, ...]]:
        """``L0``.. (IPv4 loopback), ``V6:L1`` ([::1]), ``UNIX:name`` (path in DIR)."""
        if target.startswith("UNIX:"):
            return socket.AF_UNIX, (str(self.dir / target[5:]),)
        if target.startswith("V6:"):
            return socket.AF_INET6, ("::1", self.ports[int(target[3:])])
        return socket.AF_INET, ("127.0.0.1", self.ports[int(target[1:])])


DOCROOT_MTIME = 1704164645  # Tue, 02 Jan 2024 03:04:05 GMT


def write_docroot(root: str, files: dict[str, bytes]) -> None:
    """The group's docroot, every entry (and the root) with DOCROOT_MTIME."""
    os.makedirs(root, exist_ok=True)
    for name, data in files.items():
        path = os.path.join(root, name)
        if name.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if data.startswith(b"symlink:"):
            os.symlink(data[8:].decode(), path)
            continue
        with open(path, "wb") as f:
            f.write(data)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (DOCROOT_MTIME, DOCROOT_MTIME), follow_symlinks=False)
    os.utime(root, (DOCROOT_MTIME, DOCROOT_MTIME))


class Running:
    """A group's servers and backends, started once and shared by its cases."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.sock_dir = tempfile.mkdtemp(prefix="diff-sock-")
        self.backends = [RecordingBackend(f"b{i}") for i in range(BACKENDS)]
        self.backends.append(RecordingBackend("bunix", unix=os.path.join(self.sock_dir, "b.sock")))
        self.dead = free_port()
        self.sides: dict[str, Side] = {}
        self.root = os.path.join(self.sock_dir, "root")
        write_docroot(self.root, group.docroot)
        try:
            for kind in ("nginx", "ngxws"):
                self.sides[kind] = Side(kind, group, self.backends, self.dead, self.root)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for side in self.sides.values():
            side.stop()
        for b in self.backends:
            b.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def take_records(self) -> list[Received]:
        out: list[Received] = []
        for b in self.backends:
            out.extend(b.take())
        return out


# -- cases and observations -------------------------------------------------------


@dataclass
class Exchange:
    """One connection: requests written one after another, each answer read.

    ``target`` names the socket (see ``Side.address``).  ``ws`` sends a
    masked frame after a 101 and records the echo.  ``idle`` waits up to that
    many seconds after the last answer for the server to close, and records
    after how long it did (rounded to 0.5 s).  ``pause`` sleeps between
    sending the head and the rest (``split`` bytes) to test timeouts.
    ``tls`` speaks TLS on the socket (certificate not verified; SNI is
    ``server_name``, none when empty; ``client_cert``: a file among the group's ``files``
    holding the certificate and key the client presents).  ``flood`` writes one endless websocket frame after
    the 101 until the socket stays unwritable, and records in which window
    after that the server gave up (see ``_flood``).  ``preface``: raw bytes
    (a PROXY protocol header) written right after connecting, before TLS.
    """

    requests: Sequence[bytes]
    target: str = "L0"
    ws: bool = False
    idle: float | None = None
    keepalive_pings: int = 0
    raw_tail: bytes = b""
    tls: bool = False
    server_name: str = "example.com"
    flood: bool = False
    client_cert: str = ""
    preface: bytes = b""


@dataclass
class Case:
    id: str
    group: str
    exchanges: Sequence[Exchange]
    expect: Sequence[int] = ()  # sanity: nginx's status codes, in order
    xfail: str | None = None
    fields: frozenset[str] = frozenset()  # extra response headers to compare
    body: bool = False  # compare the body (and length) of server-made error answers too


def get(path: str, host: str = "example.com", extra: str = "", version: str = "1.1") -> bytes:
    """A GET as curl would send it (with ``Connection: close``)."""
    return (
        f"GET {path} HTTP/{version}\r\nHost: {host}\r\nUser-Agent: diff/1\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")


def req(method: str, path: str, host: str = "example.com", headers: str = "", body: bytes = b"", version: str = "1.1", close: bool = True) -> bytes:
    lines = f"{method} {path} HTTP/{version}\r\n"
    if host:
        lines += f"Host: {host}\r\n"
    lines += headers
    if body:
        lines += f"Content-Length: {len(body)}\r\n"
    if close:
        lines += "Connection: close\r\n"
    return (lines + "\r\n").encode("latin-1") + body


def upgrade(path: str, host: str = "example.com", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode("latin-1")


# A masked text frame "hello" (RFC 6455 5.7's example).
WS_FRAME = bytes.fromhex("818537fa213d7f9f4d5158")

# Response headers compared by default (lower case).
COMPARED = frozenset(
    {"location", "content-type", "transfer-encoding", "connection", "x-backend",
     "www-authenticate", "upgrade", "sec-websocket-accept", "content-length"}
)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int] = field(default_factory=list)


def _read_response(sock: socket.socket, buf: bytes, head_request: bool) -> tuple[Response | None, bytes]:
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            chunk = b""
        if not chunk:
            return (None, buf)
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    if 100 <= status < 200 and status != 101:
        # an interim answer (100 Continue): note it, read the final one
        final, buf = _read_response(sock, buf, head_request)
        if final is not None:
            final.interim.append(status)
        return final, buf
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    hmap = {n.lower(): v for n, v in headers}
    body = b""
    if head_request or status in (101, 204, 304):
        pass
    elif "content-length" in hmap:
        n = int(hmap["content-length"])
        buf = read_at_least(sock, buf, n)
        body, buf = buf[:n], buf[n:]
    elif "chunked" in hmap.get("transfer-encoding", ""):
        body, buf = _read_chunked(sock, buf)
    else:
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        body, buf = buf, b""
    return Response(status, headers, body), buf


def observe(running: Running, kind: str, case: Case) -> list[object]:
    """Run the case against one side; return what both must agree on."""
    side = running.sides[kind]
    running.take_records()
    out: list[object] = []
    for ex in case.exchanges:
        start = len(out)
        family, addr = side.address(ex.target)
        sock = socket.socket(family)
        sock.settimeout(5)
        try:
            sock.connect(addr if family != socket.AF_UNIX else addr[0])
            if ex.preface:
                sock.sendall(ex.preface)
            if ex.tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                if ex.client_cert:
                    ctx.load_cert_chain(side.dir / ex.client_cert)
                sock = ctx.wrap_socket(sock, server_hostname=ex.server_name or None)
            buf = b""
            for i, data in enumerate(ex.requests):
                if data:  # b"": read one more answer (pipelining)
                    sock.sendall(data)
                resp, buf = _read_response(sock, buf, data.startswith(b"HEAD "))
                records = running.take_records()
                server_made = not case.body and (not records or resp is None or (resp.status >= 300 and not any(
                    n.lower() == "x-backend" for n, _ in resp.headers)))
                out.append((f"answer {i}", _normalise(resp, side, server_made, case.fields)))
                out.append((f"backend {i}", [_normalise_record(r, side) for r in records]))
                if resp is None:
                    break
                if resp.status == 101 and ex.ws:
                    sock.sendall(WS_FRAME)
                    got = read_at_least(sock, buf, len(WS_FRAME))
                    buf = b""
                    out.append(("ws echo", got == WS_FRAME))
                if resp.status == 101 and ex.flood:
                    out.append(("flood", _flood(sock)))
            if b"" in ex.requests:
                # Pipelined: when each request reaches the backend, relative to
                # when the client reads each answer, is timing, not behaviour.
                # Compare what the backend got over the whole exchange.
                merged: list[object] = []
                kept: list[object] = out[:start]
                for item in out[start:]:
                    key, value = item  # type: ignore[misc]
                    if str(key).startswith("backend "):
                        merged.extend(value)
                    else:
                        kept.append(item)
                out = kept + [("backends", merged + [_normalise_record(r, side) for r in running.take_records()])]
            if ex.raw_tail:
                sock.sendall(ex.raw_tail)
            if ex.idle is not None:
                out.append(("idle", _wait_close(sock, ex.idle, ex.keepalive_pings)))
        except OSError as exc:
            out.append(("error", type(exc).__name__))
        finally:
            sock.close()
    return out


def _flood(sock: socket.socket) -> str:
    """Write one endless masked frame until the socket has been unwritable
    for 0.1 s, then wait for the server to drop the connection; say in which
    window that happened (coarse: nginx re-arms its send timer on every
    event of the tunnel, so the exact moment varies by a few tenths)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.setblocking(False)
    data = b"\x82\xff" + (1 << 40).to_bytes(8, "big") + b"\x01\x02\x03\x04" + b"\0" * 65536
    blocked: float | None = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sent = sock.send(data)
            data = data[sent:] or b"\0" * 65536
            blocked = None
        except BlockingIOError:
            now = time.monotonic()
            blocked = blocked or now
            if now - blocked > 0.1:
                break
        except OSError:
            return "closed before the writes blocked"
        time.sleep(0.005)
    else:
        return "never blocked"
    assert blocked is not None
    sock.setblocking(True)
    sock.settimeout(4)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    except TimeoutError:
        return "still open after 4s"
    waited = time.monotonic() - blocked
    return "closed within 0.5-2.5s" if 0.5 <= waited <= 2.5 else f"closed after {waited:.1f}s"


def _wait_close(sock: socket.socket, limit: float, pings: int) -> str:
    """Seconds (rounded to 0.5) until the server closes, or "open"."""
    start = time.monotonic()
    interval = limit / (pings + 1) if pings else limit
    next_ping = start + interval if pings else None
    while True:
        now = time.monotonic()
        left = start + limit - now
        if left <= 0:
            return "open"
        wait = left if next_ping is None else max(0.01, min(left, next_ping - now))
        sock.settimeout(wait)
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return f"closed after ~{round((time.monotonic() - start) * 2) / 2}s"
        except TimeoutError:
            if next_ping is not None and time.monotonic() >= next_ping:
                try:
                    sock.sendall(WS_FRAME)
                except OSError:
                    return "reset"
                next_ping += interval
        except ConnectionResetError:
            return f"reset after ~{round((time.monotonic() - start) * 2) / 2}s"


def _ports(text: str, side: Side) -> str:
    for i, p in enumerate(side.ports):
        text = text.replace(str(p), f"@L{i}@")
    return text.replace(str(side.dir), "@DIR@")


def _normalise(resp: Response | None, side: Side, server_made: bool, extra: frozenset[str]) -> object:
    if resp is None:
        return "no response (closed)"
    compared = COMPARED | extra
    if server_made and resp.status >= 300:
        compared = compared - {"content-length"}
    headers = [
        (n.lower(), _ports(v, side)) for n, v in resp.headers if n.lower() in compared
    ]
    body = resp.body if not (server_made and resp.status >= 300) else b"(server page)"
    body = _ports(body.decode("latin-1"), side).encode("latin-1")
    # the order nginx's header filter writes them in (Server and Date lead)
    order = tuple(n.lower() for n, _ in resp.headers if n.lower() not in ("server", "date"))
    return (resp.status, sorted(headers), body, resp.interim, order)


def _normalise_record(r: Received, side: Side) -> object:
    return (r.backend, _ports(r.head.decode("latin-1"), side), r.body)


def statuses(observation: list[object]) -> list[int]:
    codes: list[int] = []
    for item in observation:
        if isinstance(item, tuple) and str(item[0]).startswith("answer"):
            val = item[1]
            if isinstance(val, tuple):
                codes.append(int(val[0]))
    return codes


class Pool:
    """Running groups for a session: started on first use, stopped at the end."""

    def __init__(self, groups: dict[str, Group]) -> None:
        self.groups = groups
        self.running: dict[str, Running] = {}
        self.current: str | None = None

    def get(self, name: str) -> Running:
        if name not in self.running:
            # cases of one group run together: free the previous group's servers
            for old in list(self.running):
                self.running.pop(old).close()
            self.running[name] = Running(self.groups[name])
        return self.running[name]

    def close(self) -> None:
        for r in self.running.values():
            r.close()
        self.running.clear()


def iter_cases(cases: Sequence[Case]) -> Iterator[Case]:
    yield from cases
