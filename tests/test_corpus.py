"""The real-world corpus: configs people actually run, each passed through
``ngxws check`` and exercised by a websocket round trip through ngxws.

Every case under ``tests/configs/realworld/`` (its ``nginx.conf`` and
whatever it includes; the top-level ``nginx.conf`` is the module README's
example) is kept as its author would deploy it -- ports 80/443, backends on
private addresses or compose/Kubernetes names, certificates under
``/etc/letsencrypt``.  Its header says what to try::

    # follows: owner/repo path/to/file     (the public config it follows)
    # ws: wss://chat.example.com/ws        (one or more websocket URLs)
    # ws-lenient: 505 ws://a.example/ws    (a websocket URL whose upgrade a
    #                                       strict server refuses with 505/426)
    # get: https://chat.example.com/x      (more paths the differential GETs)
    # stat: https://admin.example.com/st   (ws_stat pages, optional)
    # nginx: 1.25.1                        (newest nginx syntax it uses)

``configs/realworld/SOURCES.md`` names what each case follows and what
it exercises; ``test_corpus_differential.py`` runs them against nginx.

The ``nginx -t`` cross-check is only generated for the cases the installed
reference nginx can read (``NGINX_CASES``): a case whose ``nginx:`` header
is newer is left out of that test's parameters rather than skipped.  Today
that is ``http2-on-modern`` (``http2 on;`` is nginx 1.25.1; Debian ships
1.22.1); ngxws still checks and proxies it like every other case.

``localize()`` copies a case into a temporary folder and rewrites, through
crossplane, only what ties it to its home machine: listen addresses become
free loopback ports, backends (upstream peers, ``proxy_pass`` hosts,
``uwsgi_pass`` & co., ``set`` values shaped like a port or ``host:port``)
become local ``websockets`` echo servers (TLS ones for ``https://``),
certificates become ``trustme`` ones, absolute paths
the case ships (``/etc/nginx/...``, ``/etc/letsencrypt/...``) point into the
copy (``root``/``alias`` it does not ship: an empty place), log, pid,
temp and cache paths into the temporary folder.  Everything else reaches
ngxws as written.
"""

from __future__ import annotations

import asyncio
import glob
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import crossplane
import pytest
import trustme
from harness import ROOT, Ngxws, parse_stats, served_in_thread, wait_for, ws_backend
from ports import free_port
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, unix_serve
from websockets.exceptions import InvalidStatus

CORPUS = Path(__file__).parent / "configs" / "realworld"
CASES = sorted(
    ["."] + [p.name for p in CORPUS.iterdir() if p.is_dir() and (p / "nginx.conf").exists()]
)
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

LOG_DIRECTIVES = {"error_log", "access_log", "ws_log", "pid"}
TEMP_DIRECTIVES = {
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
}
CACHE_DIRECTIVES = {"proxy_cache_path", "fastcgi_cache_path", "uwsgi_cache_path", "scgi_cache_path"}
CA_DIRECTIVES = {
    "ssl_trusted_certificate",
    "ssl_client_certificate",
    "proxy_ssl_trusted_certificate",
}
OTHER_PASS_DIRECTIVES = {"uwsgi_pass", "fastcgi_pass", "scgi_pass", "grpc_pass"}
DOCUMENT_DIRECTIVES = {"root", "alias"}
SHIPPED_PATH_DIRECTIVES = {"include", "ssl_dhparam", "auth_basic_user_file", "ssl_stapling_file"}


# --------------------------------------------------------------------------
# the case header
# --------------------------------------------------------------------------


@dataclass
class Header:
    description: str
    ws: list[str] = field(default_factory=list)
    # websocket URLs whose upgrade a strict RFC 6455 server refuses, with
    # the status it refuses with (505: the location sends it upstream as
    # HTTP/1.0; 426: it sends Upgrade twice); they work with a lenient one
    ws_lenient: list[tuple[int, str]] = field(default_factory=list)
    stat: list[str] = field(default_factory=list)
    nginx: tuple[int, ...] = (0,)


