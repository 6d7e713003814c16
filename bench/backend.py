"""The websocket backend behind the proxy under test: a sink and an echo server.

Run as its own process (``python -m bench.backend --stats FILE``), pinned next
to the load generator.  It binds ``127.0.0.1:0``, prints ``PORT <n>`` on
stdout, and serves until SIGTERM or until its stdin closes (so it never
outlives the driver).

The request path picks the behaviour, so one backend serves every workload:

- ``/sink?fixed=N``: every client frame on this connection is ``N`` bytes on
  the wire; frames are counted by size arithmetic (nothing per frame).
- ``/echo?fixed=N``: the same, and each complete frame is answered with the
  first frame's payload unmasked (the bench clients send identical frames, so
  this is a byte-exact echo computed once).
- ``/sink`` or ``/echo`` without ``fixed``: a header scanner follows the
  frames; echo unmasks and returns each one.  A close frame is answered with
  a close frame, then the connection is closed (the churn workload's path).

Counters are published into a small shared file (:class:`BackendCounters`)
that the driver maps and reads before and after its measure window.
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import signal
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import uvloop

from bench.wire import (
    BAD_REQUEST,
    FixedSizeCounter,
    FrameScanner,
    Opcode,
    close_payload,
    parse_upgrade_request,
    server_frame,
    switching_protocols,
)

_FIELDS = (
    "bytes_in",
    "frames_in",
    "upgrades",
    "open",
    "bytes_out",
    "frames_out",
    "bad_requests",
    "misaligned",
)
_LAYOUT = struct.Struct("<" + "q" * len(_FIELDS))
_MAX_HEAD = 16384
_CLOSE_REPLY = server_frame(Opcode.CLOSE, close_payload(1000))


class BackendCounters:
    """Totals since the backend started, mirrored into a shared file after every read.

    The backend process owns a writable instance; the driver opens the same
    file with ``readonly=True`` and calls :meth:`read`.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        if not readonly:
            path.write_bytes(bytes(_LAYOUT.size))
        self._file = open(path, "rb" if readonly else "r+b")  # open for the process lifetime
        access = mmap.ACCESS_READ if readonly else mmap.ACCESS_WRITE
        self._map = mmap.mmap(self._file.fileno(), _LAYOUT.size, access=access)
        self.bytes_in = 0
        self.frames_in = 0
        self.upgrades = 0
        self.open = 0
        self.bytes_out = 0
        self.frames_out = 0
        self.bad_requests = 0
        self.misaligned = 0

    def publish(self) -> None:
        """Copy the totals into the shared file (one ``pack_into``; called per read)."""
        _LAYOUT.pack_into(
            self._map,
            0,
            self.bytes_in,
            self.frames_in,
            self.upgrades,
            self.open,
            self.bytes_out,
            self.frames_out,
            self.bad_requests,
            self.misaligned,
        )

    def read(self) -> dict[str, int]:
        """The totals as last published by the backend."""
        return dict(zip(_FIELDS, _LAYOUT.unpack_from(self._map, 0), strict=True))

    def close(self) -> None:
        """Unmap and close the shared file."""
        self._map.close()
        self._file.close()


