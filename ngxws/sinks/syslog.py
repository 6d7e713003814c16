"""``ws_log syslog:server=...``: ws log lines as syslog datagrams, as
nginx's ``access_log syslog:...`` sends them (ngx_syslog.c).

Parameters, nginx's: ``server=ADDRESS[:PORT]`` (UDP, port 514 by default;
or ``unix:PATH``, a datagram socket), ``facility=`` (``local7``),
``severity=`` (``info``), ``tag=`` (``nginx``; letters, digits and ``_``),
``nohostname``.  Each line is one datagram,
``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: LINE`` (no hostname part with
``nohostname``), PRI = facility * 8 + severity.

Like ``LogFile``, lines are buffered and sent at the worker's flush (every
100 ms, and before exit), so the relay pays no syscall per line; a send
that fails drops that line and is counted, never raised into a tunnel.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from ngxws.sinks.logfile import LogFile

log = logging.getLogger(__name__)

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITIES = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SyslogError(ValueError):
    """A ``syslog:`` target nginx would refuse; the message is nginx's."""


@dataclass(frozen=True)
class SyslogTarget:
    host: str
    port: int
    unix: str | None
    facility: int
    severity: int
    tag: str
    hostname: bool


def parse_syslog(target: str) -> SyslogTarget:
    """``syslog:server=...,facility=...`` as ngx_syslog_parse_args reads it."""
    host, port, unix = "", 514, None
    facility, severity, tag, hostname = 23, 6, "nginx", True
    server = False
    for param in target[len("syslog:") :].split(","):
        if param.startswith("server="):
            server = True
            addr = param[7:]
            if addr.startswith("unix:"):
                unix = addr[5:]
                continue
            if addr.startswith("["):
                h, _, rest = addr[1:].partition("]")
                host = h
                if rest.startswith(":"):
                    port = _port(rest[1:], addr)
            elif addr.count(":") == 1:
                host, p = addr.split(":")
                port = _port(p, addr)
            else:
                host = addr
            if not host:
                raise SyslogError(f'no host in "{addr}" of the "syslog" directive')
        elif param.startswith("facility="):
            if param[9:] not in FACILITIES:
                raise SyslogError(f'unknown syslog facility "{param[9:]}"')
            facility = FACILITIES.index(param[9:])
        elif param.startswith("severity="):
            if param[9:] not in SEVERITIES:
                raise SyslogError(f'unknown syslog severity "{param[9:]}"')
            severity = SEVERITIES.index(param[9:])
        elif param.startswith("tag="):
            tag = param[4:]
            if len(tag) > 32:
                raise SyslogError("syslog tag length exceeds 32")
            if not all(c.isascii() and (c.isalnum() or c == "_") for c in tag):
                raise SyslogError('syslog "tag" only allows alphanumeric characters and underscore')
        elif param == "nohostname":
            hostname = False
        else:
            raise SyslogError(f'unknown syslog parameter "{param}"')
    if not server:
        raise SyslogError("no syslog server specified")
    return SyslogTarget(host, port, unix, facility, severity, tag, hostname)


def _port(text: str, addr: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SyslogError(f'invalid port in "{addr}" of the "syslog" directive')
    return int(text)


def syslog_time(now: float) -> str:
    """nginx's cached_syslog_time: ``Sep  2 12:00:00`` (local time)."""
    t = time.localtime(now)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


class SyslogSink(LogFile):
    """A ``LogFile`` whose flush sends each buffered line as one datagram."""

    __slots__ = ("_sock", "_addr", "_prefix_tail", "_pri", "target")

    def __init__(self, path: str) -> None:  # noqa: D107 -- does not call LogFile's (no file)
        self.path = path
        self._buffer: list[str] = []
        self._carry = b""
        self._pending = 0
        self._closed = False
        self.dropped_bytes = 0
        self._fd = -1
        self._owned = False
        self.target = t = parse_syslog(path)
        self._pri = f"<{t.facility * 8 + t.severity}>"
        host = socket.gethostname() if t.hostname else ""
        self._prefix_tail = f" {host} {t.tag}: " if host else f" {t.tag}: "
        if t.unix is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._addr: str | tuple[Any, ...] = t.unix
        else:
            info = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM)[0]
            self._sock = socket.socket(info[0], socket.SOCK_DGRAM)
            self._addr = info[4]
        self._sock.setblocking(False)

    def write_lines(self, data: bytes) -> None:
        """A datagram per line: the encoded lines back into ``append``'s."""
        for line in data.decode("utf-8", "surrogateescape").split("\n")[:-1]:
            self.append(line)

    def flush(self) -> None:
        if self._closed or not self._buffer:
            return
        head = self._pri + syslog_time(time.time()) + self._prefix_tail
        lines, self._buffer = self._buffer, []
        self._pending = 0
        for line in lines:
            data = (head + line).encode("utf-8", "surrogateescape")
            try:
                self._sock.sendto(data, self._addr)
            except OSError as exc:
                self.dropped_bytes += len(data)
                log.error("sendto() to %s failed (%d: %s)", self.path, exc.errno or 0, exc.strerror)

    def reopen(self) -> None:
        self.flush()  # nothing to reopen: a datagram socket has no file

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()