def read_header(conf: Path) -> Header:
    header = Header("")
    for line in conf.read_text().splitlines():
        if not line.startswith("#"):
            break
        m = re.match(r"#\s*(corpus|ws|ws-lenient|stat|nginx):\s*(.*)", line)
        if not m:
            continue
        key, value = m.groups()
        if key == "corpus":
            header.description = value
        elif key == "ws-lenient":
            status, url = value.split()
            header.ws_lenient.append((int(status), url))
        elif key == "nginx":
            header.nginx = tuple(int(x) for x in value.split("."))
        else:
            getattr(header, key).append(value.strip())
    return header


# --------------------------------------------------------------------------
# localize: the rewrite
# --------------------------------------------------------------------------


@dataclass
class Backends:
    """Where rewritten backends point: plain and TLS websocket echo servers
    on loopback ports, and a unix-socket one."""

    plain: int
    tls: int
    unix: str


@dataclass
class Localized:
    conf: Path
    prefix: Path
    ports: dict[tuple[bool, int], int]  # (IPv6?, port as written) -> loopback port
    server_names: set[str]

    def address(self, port: int) -> tuple[str, int]:
        """Where the config's ``listen ... port`` now listens."""
        if (False, port) in self.ports:
            return "127.0.0.1", self.ports[(False, port)]
        return "::1", self.ports[(True, port)]

    def addresses(self, port: int) -> list[tuple[str, int]]:
        """Every socket of ``listen ... port``: IPv4, and IPv6 where listened."""
        out = [("127.0.0.1", self.ports[(False, port)])] if (False, port) in self.ports else []
        if (True, port) in self.ports:
            out.append(("::1", self.ports[(True, port)]))
        return out


def _conf_files(folder: Path) -> list[Path]:
    skip = (".pem", ".crt", ".key", ".txt", ".md", "dhparam", "mime.types")
    return [
        Path(root) / name
        for root, _, names in os.walk(folder)
        for name in names
        if not name.endswith(skip)
    ]


def _parse(path: Path) -> list[dict[str, Any]] | None:
    payload = crossplane.parse(
        str(path), single=True, comments=False, strict=False, check_ctx=False, check_args=False
    )
    if payload["status"] != "ok":
        return None
    parsed: list[dict[str, Any]] = payload["config"][0]["parsed"]
    return parsed


