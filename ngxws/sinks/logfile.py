"""Append-only ws_log files that cost no syscall per line.

nginx's module calls ``write(2)`` twice per frame (line, then ``\\n``).  At
per-frame rates that is the proxy's main cost, so ngxws buffers lines in
memory and writes them in one ``os.writev`` when the worker's 100 ms timer
calls ``LogFiles.flush_all()`` -- or at once when a buffer passes
``MAX_BUFFER`` (bounded memory, bounded loss on a crash).

One ``writev`` per flush also keeps workers from interleaving inside a line:
every worker opens the file with ``O_APPEND``, and on Linux one ``write``
or ``writev`` to a regular file lands contiguously at the end.

No asyncio here: the worker owns the timer and the signal handling
(SIGUSR1 -> ``reopen_all()``, like ``nginx -s reopen``).
"""

from __future__ import annotations

import logging
import os

__all__ = ["MAX_BUFFER", "LogFile", "LogFiles"]

log = logging.getLogger(__name__)

MAX_BUFFER = 256 * 1024
"""Buffered characters after which ``append`` flushes at once."""

# Paths that name the process's own stdio.  They are written through fd 1/2
# directly, never opened: opening /dev/stdout fails when fd 1 is a socket
# (ENXIO, common under systemd and in containers), and reopening them on
# logrotate would be meaningless.
_STDIO = {"/dev/stdout": 1, "/dev/stderr": 2, "/dev/fd/1": 1, "/dev/fd/2": 2}

# writev's limit on buffers per call (Linux: 1024); more are joined first
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _encode(lines: list[str]) -> bytes:
    """Lines as the file gets them: a newline after each, UTF-8 with
    surrogateescape (the bytes a header carried, written back as they came)."""
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


