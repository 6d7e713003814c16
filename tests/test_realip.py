"""Issue 12 items 2-4: realip and the PROXY protocol (pure cores, table
tests), listen socket options (really set on a bound socket; validity as
``nginx -t`` judges it), ``stream {}`` blocks reported and not served, and
the ws log's ``$remote_addr`` behind a trusted proxy (a real ngxws, a real
``websockets`` backend).  The behaviour against nginx itself is in
``tests/differential/cases_realip.py``."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, free_port, ngxws, read_head, upgrade_request, wait_for, ws_backend

from ngxws.config.listen_params import parse_listen_params
from ngxws.config.loader import ConfigError, load_config
from ngxws.config.model import Listen, RealIP, SocketOptions
from ngxws.http.realip import ClientAddress, forwarded_addr, parse_addr_port, trusted_source
from ngxws.listeners import bind_listen
from ngxws.proxy_protocol import Broken, Incomplete, Preface, ProxyHeader, read_preface

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _v2(src: str, dst: str, sport: int, dport: int, command: int = 1, extra: bytes = b"") -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    body = a.packed + b.packed + struct.pack("!HH", sport, dport) + extra
    family = 0x11 if a.version == 4 else 0x21
    return SIG + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


# -- the PROXY preface ------------------------------------------------------------

PREFACES: list[tuple[bytes, object]] = [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\nGET", Preface(36, ProxyHeader("1.2.3.4", 111, "5.6.7.8", 222))),
    (b"PROXY TCP6 ::1 ::2 1 2\r\n", Preface(24, ProxyHeader("::1", 1, "::2", 2))),
    (b"PROXY UNKNOWN\r\n", Preface(15, None)),
    (b"PROXY UNKNOWN whatever here\r\nGET", Preface(29, None)),
    (b"PROXY TCP4 abc 1.2.3.4 5 6\r\n", Preface(28, ProxyHeader("abc", 5, "1.2.3.4", 6))),
    (_v2("10.0.0.1", "10.0.0.2", 80, 443), Preface(28, ProxyHeader("10.0.0.1", 80, "10.0.0.2", 443))),
    (_v2("2001:db8::1", "::ffff:1.2.3.4", 1, 2), Preface(52, ProxyHeader("2001:db8::1", 1, "::ffff:1.2.3.4", 2))),
    (_v2("10.0.0.1", "10.0.0.2", 80, 443, extra=b"\x04\x00\x01x"), Preface(32, ProxyHeader("10.0.0.1", 80, "10.0.0.2", 443))),
    (_v2("10.0.0.1", "10.0.0.2", 80, 443, command=0), Preface(28, None)),
    (SIG + b"\x21\x31\x00\x00", Preface(16, None)),  # AF_UNIX: accepted, no address
    (b"PROX", Incomplete()),
    (b"PROXY TCP4 1.2.3.4", Incomplete()),
    (SIG[:5], Incomplete()),
    (SIG + b"\x21\x11\x00\x0c\x01", Incomplete()),
    (b"GET / HTTP/1.1\r\n", Broken('broken header: "GET / HTTP/1.1\r\n"')),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 111 222\n", Broken('broken header: "PROXY TCP4 1.2.3.4 5.6.7.8 111 222\n"')),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 111 99999\r\n", Broken('broken header: "PROXY TCP4 1.2.3.4 5.6.7.8 111 99999\r\n"')),
    (b"PROXY TCP4 1.2.3.g 5.6.7.8 1 2\r\n", Broken('broken header: "PROXY TCP4 1.2.3.g 5.6.7.8 1 2\r\n"')),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Broken('broken header: "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"')),
    (SIG + b"\x11\x11\x00\x00", Broken("unknown PROXY protocol version: 1")),
    (SIG + b"\x21\x11\x00\x04" + bytes(4), Broken("PROXY protocol v2 address block too short")),
]


@pytest.mark.parametrize(("data", "verdict"), PREFACES, ids=[repr(d[:24]) for d, _ in PREFACES])
def test_read_preface(data: bytes, verdict: object) -> None:
    assert read_preface(data) == verdict


# -- realip ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.2.3.4", ("1.2.3.4", 0)),
        ("001.2.3.4", ("1.2.3.4", 0)),
        ("1..2.3", ("1.0.2.3", 0)),  # ngx_inet_addr(): an empty octet is 0
        ("1.2.3.4:80", ("1.2.3.4", 80)),
        ("[::1]:443", ("::1", 443)),
        ("2001:DB8::1", ("2001:db8::1", 0)),
        ("::ffff:1.2.3.4", ("::ffff:1.2.3.4", 0)),
        ("255.255.255.255", None),  # INADDR_NONE
        ("1.2.3", None),
        ("1.2.3.4:0", None),
        ("1.2.3.4:65536", None),
        ("[::1]", None),
        ("fe80::1%eth0", None),
        ("example.com", None),
        ("", None),
    ],
)
def test_parse_addr_port(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_addr_port(text) == parsed


PEER = ("127.0.0.1", 5555)
T = ("127.0.0.0/8", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("values", "trusted", "recursive", "found"),
    [
        (["1.1.1.1"], T, False, ("1.1.1.1", 0)),
        (["1.1.1.1, 10.0.0.1"], T, False, ("10.0.0.1", 0)),
        (["1.1.1.1, 10.0.0.1"], T, True, ("1.1.1.1", 0)),
        (["1.1.1.1, 2.2.2.2, 10.0.0.1"], T, True, ("2.2.2.2", 0)),
        (["10.0.0.2, 10.0.0.1"], T, True, ("10.0.0.2", 0)),  # all trusted: the leftmost
        (["1.1.1.1 ,, "], T, False, ("1.1.1.1", 0)),
        (["junk, 10.0.0.1"], T, True, ("10.0.0.1", 0)),  # "done": the last good one
        (["junk"], T, True, None),
        (["1.1.1.1"], ("192.0.2.0/24",), False, None),  # the peer is not trusted
        (["3.3.3.3", "1.1.1.1, 10.0.0.1"], T, False, ("10.0.0.1", 0)),  # the last header only
        (["3.3.3.3", "10.0.0.5, 10.0.0.1"], T, True, ("3.3.3.3", 0)),  # walks into the earlier one
        (["1.1.1.1:8080"], T, False, ("1.1.1.1", 8080)),
    ],
)
def test_forwarded_addr(
    values: list[str], trusted: tuple[str, ...], recursive: bool, found: tuple[str, int] | None
) -> None:
    assert forwarded_addr(PEER, values, trusted, recursive) == found


def test_client_address_runs_once_per_request_and_restarts_from_the_peer() -> None:
    addr = ClientAddress("127.0.0.1", 4000, ProxyHeader("198.51.100.1", 1234, "192.0.2.1", 443))
    server = RealIP(("127.0.0.1/32",), "X-Forwarded-For")
    location = RealIP(("127.0.0.1/32",), "proxy_protocol")
    assert addr.begin_request(server, [("X-Forwarded-For", "10.9.9.9")]) == ("10.9.9.9", 0)
    assert addr.run(location, []) == ("10.9.9.9", 0)  # PREACCESS: already done
    assert addr.begin_request(RealIP(), [("X-Forwarded-For", "10.9.9.9")]) == ("127.0.0.1", 4000)
    assert addr.run(location, []) == ("198.51.100.1", 1234)  # the preface's port too
    assert addr.variable("realip_remote_addr") == "127.0.0.1"
    assert addr.variable("proxy_protocol_server_port") == "443"
    unix = ClientAddress("unix:", 0)
    assert unix.begin_request(RealIP(("unix:",), "X-Real-IP"), [("x-real-ip", "192.0.2.9")]) == ("192.0.2.9", 0)
    assert unix.variable("realip_remote_port") == ""


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("unix:", ("unix:", False)),
        ("10.0.0.0/8", ("10.0.0.0/8", False)),
        ("10.1.2.3/8", ("10.0.0.0/8", True)),
        ("192.0.2.1", ("192.0.2.1/32", False)),
        ("2001:db8::/32", ("2001:db8::/32", False)),
    ],
)
def test_trusted_source(value: str, result: tuple[str, bool]) -> None:
    assert trusted_source(value) == result


@pytest.mark.parametrize("value", ["1.2.3.4/33", "::1/129", "10.0.0.0/255.0.0.0", "1.2.3"])
def test_trusted_source_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        trusted_source(value)


def _conf(tmp_path: Path, server: str, main: str = "") -> Path:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\n{main}\nevents {{}}\n"
        f"http {{\n    server {{\n        listen 127.0.0.1:{free_port()};\n        {server}\n"
        "        location / { return 200; }\n    }\n}\n"
    )
    return conf


def _nginx_t(conf: Path) -> tuple[bool, str]:
    proc = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(conf.parent)], capture_output=True,
                          text=True, timeout=30)
    emerg = [line.split("] ", 1)[1].split(": ", 1)[1] for line in proc.stderr.splitlines() if "[emerg]" in line]
    return proc.returncode == 0, emerg[0] if emerg else ""


def _ngxws_t(conf: Path) -> tuple[bool, str]:
    try:
        load_config(str(conf))
    except ConfigError as exc:
        return False, str(exc)
    return True, ""


def test_realip_config_inherits_like_nginx(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "set_real_ip_from 10.0.0.0/8; real_ip_recursive on;\n"
                 "location /l { set_real_ip_from unix:; real_ip_header X-Forwarded-For; return 200; }",
                 )
    conf.write_text(conf.read_text().replace("http {", "http {\n    set_real_ip_from 127.0.0.1;\n"
                                             "    real_ip_header CF-Connecting-IP;"))
    (server,) = load_config(str(conf)).servers
    assert server.realip == RealIP(("10.0.0.0/8",), "CF-Connecting-IP", True)
    loc = next(loc for loc in server.locations if loc.pattern == "/l")
    assert loc.realip == RealIP(("unix:",), "X-Forwarded-For", True)


# -- listen parameters: validity as nginx -t judges it, options really set ---------

LISTEN_PARAMS = [
    "rcvbuf=64k", "sndbuf=1m", "backlog=77", "so_keepalive=on", "so_keepalive=off",
    "so_keepalive=30s::", "so_keepalive=1m:10:5", "so_keepalive=:10s:", "fastopen=16", "deferred", "bind",
    "reuseport", "proxy_protocol", "accept_filter=httpready",
    "rcvbuf=x", "sndbuf=", "backlog=0", "backlog=abc", "fastopen=x", "setfib=1", "so_keepalive=x",
    "so_keepalive=::", "so_keepalive=abc:1", "so_keepalive=1:2:x", "ipv6only=ox",
]  # fmt: skip


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian nginx not installed")
@pytest.mark.parametrize("param", LISTEN_PARAMS)
def test_listen_parameter_validity_agrees_with_nginx(tmp_path: Path, param: str) -> None:
    conf = _conf(tmp_path, "")
    conf.write_text(conf.read_text().replace(";\n        \n", f" {param};\n", 1))
    assert param in conf.read_text()
    ok, message = _nginx_t(conf)
    assert _ngxws_t(conf) == (ok, f"{message}" if not ok else "")


def test_socket_options_are_set_on_the_bound_socket() -> None:
    params = parse_listen_params(["rcvbuf=64k", "sndbuf=128k", "so_keepalive=30s:7:4", "fastopen=16", "backlog=77"])
    assert params.has_options
    opts = params.options
    assert opts == SocketOptions(backlog=77, rcvbuf=65536, sndbuf=131072, keepalive=True, keepidle=30,
                                 keepintvl=7, keepcnt=4, fastopen=16)
    listen = Listen(host="127.0.0.1", port=free_port(), options=SocketOptions(**{**opts.__dict__, "deferred": 9}))
    sock = bind_listen(listen, reuseport=True)
    try:
        get = sock.getsockopt
        assert get(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536  # Linux doubles it
        assert get(socket.SOL_SOCKET, socket.SO_SNDBUF) >= 131072
        assert get(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert get(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert get(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 7
        assert get(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        assert get(socket.IPPROTO_TCP, socket.TCP_FASTOPEN) == 16
        assert get(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0
        assert get(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        # the backlog, as the kernel reports it for a listening socket (ss's Send-Q)
        port = listen.port
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        assert any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows)
        if shutil.which("ss"):
            out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                                 timeout=10).stdout
            assert out.split()[2] == "77", out
        off = bind_listen(Listen(host="127.0.0.1", port=free_port(), options=SocketOptions(keepalive=False)))
        assert off.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        off.close()
    finally:
        sock.close()


def test_running_server_socket_has_its_options(tmp_path: Path) -> None:
    """Through the master: the worker's listening socket carries them
    (the worker's own listen() keeps the configured backlog)."""
    port = free_port()
    conf = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port} rcvbuf=96k backlog=33 so_keepalive=on deferred;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
    with ngxws(conf, tmp_path, port) as srv:
        assert srv.get("/")[0] == 200
        if shutil.which("ss"):
            out = subprocess.run(["ss", "-ltnoH", f"sport = :{port}"], capture_output=True, text=True,
                                 timeout=10).stdout
            assert out and all(line.split()[2] == "33" for line in out.splitlines()), out
            # accepted connections inherit SO_KEEPALIVE: the kernel runs a keepalive timer
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                read_head(client)

                def keepalive_timer() -> bool:
                    out = subprocess.run(["ss", "-tnoH", "state", "established", f"sport = :{port}"],
                                         capture_output=True, text=True, timeout=10).stdout
                    return "keepalive" in out

                assert wait_for(keepalive_timer, timeout=5)