def _walk(
    block: list[dict[str, Any]], parents: tuple[str, ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    for stmt in block:
        yield stmt, parents
        if "block" in stmt:
            yield from _walk(stmt["block"], (*parents, stmt["directive"]))


def _split_listen(addr: str) -> tuple[bool, int]:
    """``listen`` address -> (IPv6?, port)."""
    if addr.startswith("["):
        rest = addr[addr.index("]") + 1 :]
        return True, int(rest[1:]) if rest.startswith(":") else 80
    if addr.isdigit():
        return False, int(addr)
    if ":" in addr:
        return False, int(addr.rsplit(":", 1)[1])
    return False, 80


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class _Rewriter:
    def __init__(
        self, root: Path, tmp: Path, backends: Backends, certs: dict[str, Path], for_nginx: bool
    ) -> None:
        self.root = root
        self.tmp = tmp
        self.backends = backends
        self.certs = certs
        self.for_nginx = for_nginx
        self.ports: dict[tuple[bool, int], int] = {}
        self.upstreams: set[str] = set()
        self.tls_upstreams: set[str] = set()
        self.server_names: set[str] = set()

    # pass 1: names
    def survey(self, trees: list[list[dict[str, Any]]]) -> None:
        for tree in trees:
            for stmt, _ in _walk(tree):
                name, args = stmt["directive"], stmt["args"]
                if name == "upstream" and args:
                    self.upstreams.add(args[0])
                elif name == "server_name":
                    self.server_names.update(
                        a for a in args if a not in ("_", "") and not a.startswith("~")
                    )
        for tree in trees:
            for stmt, _ in _walk(tree):
                if stmt["directive"] == "proxy_pass" and stmt["args"][0].startswith("https://"):
                    host = urlsplit(stmt["args"][0]).hostname or ""
                    if host in self.upstreams:
                        self.tls_upstreams.add(host)

    # pass 2: rewrite
    def rewrite(
        self, block: list[dict[str, Any]], parents: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for stmt in block:
            name, args = stmt["directive"], stmt["args"]
            if self.for_nginx and (name.startswith("ws_") or name in ("load_module", "user")):
                continue  # the module's lines; a module file and a user nginx lacks here
            stmt = dict(stmt, args=list(args))
            if name == "listen":
                stmt["args"] = self._listen(stmt["args"])
            elif name == "server" and parents and parents[-1] == "upstream":
                stmt["args"][0] = self._peer(stmt["args"][0])
            elif name == "proxy_pass":
                stmt["args"][0] = self._proxy_pass(stmt["args"][0])
            elif name == "set" and len(args) == 2:
                stmt["args"][1] = self._set_value(args[1])
            elif name in OTHER_PASS_DIRECTIVES and args:
                stmt["args"][0] = self._other_pass(args[0])
            elif name == "ssl_certificate":
                stmt["args"] = [str(self.certs["cert"])]
            elif name == "ssl_certificate_key":
                stmt["args"] = [str(self.certs["key"])]
            elif name in CA_DIRECTIVES:
                stmt["args"] = [str(self.certs["ca"])]
            elif (
                name in LOG_DIRECTIVES
                and args
                and args[0].startswith("/")
                and not args[0].startswith("/dev/")
            ):
                stmt["args"][0] = str(self.tmp / "logs" / Path(args[0]).name)
            elif name in CACHE_DIRECTIVES and args:
                # a cache on disk outlives the run: each run gets its own
                stmt["args"][0] = str(self.tmp / "cache" / Path(args[0]).name)
            elif name in TEMP_DIRECTIVES and args:
                stmt["args"] = [str(self.tmp / "temp" / Path(args[0]).name)]
            elif name in SHIPPED_PATH_DIRECTIVES and args and args[0].startswith("/"):
                stmt["args"][0] = self._shipped(args[0])
            elif name in DOCUMENT_DIRECTIVES and args and args[0].startswith("/"):
                # the case's copy of its documents when it ships one, else an
                # empty place: never the files of the machine running the test
                shipped = self._shipped(args[0])
                stmt["args"][0] = shipped if shipped != args[0] else str(self.tmp / "www") + args[0]
            elif name == "resolver":
                # a resolver given by name must resolve when nginx starts
                stmt["args"] = [
                    a if "=" in a or _is_ip(a.split(":")[0]) else "127.0.0.1" for a in args
                ]
            if "block" in stmt:
                stmt["block"] = self.rewrite(stmt["block"], (*parents, name))
            out.append(stmt)
        return out

    def _listen(self, args: list[str]) -> list[str]:
        addr, params = args[0], args[1:]
        if addr.startswith("unix:"):
            return [f"unix:{self.tmp}/listen-{len(self.ports)}.sock", *params]
        ipv6, port = _split_listen(addr)
        if ipv6 and "ipv6only=off" in params:
            ipv6 = False  # dual stack: the IPv4 side is what a test reaches
            params = [p for p in params if p != "ipv6only=off"]
        key = (ipv6, port)
        if key not in self.ports:
            self.ports[key] = free_port(socket.AF_INET6 if ipv6 else socket.AF_INET)
        host = "[::1]" if ipv6 else "127.0.0.1"
        return [f"{host}:{self.ports[key]}", *params]

    def _peer(self, addr: str) -> str:
        if addr.startswith("unix:"):
            return f"unix:{self.backends.unix}"
        return f"127.0.0.1:{self.backends.plain}"

    def _proxy_pass(self, url: str) -> str:
        m = re.match(r"(https?)://(unix:[^:]+:?|[^/]+)(.*)$", url)
        if not m:
            return url
        scheme, host, rest = m.groups()
        if "$" in host:
            return url
        if host.startswith("unix:"):
            return (
                f"{scheme}://unix:{self.backends.unix}:{rest}"
                if rest
                else f"{scheme}://unix:{self.backends.unix}"
            )
        if host in self.upstreams:
            return url
        port = self.backends.tls if scheme == "https" else self.backends.plain
        return f"{scheme}://127.0.0.1:{port}{rest}"

    def _set_value(self, value: str) -> str:
        """``set $port 8080;`` / ``set $backend app:3000;`` feeding a
        ``proxy_pass`` with variables: the same backend, seen through it."""
        if re.fullmatch(r"\d{2,5}", value):
            return str(self.backends.plain)
        m = re.fullmatch(r"(https?://)?([\w.-]+):(\d{2,5})(/.*)?", value)
        if m:
            scheme, _, _, rest = m.groups()
            return f"{scheme or ''}127.0.0.1:{self.backends.plain}{rest or ''}"
        return value

    def _other_pass(self, addr: str) -> str:
        """``uwsgi_pass host:port`` & co.: the plain backend (it will not
        speak their protocol; what matters is that both sides reach it)."""
        if "$" in addr or addr in self.upstreams:
            return addr
        if addr.startswith("unix:"):
            return f"unix:{self.backends.unix}"
        scheme = addr.split("://", 1)[0] + "://" if "://" in addr else ""
        return f"{scheme}127.0.0.1:{self.backends.plain}"

    def _shipped(self, path: str) -> str:
        """An absolute path the case ships a copy of -> that copy."""
        rel = path[len("/etc/nginx/") :] if path.startswith("/etc/nginx/") else path.lstrip("/")
        candidate = self.root / rel
        if glob.glob(str(candidate)) or candidate.parent.is_dir():
            return str(candidate)
        return path

    def fix_upstream_peers(self, trees: list[list[dict[str, Any]]]) -> None:
        """Peers of upstreams that are reached over https go to the TLS backend."""
        for tree in trees:
            for stmt, _ in _walk(tree):
                if stmt["directive"] == "upstream" and stmt["args"][0] in self.tls_upstreams:
                    for peer in stmt.get("block", []):
                        if peer["directive"] == "server":
                            peer["args"][0] = f"127.0.0.1:{self.backends.tls}"


def localize(
    case: str, tmp: Path, backends: Backends, certs: dict[str, Path], for_nginx: bool = False
) -> Localized:
    """Copy ``case`` into ``tmp/conf`` and rewrite it to run here (see the module doc)."""
    src = CORPUS / case
    root = tmp / "conf"
    if case == ".":
        root.mkdir(parents=True)
        shutil.copy(src / "nginx.conf", root / "nginx.conf")
    else:
        shutil.copytree(src, root)
    for sub in ("logs", "temp", "cache"):
        (tmp / sub).mkdir(exist_ok=True)
    rw = _Rewriter(root, tmp, backends, certs, for_nginx)
    files = [(p, _parse(p)) for p in _conf_files(root)]
    trees = [t for _, t in files if t is not None]
    rw.survey(trees)
    for path, tree in files:
        if tree is None:
            continue
        new = rw.rewrite(tree)
        rw.fix_upstream_peers([new])
        path.write_text(crossplane.build(new, indent=4, header=False) + "\n")
    return Localized(root / "nginx.conf", tmp, rw.ports, rw.server_names)


# --------------------------------------------------------------------------
# backends and certificates
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def corpus_names(pattern: str) -> list[str]:
    """Every literal name ``pattern`` captures in the corpus (one certificate
    per side serves them all)."""
    names: set[str] = set()
    for case in CASES:
        folder = CORPUS / case
        for path in [folder / "nginx.conf"] if case == "." else _conf_files(folder):
            for m in re.finditer(pattern, path.read_text()):
                names.update(n for n in m.group(1).split() if n != "_" and n[0] not in "~$")
    return sorted(names)


SERVER_NAMES = r"(?m)^\s*server_name\s+([^;]+);"
# what an https upstream's certificate is checked against: proxy_ssl_name or the host
UPSTREAM_NAMES = r"(?m)^\s*(?:proxy_ssl_name\s+|proxy_pass\s+https://)([^;/:\s]+)"


def write_corpus_pki(ca: trustme.CA, folder: Path) -> dict[str, Path]:
    """One CA's certificates for every server name and https upstream the
    corpus names (shared by the differential corpus test)."""
    server = ca.issue_cert(*corpus_names(SERVER_NAMES), "localhost", "127.0.0.1")
    upstream = ca.issue_cert(*corpus_names(UPSTREAM_NAMES), "localhost", "127.0.0.1")
    paths = {
        "ca": folder / "ca.pem",
        "cert": folder / "server.crt",
        "key": folder / "server.key",
        "upstream_cert": folder / "upstream.crt",
        "upstream_key": folder / "upstream.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["cert"].write_bytes(b"".join(p.bytes() for p in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(paths["key"]))
    paths["upstream_cert"].write_bytes(b"".join(p.bytes() for p in upstream.cert_chain_pems))
    upstream.private_key_pem.write_to_path(str(paths["upstream_key"]))
    return paths


@pytest.fixture(scope="module")
def certs(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus_pki(ca, tmp_path_factory.mktemp("corpus-pki"))


@contextmanager
def unix_ws_backend(path: str) -> Iterator[str]:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    with served_in_thread(lambda: unix_serve(echo, path)):
        yield path


@pytest.fixture(scope="module")
def backends(
    certs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backends]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(certs["upstream_cert"]), str(certs["upstream_key"]))
    sock = str(tmp_path_factory.mktemp("corpus-unix") / "app.sock")
    with ExitStack() as stack:
        plain = stack.enter_context(ws_backend())
        secure = stack.enter_context(ws_backend(ssl=tls))
        stack.enter_context(unix_ws_backend(sock))
        yield Backends(plain, secure, sock)


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------


def client_context(certs: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs["ca"]))


async def ws_echo(url: str, address: tuple[str, int], ctx: ssl.SSLContext) -> None:
    tls = url.startswith("wss://")
    async with connect(
        url,
        host=address[0],
        port=address[1],
        ssl=ctx if tls else None,
        compression=None,
        open_timeout=5,
    ) as ws:
        for message in ("corpus", b"\x00\x01" * 100):
            await ws.send(message)
            assert await ws.recv() == message


def http_get(url: str, address: tuple[str, int], ctx: ssl.SSLContext) -> tuple[int, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    raw = socket.create_connection(address, timeout=5)
    conn: socket.socket = (
        ctx.wrap_socket(raw, server_hostname=host) if parts.scheme == "https" else raw
    )
    with conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def default_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme in ("https", "wss") else 80)


def ngxws_check(conf: Path, prefix: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ngxws", "check", "-c", str(conf), "-p", str(prefix), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


# --------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------


def test_corpus_is_big_enough_and_every_case_says_what_to_try() -> None:
    assert len(CASES) >= 50
    for case in CASES:
        header = read_header(CORPUS / case / "nginx.conf")
        assert header.description and (header.ws or header.ws_lenient), case


# Cases that disagree with nginx today because ngxws lacks a feature:
# case -> (reason, whether the websocket round trip through ngxws alone
# fails too).  test_corpus_differential.py marks the first kind strict
# xfail, this file the second; each flips to a failure when the feature
# lands and must then leave this table.  What differs exactly is listed
# in configs/realworld/SOURCES.md.
NEEDS: dict[str, tuple[str, bool]] = {}

# Cases nginx -t accepts and ngxws check refuses on purpose (fail closed: a
# content handler ngxws cannot run would otherwise answer 404 where nginx
# serves): case -> (the refusal, the --allow-unenforced name that runs the
# case anyway, its location then answering 502).  Listed in SOURCES.md.
REFUSED: dict[str, tuple[str, str]] = {
    "django-daphne-uwsgi": (
        '[emerg] "uwsgi_pass" is not supported by ngxws (the uwsgi protocol is not implemented) in ',
        "uwsgi_pass",
    ),
}


def _ngxws_param(case: str) -> object:
    reason, breaks_ws = NEEDS.get(case, ("", False))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if breaks_ws else []
    return pytest.param(case, id=case, marks=marks)


def test_sources_table_names_every_case_and_what_it_follows() -> None:
    table = (CORPUS / "SOURCES.md").read_text()
    following = 0
    for case in CASES:
        name = "`nginx.conf` (top)" if case == "." else f"`{case}`"
        row = next((r for r in table.splitlines() if r.startswith(f"| {name} |")), None)
        assert row is not None, case
        head = (CORPUS / case / "nginx.conf").read_text()
        m = re.search(r"(?m)^# follows: (\S+) (\S+)$", head)
        if m:
            following += 1
            assert f"| {m.group(1)} | `{m.group(2)}` |" in row, case
    assert following >= 50
    assert set(NEEDS) <= set(CASES)
    assert set(REFUSED) <= set(CASES)


@pytest.mark.parametrize("case", [_ngxws_param(c) for c in CASES])
def test_case_checks_and_proxies_a_websocket(
    case: str, tmp_path: Path, backends: Backends, certs: dict[str, Path]
) -> None:
    header = read_header(CORPUS / case / "nginx.conf")
    local = localize(case, tmp_path, backends, certs)
    refusal, allow = REFUSED.get(case, ("", ""))
    opt_in = ("--allow-unenforced", allow) if allow else ()
    if refusal:
        refused = ngxws_check(local.conf, local.prefix)
        assert refused.returncode == 1, refused.stderr
        assert refusal in refused.stderr, refused.stderr
    checked = ngxws_check(local.conf, local.prefix, *opt_in)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr

    first = local.address(default_port((header.ws + [u for _, u in header.ws_lenient])[0]))
    ctx = client_context(certs)
    px = Ngxws(local.conf, local.prefix, first[1], args=opt_in)
    try:
        sessions = 0
        for url in header.ws:
            for address in local.addresses(default_port(url)):  # dual stack: both sides
                asyncio.run(asyncio.wait_for(ws_echo(url, address, ctx), 15))
                sessions += 1
        for status, url in header.ws_lenient:
            # the location forwards the upgrade as nginx 1.22 does (HTTP/1.0
            # without proxy_http_version, or Upgrade twice): the strict echo
            # server refuses it, and that refusal must reach the client (the
            # differential test does the round trip with a lenient backend)
            with pytest.raises(InvalidStatus) as refused:
                asyncio.run(asyncio.wait_for(ws_echo(url, local.address(default_port(url)), ctx), 15))
            assert refused.value.response.status_code == status
        for url in header.stat:
            address = local.address(default_port(url))
            if "format=prometheus" in url:
                status, body = http_get(url, address, ctx)
                assert status == 200, body
                assert re.search(r"(?m)^nginx_websocket_connections_active \d+$", body), body
                continue

            def settled(url: str = url, address: tuple[str, int] = address) -> bool:
                return parse_stats(http_get(url, address, ctx)[1])["active"] == 0

            assert wait_for(settled)
            status, body = http_get(url, address, ctx)
            assert status == 200
            stats = parse_stats(body)
            # two data frames and a close frame per session, each way (several
            # workers may have carried them; the page sums every worker)
            assert stats["client_frames"] == 3 * sessions, body
            assert stats["upstream_frames"] == 3 * sessions, body
    finally:
        code, _, err = px.stop()
    assert code == 0, err


def _nginx_version() -> tuple[int, ...]:
    if NGINX is None:
        return (0,)
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr
    m = re.search(r"nginx/(\d+(?:\.\d+)*)", out)
    return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)


# The cases the reference nginx can read (see the module docstring): a case
# whose "# nginx:" header is newer than the installed binary gets no nginx -t
# comparison at all -- not a skipped one.
NGINX_VERSION = _nginx_version()
NGINX_CASES = [c for c in CASES if read_header(CORPUS / c / "nginx.conf").nginx <= NGINX_VERSION]


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", NGINX_CASES)
def test_case_without_ws_lines_passes_nginx(
    case: str, tmp_path: Path, backends: Backends, certs: dict[str, Path]
) -> None:
    """Keeps the corpus honest: minus the module's lines, each case is a
    config the reference nginx accepts (``nginx -t``) after the same rewrite."""
    local = localize(case, tmp_path, backends, certs, for_nginx=True)
    assert NGINX is not None
    done = subprocess.run(
        [
            NGINX,
            "-t",
            "-c",
            str(local.conf),
            "-p",
            str(local.prefix),
            "-e",
            str(tmp_path / "logs" / "t.log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