class BackendProtocol(asyncio.Protocol):
    """One upstream connection: answers the upgrade, then sinks or echoes frames."""

    def __init__(self, counters: BackendCounters, accept_cache: dict[str, bytes]) -> None:
        self._counters = counters
        self._accept_cache = accept_cache
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._on_data: Callable[[bytes], None] | None = None
        self._upgraded = False
        self._fixed: FixedSizeCounter | None = None
        self._scanner: FrameScanner | None = None
        self._first = bytearray()
        self._reply = b""
        self._frame_head = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._upgraded:
            self._counters.open -= 1
            self._counters.publish()

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_HEAD:
                self._reject()
            return
        rest = bytes(self._head[end + 4 :])
        request = parse_upgrade_request(bytes(self._head[:end]))
        self._head.clear()
        if request is None or request.path not in ("/sink", "/echo"):
            self._reject()
            return
        self._choose_mode(request.path, request.query.get("fixed"))
        response = self._accept_cache.get(request.key)
        if response is None:
            response = self._accept_cache[request.key] = switching_protocols(request.key)
        assert self._transport is not None
        self._transport.write(response)
        self._upgraded = True
        counters = self._counters
        counters.upgrades += 1
        counters.open += 1
        counters.publish()
        if rest:
            assert self._on_data is not None
            self._on_data(rest)

    def _reject(self) -> None:
        assert self._transport is not None
        self._counters.bad_requests += 1
        self._counters.publish()
        self._transport.write(BAD_REQUEST)
        self._transport.close()

    def _choose_mode(self, path: str, fixed: str | None) -> None:
        if fixed is not None and int(fixed) > 0:
            self._fixed = FixedSizeCounter(int(fixed))
            self._on_data = self._sink_fixed if path == "/sink" else self._echo_fixed
        else:
            self._scanner = FrameScanner(keep_payloads=path == "/echo")
            self._on_data = self._sink_scan if path == "/sink" else self._echo_scan

    # The four data paths.  The fixed ones are the hot paths: arithmetic per
    # read, never a loop per frame.

    def _check_alignment(self, data: bytes) -> None:
        """O(1) integrity check: the first frame start in ``data`` must show the frame's
        first two header bytes.  A proxy that drops, repeats or alters bytes shifts every
        later boundary, so the next reads catch it."""
        fixed = self._fixed
        assert fixed is not None
        if len(self._frame_head) < 2:
            # Still reading the stream's first two bytes: they are the reference.
            self._frame_head += data[: 2 - len(self._frame_head)]
            return
        offset = fixed.next_boundary()
        if offset + 2 <= len(data) and data[offset : offset + 2] != self._frame_head:
            self._counters.misaligned += 1

    def _sink_fixed(self, data: bytes) -> None:
        assert self._fixed is not None
        self._check_alignment(data)
        counters = self._counters
        counters.bytes_in += len(data)
        counters.frames_in += self._fixed.feed(len(data))
        counters.publish()

    def _echo_fixed(self, data: bytes) -> None:
        fixed = self._fixed
        assert fixed is not None and self._transport is not None
        if not self._reply:
            self._first += data[: fixed.frame_size - len(self._first)]
            if len(self._first) == fixed.frame_size:
                first = FrameScanner(keep_payloads=True).feed(bytes(self._first))[0]
                self._reply = server_frame(Opcode(first.opcode), first.payload)
        self._check_alignment(data)
        counters = self._counters
        counters.bytes_in += len(data)
        done = fixed.feed(len(data))
        if done:
            counters.frames_in += done
            out = self._reply * done
            self._transport.write(out)
            counters.frames_out += done
            counters.bytes_out += len(out)
        counters.publish()

    def _sink_scan(self, data: bytes) -> None:
        scanner = self._scanner
        assert scanner is not None
        before = scanner.frames
        scanner.feed(data)
        counters = self._counters
        counters.bytes_in += len(data)
        counters.frames_in += scanner.frames - before
        if scanner.close_seen:
            self._close_back()
        counters.publish()

    def _echo_scan(self, data: bytes) -> None:
        scanner = self._scanner
        assert scanner is not None and self._transport is not None
        counters = self._counters
        counters.bytes_in += len(data)
        for frame in scanner.feed(data):
            counters.frames_in += 1
            if frame.opcode == Opcode.CLOSE:
                break
            out = server_frame(Opcode(frame.opcode), frame.payload)
            self._transport.write(out)
            counters.frames_out += 1
            counters.bytes_out += len(out)
        if scanner.close_seen:
            self._close_back()
        counters.publish()

    def _close_back(self) -> None:
        """Answer a client's close frame and close, as a server does (RFC 6455 5.5.1)."""
        assert self._transport is not None
        if self._transport.is_closing():
            return
        self._transport.write(_CLOSE_REPLY)
        self._counters.frames_out += 1
        self._counters.bytes_out += len(_CLOSE_REPLY)
        self._transport.close()
        self._on_data = self._discard

    def _discard(self, data: bytes) -> None:
        self._counters.bytes_in += len(data)


async def serve(stats_path: Path, host: str) -> None:
    """Serve until SIGTERM/SIGINT or until stdin reaches EOF."""
    loop = asyncio.get_running_loop()
    counters = BackendCounters(stats_path)
    accept_cache: dict[str, bytes] = {}
    server = await loop.create_server(
        lambda: BackendProtocol(counters, accept_cache), host, 0, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin() -> None:
        while await reader.read(4096):
            pass
        request_stop()

    watcher = asyncio.ensure_future(watch_stdin())
    try:
        await stop
    finally:
        watcher.cancel()
        server.close()
        counters.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m bench.backend``."""
    parser = argparse.ArgumentParser(prog="python -m bench.backend", description=__doc__)
    parser.add_argument("--stats", type=Path, required=True, help="shared counters file")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.stats, args.host))


if __name__ == "__main__":
    main()
