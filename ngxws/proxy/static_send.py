"""Sending a file to the client: the asyncio shell of ``ngxws.http.static``.

nginx hands a file to the kernel with sendfile(2).  uvloop's loop has no
``loop.sendfile`` (it is asyncio's abstract one), so this does it on the
transport's own socket: while the transport has nothing buffered,
``os.sendfile`` fills the kernel's socket buffer from the page cache; when
the socket is full, one bounded chunk is read (``pread``) and written
through the transport, which then buffers it and pauses the protocol; the
send waits for ``resume_writing`` and goes on.  A TLS transport (no raw
socket to write to) gets bounded chunks only.  Memory stays flat whatever
the file's size: at most one chunk plus the transport's high-water mark.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Protocol

from ngxws.http.gzip_filter import GzipStream
from ngxws.http.static import FileInfo
from ngxws.running import running_loop

__all__ = ["WriteGate", "read_small", "send_compressed", "send_file", "stat_path", "CHUNK", "SMALL_FILE"]

CHUNK = 256 * 1024  # one read when the socket is full (nginx's output_buffers are 2 x 32k)


class WriteGate:
    """The protocol's pause_writing/resume_writing as something to wait on."""

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        if not self.paused:
            return
        self._waiter = running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class _Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...
    def get_extra_info(self, name: str, default: object = None) -> object: ...


def stat_path(path: str) -> FileInfo | int:
    """The injected ``stat`` of ``ngxws.http.static``: follows symlinks
    (nginx's default ``disable_symlinks off``); an errno on failure."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.errno or errno.EIO
    except ValueError:  # an embedded NUL
        return errno.ENOENT
    kind = "dir" if _isdir(st.st_mode) else "file" if _isreg(st.st_mode) else "other"
    if kind == "file" and not os.access(path, os.R_OK):
        return errno.EACCES
    return FileInfo(kind, st.st_size, int(st.st_mtime), st.st_ino)


def _isdir(mode: int) -> bool:
    return (mode & 0o170000) == 0o040000


def _isreg(mode: int) -> bool:
    return (mode & 0o170000) == 0o100000


async def send_file(transport: _Transport, gate: WriteGate, path: str, offset: int, length: int) -> bool:
    """Send ``length`` bytes of ``path`` from ``offset``; False when the
    file came up short (truncated meanwhile: the connection must close,
    as nginx does) or could not be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    sock = transport.get_extra_info("socket")
    raw = -1
    if sock is not None and transport.get_extra_info("sslcontext") is None:
        fileno = getattr(sock, "fileno", None)
        raw = fileno() if fileno is not None else -1
    try:
        remaining = length
        while remaining > 0:
            if transport.is_closing():
                return False
            if raw >= 0 and transport.get_write_buffer_size() == 0:
                try:
                    sent = os.sendfile(raw, fd, offset, min(remaining, 1 << 30))
                except BlockingIOError:
                    sent = -1
                except OSError:
                    raw = -1  # not a socket sendfile takes: chunks from now on
                    sent = -1
                if sent == 0:
                    return False  # end of file before the length nginx announced
                if sent > 0:
                    offset += sent
                    remaining -= sent
                    continue
            chunk = os.pread(fd, min(CHUNK, remaining), offset)
            if not chunk:
                return False
            transport.write(chunk)
            offset += len(chunk)
            remaining -= len(chunk)
            await gate.wait()
            if raw >= 0 and transport.get_write_buffer_size() > 0:
                await asyncio.sleep(0)  # let the loop flush before sendfile again
        return True
    finally:
        os.close(fd)


SMALL_FILE = 16 * 1024
"""A body this short goes out with its head in one write (``read_small``)."""


def read_small(path: str, offset: int, length: int) -> bytes | None:
    """``length`` bytes of ``path`` from ``offset`` (fewer if it was truncated
    meanwhile), to send with the head in one write: nginx sends the head
    (``writev``) and then the file (``sendfile``), two sends; the client gets
    the same bytes either way, and a short answer costs one send, not two
    (bench W9).  None when it cannot be opened (``send_file``'s False)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        return os.pread(fd, length, offset)
    except OSError:
        return None
    finally:
        os.close(fd)


GZIP_CHUNK = 64 * 1024  # one read fed to deflate (nginx's output_buffers are 2 x 32k)


async def send_compressed(
    transport: _Transport, gate: WriteGate, path: str, length: int, stream: GzipStream, chunked: bool
) -> bool:
    """Send the file's ``length`` bytes through ``stream`` (gzip on: no
    sendfile), each piece of output as one chunk when ``chunked``, then the
    last chunk; False as ``send_file``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        offset = 0
        while offset < length:
            if transport.is_closing():
                return False
            data = os.pread(fd, min(GZIP_CHUNK, length - offset), offset)
            if not data:
                return False
            offset += len(data)
            out = stream.compress(data)
            if out:
                transport.write(b"%x\r\n%b\r\n" % (len(out), out) if chunked else out)
                await gate.wait()
        out = stream.finish()
        transport.write((b"%x\r\n%b\r\n0\r\n\r\n" % (len(out), out)) if chunked else out)
        return True
    finally:
        os.close(fd)