# -- stream {} -------------------------------------------------------------------------

STREAM = """
stream {
    upstream tls_backends { server 127.0.0.1:9; }
    map $ssl_preread_server_name $name { default tls_backends; }
    server {
        listen 127.0.0.1:%d;
        proxy_pass $name;
        ssl_preread on;
    }
}
"""


def test_stream_blocks_are_reported_not_served(tmp_path: Path) -> None:
    stream_port = free_port()
    conf = _conf(tmp_path, "", main=STREAM % stream_port)
    proc = subprocess.run([sys.executable, "-m", "ngxws", "check", "-c", str(conf)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "nginx.conf:4  stream -- NOT served" in proc.stdout
    assert f"nginx.conf:8  stream listen 127.0.0.1:{stream_port} -- NOT served" in proc.stdout
    assert f'[warn] "stream" in {conf}:4 is NOT served' in proc.stderr


def test_stream_blocks_do_not_stop_the_http_part(tmp_path: Path) -> None:
    port, stream_port = free_port(), free_port()
    log = tmp_path / "error.log"
    conf = f"error_log {log} warn;\n" + STREAM % stream_port + f"""
events {{}}
http {{ server {{ listen 127.0.0.1:{port}; location / {{ return 200 "http\\n"; }} }} }}
"""
    with ngxws(conf, tmp_path, port) as srv:
        status, _headers, body = srv.get("/")  # one request: two could straddle a Date second
        assert (status, body) == (200, b"http\n")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", stream_port), timeout=2).close()
        assert wait_for(lambda: log.exists() and "is NOT served" in log.read_text(), timeout=10)
    _code, _out, err = srv.stop()
    assert '[warn] "stream" in' in err


# -- the ws log shows the real address ---------------------------------------------


def test_ws_log_remote_addr_is_the_real_address(tmp_path: Path) -> None:
    port = free_port()
    wslog = tmp_path / "ws.log"
    with ws_backend() as backend:
        conf = f"""
events {{}}
http {{
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        ws_log {wslog};
        ws_log_format open "open $remote_addr $remote_port";
        ws_log_format close "close $remote_addr";
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
        location /pp {{
            real_ip_header proxy_protocol;
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""
        with ngxws(conf, tmp_path, port):
            for path, extra in (("/", "X-Forwarded-For: 203.0.113.5:7001\r\n"), ("/pp", "")):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    request = upgrade_request(path).replace(b"\r\n\r\n", f"\r\n{extra}\r\n".encode())
                    sock.sendall(b"PROXY TCP4 198.51.100.4 192.0.2.1 40000 443\r\n" + request)
                    head, _ = read_head(sock)
                    assert head.startswith(b"HTTP/1.1 101"), head
                    sock.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000
                    sock.recv(100)
            assert wait_for(lambda: wslog.exists() and wslog.read_text().count("\nclose") == 2, timeout=10)
    lines = [line for line in wslog.read_text().splitlines() if line.startswith(("open", "close"))]
    assert lines == [
        "open 203.0.113.5 7001", "close 203.0.113.5", "open 198.51.100.4 40000", "close 198.51.100.4",
    ]


REALIP_DIRECTIVES = [
    "set_real_ip_from 1.2.3.4/33;", "set_real_ip_from ::1/129;", "set_real_ip_from no.such.host.invalid;",
    "set_real_ip_from 10.0.0.1/8;", "set_real_ip_from localhost;", "set_real_ip_from unix:;",
    "set_real_ip_from 2001:db8::/32;", "real_ip_header X-Real-IP; real_ip_header X-Real-IP;",
    "real_ip_recursive maybe;", "real_ip_recursive on;", "real_ip_header;", "set_real_ip_from a b;",
    "real_ip_header proxy_protocol;", "real_ip_recursive on; real_ip_recursive off;",
]  # fmt: skip


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian nginx not installed")
@pytest.mark.parametrize("directive", REALIP_DIRECTIVES)
def test_realip_directive_validity_agrees_with_nginx(tmp_path: Path, directive: str) -> None:
    conf = _conf(tmp_path, directive)
    ok, message = _nginx_t(conf)
    assert _ngxws_t(conf) == (ok, message if not ok else "")
