"""A request body on its way to the upstream: memory first, then a temp file.

As ngx_http_read_client_request_body() stores it: while the body fits in
``client_body_buffer_size`` it stays in memory; past that, everything goes
to a temporary file in ``client_body_temp_path``, so a request holds at most
about one buffer of RAM (plus one socket read) whatever its size.  The file
has no name for anyone else to see: nginx unlinks a non-persistent temp file
right after creating it (ngx_open_tempfile()); here ``TemporaryFile`` does
the same (O_TMPFILE on Linux), and the space is given back when it is closed.

With ``proxy_request_buffering off`` the body is a pipe instead
(``streaming``): bytes are taken for the upstream as they arrive, and the
connection stops reading the client while more than a buffer is waiting
(``over_buffer``) -- nginx's unbuffered body reader does the same by not
reading while its one buffer is full.

No sockets and no clocks: the connection feeds bytes in, the sender takes
them out; two optional callbacks tell the asyncio side when there is
something to take and when the waiting bytes went under the buffer size.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

# nginx's default client_body_buffer_size on 64-bit platforms (two pages)
DEFAULT_BUFFER_SIZE = 16 * 1024


class RequestBody:
    """Bytes received for one request and not yet sent upstream."""

    def __init__(self, buffer_size: int, temp_dir: str | None, streaming: bool = False) -> None:
        self.buffer_size = max(1, buffer_size)
        self.temp_dir = temp_dir
        self.streaming = streaming
        self.size = 0  # bytes received so far
        self.complete = False
        self._mem: deque[bytes] = deque()
        self._mem_size = 0
        self._file: BinaryIO | None = None
        self._read_pos = 0
        self.closed = False
        self.on_data: Callable[[], None] | None = None  # something new to take (or the end)
        self.on_drained: Callable[[], None] | None = None  # waiting went under the buffer

    @property
    def in_file(self) -> bool:
        """Whether the body went to a temp file (it outgrew the buffer)."""
        return self._file is not None

    @property
    def waiting(self) -> int:
        """Bytes received and not yet taken."""
        return self.size - self._read_pos

    @property
    def over_buffer(self) -> bool:
        """A streaming body holds more than a buffer: stop reading the client."""
        return self.streaming and self._mem_size > self.buffer_size

    @property
    def exhausted(self) -> bool:
        """Everything was received and taken."""
        return self.complete and self.waiting == 0

    def feed(self, data: bytes) -> None:
        if self.closed or not data:
            return
        self.size += len(data)
        if self._file is None and (self.streaming or self._mem_size + len(data) <= self.buffer_size):
            self._mem.append(data)
            self._mem_size += len(data)
        else:
            self._spill(data)
        if self.on_data is not None:
            self.on_data()

    def finish(self) -> None:
        """The last byte is in (Content-Length reached, or the last chunk)."""
        self.complete = True
        if self.on_data is not None:
            self.on_data()

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` of the next bytes to send (b"" if none are waiting)."""
        if self.waiting <= 0:
            return b""
        if self._file is not None:
            data = os.pread(self._file.fileno(), min(limit, self.waiting), self._read_pos)
            self._read_pos += len(data)
            return data
        if not self.streaming:
            # kept whole (at most a buffer) so that ``rewind`` can send it again
            if len(self._mem) > 1:
                self._mem = deque([b"".join(self._mem)])
            data = self._mem[0][self._read_pos : self._read_pos + limit]
            self._read_pos += len(data)
            return data
        first = self._mem[0]
        if len(first) <= limit:
            self._mem.popleft()
        else:
            self._mem[0] = first[limit:]
            first = first[:limit]
        self._mem_size -= len(first)
        self._read_pos += len(first)
        if self.streaming and not self.complete and self.on_drained is not None and self._mem_size <= self.buffer_size:
            # (once it is all in, reading goes on for the next request's sake:
            # the connection decides)
            self.on_drained()
        return first

    def rewind(self) -> bool:
        """Take from the first byte again (a second upstream: error_page to a
        named location, as nginx re-sends its buffered body); a streamed
        body cannot be."""
        if self.streaming:
            return False
        self._read_pos = 0
        return True

    def close(self) -> None:
        """Drop what is held; the temp file's space goes back to the disk."""
        self.closed = True
        self._mem.clear()
        self._mem_size = 0
        self.on_data = self.on_drained = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _spill(self, data: bytes) -> None:
        if self._file is None:
            if self.temp_dir is not None:
                os.makedirs(self.temp_dir, exist_ok=True)  # ngx_create_paths() makes it at start
            # unbuffered: every write reaches the page cache at once, and
            # pread() sees it without a flush
            self._file = tempfile.TemporaryFile(dir=self.temp_dir, buffering=0)
            for chunk in self._mem:
                _write_all(self._file, chunk)
            self._mem.clear()
            self._mem_size = 0
        _write_all(self._file, data)


def _write_all(file: BinaryIO, data: bytes) -> None:
    # an unbuffered file may take less than asked (a signal, a full disk:
    # then OSError says why)
    view = memoryview(data)
    while view:
        view = view[file.write(view) or 0 :]