class LogFile:
    """One open log file with an in-memory line buffer.

    Lines are ``str``; they are encoded as UTF-8 with ``surrogateescape``
    at flush, so text decoded that way (config text, header bytes) is
    written back byte for byte.

    Raises ``OSError`` from the constructor when the file cannot be opened
    (as nginx refuses to start); after that, write errors are logged and
    the lines that failed are dropped (as nginx does), never raised into
    the caller's connection.
    """

    __slots__ = (
        "_buffer",
        "_carry",
        "_chunks",
        "_closed",
        "_fd",
        "_owned",
        "_pending",
        "dropped_bytes",
        "path",
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self._buffer: list[str] = []  # lines, newlines added at flush
        self._chunks: list[bytes] = []  # encoded lines (write_lines), before _buffer's
        self._carry = b""  # what a would-block flush left unwritten
        self._pending = 0  # characters in _buffer (newlines included), bytes in _chunks + len(_carry)
        self._closed = False
        self.dropped_bytes = 0  # lost to write errors since start, for diagnostics
        stdio = _STDIO.get(path)
        if stdio is not None:
            self._fd = stdio
            self._owned = False
        else:
            self._fd = os.open(path, _OPEN_FLAGS, 0o644)
            self._owned = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Characters buffered and not yet written."""
        return self._pending

    def append(self, line: str) -> None:
        """Buffer ``line`` plus a newline; flush at once past ``MAX_BUFFER``."""
        if self._closed:
            raise ValueError(f"append to closed log file {self.path!r}")
        self._buffer.append(line)
        self._pending += len(line) + 1
        if self._pending > MAX_BUFFER:
            self.flush()

    def extend(self, lines: list[str]) -> None:
        """``append`` each of ``lines`` (one call per relayed chunk, not per line)."""
        if self._closed:
            raise ValueError(f"append to closed log file {self.path!r}")
        self._buffer.extend(lines)
        self._pending += sum(map(len, lines)) + len(lines)
        if self._pending > MAX_BUFFER:
            self.flush()

    def write_lines(self, data: bytes) -> None:
        """Buffer lines already encoded, each ending in a newline (a logged
        tunnel side's read: ``FrameTracker.log``); kept in order with
        ``append``'s."""
        if self._closed:
            raise ValueError(f"append to closed log file {self.path!r}")
        if self._buffer:
            self._chunks.append(_encode(self._buffer))
            self._buffer.clear()
        self._chunks.append(data)
        self._pending += len(data)
        if self._pending > MAX_BUFFER:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered with one ``os.writev`` (more only if the
        kernel takes part of it): the encoded chunks as they are, not joined
        into one more copy first.

        If the fd would block (a non-blocking pipe on stdout), what is left
        stays buffered for the next flush, up to ``MAX_BUFFER`` bytes.  Any
        other error drops the data and logs, so one full disk cannot take
        connections down.
        """
        if self._closed:
            return
        parts = self._chunks
        if self._buffer:
            parts.append(_encode(self._buffer))
            self._buffer.clear()
        if self._carry:
            parts.insert(0, self._carry)
        if not parts:
            return
        self._chunks = []
        self._carry = b""
        self._pending = 0
        if len(parts) > _IOV_MAX:
            parts = [b"".join(parts)]
        total = sum(map(len, parts))
        rest: memoryview | None = None  # what is left once the kernel took part of it
        try:
            written = os.write(self._fd, parts[0]) if len(parts) == 1 else os.writev(self._fd, parts)
            if written < total:
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
        except BlockingIOError:
            left = rest if rest is not None else memoryview(b"".join(parts))
            if len(left) > MAX_BUFFER:  # the reader is stuck: bound memory
                self.dropped_bytes += len(left)
                log.error('write() to "%s" would block, %d bytes dropped', self.path, len(left))
                return
            self._carry = bytes(left)
            self._pending = len(self._carry)
        except OSError as exc:
            self.dropped_bytes += len(rest) if rest is not None else total
            log.error('write() to "%s" failed (%d: %s)', self.path, exc.errno, exc.strerror)

    def reopen(self) -> None:
        """Flush, then write to a freshly opened ``path`` (logrotate).

        Lines buffered before the call go to the old file (which may have
        been renamed); later lines go to the new one.  The new file is
        opened before the old one is closed: if that fails, ``OSError`` is
        raised and the old file stays in use, as nginx keeps its old fd.
        stdout/stderr are only flushed.
        """
        if self._closed:
            raise ValueError(f"reopen of closed log file {self.path!r}")
        self.flush()
        if not self._owned:
            return
        fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        old, self._fd = self._fd, fd
        os.close(old)

    def close(self) -> None:
        """Flush and close.  Idempotent; stdout/stderr are left open."""
        if self._closed:
            return
        self.flush()
        self.dropped_bytes += len(self._carry)  # a stuck pipe: nothing more to try
        self._carry = b""
        self._closed = True
        if self._owned:
            os.close(self._fd)

    def fileno(self) -> int:
        return self._fd


class LogFiles:
    """One shared ``LogFile`` per path, for everything a worker writes.

    Several servers may name the same ``ws_log`` file; they must share one
    buffer, or their flushes would reorder lines.  Paths are compared as
    given (already resolved against the prefix by the config), as nginx's
    ``ngx_conf_open_file`` compares names.
    """

    __slots__ = ("_files",)

    def __init__(self) -> None:
        self._files: dict[str, LogFile] = {}

    def get(self, path: str) -> LogFile:
        """The ``LogFile`` for ``path``, opened on first use (``OSError`` if
        it cannot be)."""
        f = self._files.get(path)
        if f is None or f.closed:
            if path.startswith("syslog:"):  # ws_log syslog:server=... (ngxws)
                from ngxws.sinks.syslog import SyslogSink

                f = SyslogSink(path)
            else:
                f = LogFile(path)
            self._files[path] = f
        return f

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __len__(self) -> int:
        return len(self._files)

    def flush_all(self) -> None:
        """Flush every file (the worker's 100 ms timer, and before exit)."""
        for f in self._files.values():
            f.flush()

    def reopen_all(self) -> list[tuple[str, OSError]]:
        """Reopen every file (SIGUSR1).  A file that cannot be reopened keeps
        its old fd; the failures are logged and returned, the rest proceed."""
        errors: list[tuple[str, OSError]] = []
        for path, f in self._files.items():
            try:
                f.reopen()
            except OSError as exc:
                log.error('open() "%s" failed (%d: %s)', path, exc.errno, exc.strerror)
                errors.append((path, exc))
        return errors

    def close_all(self) -> None:
        """Flush and close every file; the registry is empty afterwards."""
        for f in self._files.values():
            f.close()
        self._files.clear()
