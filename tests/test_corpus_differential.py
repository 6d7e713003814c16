"""The real-world corpus, differential: Debian's nginx and ngxws on the same
localized file, the same requests, the same answers.

For every case of ``tests/configs/realworld/`` (see ``test_corpus.py`` for
the header and for ``localize()``), each side gets its own copy of the case,
its own loopback ports and its own recording backends (plain, TLS and
unix-socket ones that record every request head and answer upgrades with a
101 and an echo -- ``oracle.RecordingBackend``), so both sides run at the
same time.  Then:

- ``nginx -t`` and ``ngxws check`` must both accept (or both reject) it;
- on every ``server`` (its first TCP ``listen``, its first literal name, TLS
  with that name as SNI when the listen says ``ssl``) a plain ``GET /``;
- on every ``# ws:`` URL a plain GET of it and a websocket upgrade followed
  by one masked frame that must come back;
- on every ``# get:`` URL (extra paths a case wants tried) a plain GET.

What is compared per request: the status, ``Location``, ``Upgrade``, the
backend's ``X-Backend`` name, whether the frame came back, and every request
head the backends received (request line and headers, in order).  What is
normalised: each side's listen ports (as ``@L<port as written>@``), its
backend ports, its temporary folder, the client's own port, and
``$request_id``-shaped values.

nginx is started as ``oracle.py`` starts it (``daemon off; master_process
off;``, pid, temp paths and the default access log moved into the case's
folder, one worker).  A case whose ``# nginx:`` header is newer than the installed
binary, or whose ``# module:`` header names a third-party module, has no
nginx half and is not parametrized here (SOURCES.md lists them).

The whole corpus runs once, cases in parallel (``WORKERS``), in a module
fixture; each parametrized test reads its case's result.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import crossplane
import pytest
import trustme
from test_corpus import (
    CASES,
    CORPUS,
    NEEDS,
    NGINX,
    NGINX_VERSION,
    REFUSED,
    Backends,
    localize,
    ngxws_check,
    read_header,
    write_corpus_pki,
)

sys.path.insert(0, str(Path(__file__).parent / "differential"))

from harness import ROOT, kill_group, read_at_least, wait_pid_file  # noqa: E402
from oracle import WS_FRAME, RecordingBackend, _read_response, upgrade  # noqa: E402

WORKERS = 6  # cases at a time: mostly waiting on ngxws's start-up


# --------------------------------------------------------------------------
# the case's extra header lines
# --------------------------------------------------------------------------


def header_lines(case: str, key: str) -> list[str]:
    out = []
    for line in (CORPUS / case / "nginx.conf").read_text().splitlines():
        if not line.startswith("#"):
            break
        m = re.match(rf"#\s*{key}:\s*(.*)", line)
        if m:
            out.append(m.group(1).strip())
    return out


def oracle_cases() -> list[str]:
    """The cases the installed nginx can run: no newer syntax, no third-party module."""
    return [
        c
        for c in CASES
        if read_header(CORPUS / c / "nginx.conf").nginx <= NGINX_VERSION
        and not header_lines(c, "module")
    ]


# --------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------


class TLSRecordingBackend(RecordingBackend):
    """``RecordingBackend`` behind TLS (for ``proxy_pass https://``)."""

    def __init__(self, name: str, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx  # before the accept thread starts
        super().__init__(name)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            wrapped = self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        super()._serve(wrapped)


# --------------------------------------------------------------------------
# one side
# --------------------------------------------------------------------------


@dataclass
class Server:
    """One ``server`` block as a test reaches it."""

    key: tuple[bool, int]  # (IPv6?, port as written)
    tls: bool
    host: str


@dataclass
class Probe:
    label: str
    key: tuple[bool, int]
    tls: bool
    host: str  # the Host header
    sni: str
    path: str
    ws: bool
    auth: str  # an Authorization header value, from user:password@ in the URL


@dataclass
class SideResult:
    check_ok: bool = False
    check_text: str = ""
    answers: list[tuple[str, object]] = field(default_factory=list)
    error: str = ""


def _expand(payload: dict[str, Any], block: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements with crossplane's parsed includes spliced in, at any depth."""
    out: list[dict[str, Any]] = []
    for stmt in block:
        if stmt["directive"] == "include" and "includes" in stmt:
            for index in stmt["includes"]:
                out.extend(_expand(payload, payload["config"][index]["parsed"]))
            continue
        if "block" in stmt:
            stmt = dict(stmt, block=_expand(payload, stmt["block"]))
        out.append(stmt)
    return out


def servers_of(conf: Path, ports: dict[tuple[bool, int], int]) -> list[Server]:
    """Every ``http`` server of a localized conf, keyed by the port as written."""
    payload = crossplane.parse(
        str(conf), comments=False, strict=False, check_ctx=False, check_args=False
    )
    tree = _expand(payload, payload["config"][0]["parsed"])
    back = {v: k for k, v in ports.items()}
    out = []
    for http in (s for s in tree if s["directive"] == "http"):
        for srv in (s for s in http["block"] if s["directive"] == "server"):
            listens = [s["args"] for s in srv["block"] if s["directive"] == "listen"]
            names = [a for s in srv["block"] if s["directive"] == "server_name" for a in s["args"]]
            ssl_on = any(s["directive"] == "ssl" and s["args"] == ["on"] for s in srv["block"])
            tcp = [a for a in listens if not a[0].startswith("unix:")]
            if not tcp:
                continue
            port = int(tcp[0][0].rsplit(":", 1)[1])
            host = next(
                (n for n in names if n not in ("_", "") and n[0] not in "~$" and "*" not in n),
                None,
            )
            if host is None:
                wild = next((n for n in names if "*" in n), None)
                host = wild.replace("*", "www") if wild else "localhost"
            out.append(Server(back[port], "ssl" in tcp[0][1:] or ssl_on, host.lstrip(".")))
    return out


def probes_of(case: str, servers: list[Server]) -> list[Probe]:
    header = read_header(CORPUS / case / "nginx.conf")
    out: list[Probe] = []

    def host_header(host: str, port: int, tls: bool) -> str:
        return host if port == (443 if tls else 80) else f"{host}:{port}"

    for i, srv in enumerate(servers):
        out.append(
            Probe(
                f"server {i} {srv.host}:{srv.key[1]} GET /",
                srv.key,
                srv.tls,
                host_header(srv.host, srv.key[1], srv.tls),
                srv.host,
                "/",
                False,
                "",
            )
        )
    urls = [(u, True) for u in header.ws + [u for _, u in header.ws_lenient]]
    urls += [(u, False) for u in header_lines(case, "get")]
    for url, ws in urls:
        parts = urlsplit(url)
        tls = parts.scheme in ("https", "wss")
        port = parts.port or (443 if tls else 80)
        host = parts.hostname or "localhost"
        key = next((s.key for s in servers if s.key[1] == port), (False, port))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        netloc = parts.netloc.rpartition("@")[2]
        auth = ""
        if parts.username is not None:
            pair = f"{parts.username}:{parts.password or ''}".encode()
            auth = "Basic " + base64.b64encode(pair).decode()
        out.append(Probe(f"GET {url}", key, tls, netloc, host, path or "/", False, auth))
        if ws:
            out.append(Probe(f"upgrade {url}", key, tls, netloc, host, path or "/", True, auth))
    return out


def _for_nginx(conf: Path, tmp: Path) -> Path:
    """What oracle.py gives nginx: foreground, one process, everything it
    writes inside the case's folder (Debian's defaults live in /run and /var).
    Returns where its pid file will be."""
    payload = crossplane.parse(
        str(conf), single=True, comments=False, strict=False, check_ctx=False, check_args=False
    )
    tree = payload["config"][0]["parsed"]
    # one process: without a master, nginx polls only worker 0's copy of a
    # ``reuseport`` socket, and the others' connections would never be accepted
    tree = [
        s for s in tree if s["directive"] not in ("daemon", "master_process", "worker_processes")
    ]
    head = [
        {"directive": "daemon", "args": ["off"]},
        {"directive": "master_process", "args": ["off"]},
        {"directive": "worker_processes", "args": ["1"]},
    ]
    pid = next((s["args"][0] for s in tree if s["directive"] == "pid"), None)
    if pid is None:
        pid = str(tmp / "logs" / "nginx.pid")
        head.append({"directive": "pid", "args": [pid]})
    for stmt in tree:
        if stmt["directive"] != "http":
            continue
        have = {s["directive"] for s in stmt["block"]}
        extra = [
            {"directive": name, "args": [str(tmp / "temp" / name)]}
            for name in (
                "client_body_temp_path",
                "proxy_temp_path",
                "fastcgi_temp_path",
                "uwsgi_temp_path",
                "scgi_temp_path",
            )
            if name not in have
        ]
        if "access_log" not in have:
            extra.append({"directive": "access_log", "args": [str(tmp / "logs" / "access.log")]})
        stmt["block"] = extra + stmt["block"]
    conf.write_text(crossplane.build(head + tree, indent=4, header=False) + "\n")
    return Path(pid) if Path(pid).is_absolute() else tmp / pid


def _wait_ports(proc: subprocess.Popen[bytes], addresses: list[tuple[str, int]]) -> str:
    deadline = time.monotonic() + 20
    for address in addresses:
        while True:
            if proc.poll() is not None:
                return f"exited with {proc.returncode}"
            try:
                with socket.create_connection(address, timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    return f"not listening on {address}"
                time.sleep(0.05)
    return ""


class Side:
    def __init__(self, case: str, kind: str, pki: dict[str, Path], root: Path) -> None:
        self.case = case
        self.kind = kind
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))
        upstream = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        upstream.load_cert_chain(str(pki["upstream_cert"]), str(pki["upstream_key"]))
        self.plain = RecordingBackend("plain")
        self.secure = TLSRecordingBackend("tls", upstream)
        self.unix = RecordingBackend("unix", unix=str(self.tmp / "app.sock"))
        self.backends = [self.plain, self.secure, self.unix]
        self.local = localize(
            case,
            self.tmp,
            Backends(self.plain.port, self.secure.port, str(self.tmp / "app.sock")),
            pki,
            for_nginx=kind == "nginx",
        )
        self.pid_file = self.tmp / "logs" / "nginx.pid"
        if kind == "nginx":
            self.pid_file = _for_nginx(self.local.conf, self.tmp)
        self.proc: subprocess.Popen[bytes] | None = None
        self.client_port = 0

    def check(self) -> tuple[bool, str]:
        if self.kind == "nginx":
            assert NGINX is not None
            done = subprocess.run(
                [NGINX, "-t", "-p", str(self.tmp), "-c", str(self.local.conf),
                 "-e", str(self.tmp / "logs" / "t.log")],
                capture_output=True,
                text=True,
                timeout=30,
            )
        else:
            done = ngxws_check(self.local.conf, self.local.prefix)
        return done.returncode == 0, self._paths(done.stderr)

    def start(self, servers: list[Server]) -> str:
        if self.kind == "nginx":
            assert NGINX is not None
            cmd = [NGINX, "-p", str(self.tmp), "-c", str(self.local.conf),
                   "-e", str(self.tmp / "logs" / "stderr.log")]
        else:
            cmd = [sys.executable, "-m", "ngxws", "run", "-c", str(self.local.conf),
                   "-p", str(self.tmp)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        problem = _wait_ports(self.proc, sorted({self.local.address(s.key[1]) for s in servers}))
        if not problem and self.kind == "nginx":
            # the ports answer; nginx's own only once it wrote its pid file
            problem = wait_pid_file(self.proc, self.pid_file)
        return problem

    def stop(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            err = b""
        log = self.tmp / "logs" / "stderr.log"  # nginx's -e
        return err.decode(errors="replace") + (log.read_text(errors="replace") if log.exists() else "")

    def close(self) -> None:
        for b in self.backends:
            b.close()

    def address(self, key: tuple[bool, int]) -> tuple[str, int]:
        if key in self.local.ports:
            return ("::1" if key[0] else "127.0.0.1", self.local.ports[key])
        return self.local.address(key[1])

    def _paths(self, text: str) -> str:
        text = text.replace(str(self.tmp), "@DIR@")
        for (v6, port), local in self.local.ports.items():
            text = re.sub(rf"\b{local}\b", f"@L{port}{'v6' if v6 else ''}@", text)
        return text

    def normalise(self, text: str) -> str:
        text = self._paths(text)
        for b in (self.plain, self.secure):
            text = re.sub(rf"\b{b.port}\b", f"@B{b.name}@", text)
        if self.client_port:
            text = re.sub(rf"\b{self.client_port}\b", "@CPORT@", text)
        return re.sub(r"\b[0-9a-f]{32}\b", "@REQID@", text)

    def probe(self, p: Probe) -> object:
        for b in self.backends:
            b.take()
        family = socket.AF_INET6 if p.key[0] and p.key in self.local.ports else socket.AF_INET
        sock = socket.socket(family)
        sock.settimeout(5)
        try:
            sock.connect(self.address(p.key))
            self.client_port = sock.getsockname()[1]
            if p.tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock, server_hostname=p.sni)
            extra = f"Authorization: {p.auth}\r\n" if p.auth else ""
            if p.ws:
                request = upgrade(p.path, p.host, extra)
            else:
                request = (
                    f"GET {p.path} HTTP/1.1\r\nHost: {p.host}\r\nUser-Agent: corpus/1\r\n"
                    f"Accept: */*\r\n{extra}Connection: close\r\n\r\n"
                ).encode("latin-1")
            sock.sendall(request)
            resp, buf = _read_response(sock, b"", False)
            if resp is None:
                return ("no response (closed)", self._records())
            headers = {n.lower(): v for n, v in resp.headers}
            seen: dict[str, object] = {
                "status": resp.status,
                "location": self.normalise(headers.get("location", "")),
                "upgrade": headers.get("upgrade", "").lower(),
                "x-backend": headers.get("x-backend", ""),
            }
            if resp.status == 101:
                sock.sendall(WS_FRAME)
                got = read_at_least(sock, buf, len(WS_FRAME))
                seen["echo"] = got == WS_FRAME
            seen["backend"] = self._records()
            return seen
        except OSError as exc:
            return ("error", type(exc).__name__, self._records())
        finally:
            sock.close()
            self.client_port = 0

    def _records(self) -> list[object]:
        # a backend records the head before it answers; the answer is read
        time.sleep(0.01)
        out: list[object] = []
        for b in self.backends:
            for r in b.take():
                out.append((b.name, self.normalise(r.head.decode("latin-1")), r.body))
        return out


@dataclass
class CaseResult:
    nginx: SideResult
    ngxws: SideResult
    seconds: float


def run_side(side: Side, probes_for: list[Probe] | None, servers: list[Server]) -> SideResult:
    result = SideResult()
    result.check_ok, result.check_text = side.check()
    if not result.check_ok or probes_for is None:
        return result
    problem = side.start(servers)
    try:
        if problem:
            result.error = f"{side.kind} {problem}"
            return result
        for p in probes_for:
            result.answers.append((p.label, side.probe(p)))
        assert side.proc is not None
        if side.proc.poll() is not None:
            # the server died under the probes (nginx gives up a listen port it
            # could not bind after 2.5 s): whatever answered was not this side
            problem = f"exited with {side.proc.returncode} while probed"
            result.error = f"{side.kind} {problem}"
    finally:
        err = side.stop()
        if problem:
            result.error += "\n" + side._paths(err)
    return result


def run_case(case: str, pki: dict[str, Path], root: Path) -> CaseResult:
    start = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix=f"{case.strip('.') or 'top'}-", dir=root))
    nginx = Side(case, "nginx", pki, folder)
    ngxws = Side(case, "ngxws", pki, folder)
    try:
        servers = servers_of(nginx.local.conf, nginx.local.ports)
        probes = probes_of(case, servers)
        results: dict[str, SideResult] = {}

        def go(side: Side) -> None:
            results[side.kind] = run_side(side, probes, servers)

        thread = threading.Thread(target=go, args=(nginx,))
        thread.start()
        go(ngxws)
        thread.join(60)
        return CaseResult(results["nginx"], results["ngxws"], time.monotonic() - start)
    finally:
        nginx.close()
        ngxws.close()


# --------------------------------------------------------------------------
# fixtures and tests
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus_pki(trustme.CA(), tmp_path_factory.mktemp("corpus-diff-pki"))


ORACLE_CASES = oracle_cases() if NGINX is not None else []


@pytest.fixture(scope="module")
def corpus_run(
    request: pytest.FixtureRequest, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, CaseResult]]:
    # only the cases this session selected (``-k``)
    wanted = {
        item.callspec.params["case"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.path == Path(__file__)
        and item.originalname == "test_case_same_as_nginx"
    }
    root = tmp_path_factory.mktemp("corpus-diff")
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {c: pool.submit(run_case, c, pki, root) for c in ORACLE_CASES if c in wanted}
        yield {c: f.result(timeout=300) for c, f in futures.items()}


def _param(case: str) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=NEEDS[case][0])] if case in NEEDS else []
    return pytest.param(case, id=case, marks=marks)


def test_needs_table_names_real_cases() -> None:
    assert set(NEEDS) <= set(ORACLE_CASES)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", [_param(c) for c in ORACLE_CASES])
def test_case_same_as_nginx(case: str, corpus_run: dict[str, CaseResult]) -> None:
    got = corpus_run[case]
    if case in REFUSED:  # a deliberate difference: nginx -t accepts, ngxws check refuses (fail closed)
        assert got.nginx.check_ok, got.nginx.check_text
        assert not got.ngxws.check_ok and REFUSED[case][0] in got.ngxws.check_text, got.ngxws.check_text
        return
    assert got.nginx.check_ok == got.ngxws.check_ok, (
        f"nginx -t: {got.nginx.check_text}\nngxws check: {got.ngxws.check_text}"
    )
    assert got.nginx.check_ok, got.nginx.check_text
    assert not got.nginx.error, got.nginx.error
    assert not got.ngxws.error, got.ngxws.error
    assert got.nginx.answers, "no probe"
    for (label, theirs), (_, ours) in zip(got.nginx.answers, got.ngxws.answers, strict=True):
        assert ours == theirs, f"{label}\n nginx: {theirs}\n ngxws: {ours}"
