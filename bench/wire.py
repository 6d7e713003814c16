"""The websocket bytes the benchmark puts on the wire and reads back, with no I/O.

Everything here is pure: frame encoding (done once per workload, before any
socket exists), the hand-written HTTP upgrade request and 101 response, and two
counters that follow a frame stream - :class:`FixedSizeCounter` by plain size
arithmetic for the hot paths, where every frame on a connection has the same
length, and :class:`FrameScanner`, a header-only state machine (the same shape
as the module's) for the connections whose frames differ.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from enum import IntEnum

# RFC 6455 section 1.3.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# A fixed, valid 16-byte nonce: every bench client sends the same key, so the
# backend computes its accept value once (it still handles any other key).
CLIENT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="

# A fixed mask: the benchmark measures the proxy, not the randomness of masks.
CLIENT_MASK = b"\x37\xfa\x21\x3d"


class Opcode(IntEnum):
    """Frame opcodes used by the benchmark (RFC 6455 section 5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


def _length_header(first: int, length: int, masked: bool) -> bytes:
    mask_bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first, mask_bit | length))
    if length < 1 << 16:
        return bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    return bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (masking and unmasking are the same)."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def client_frame(opcode: Opcode, payload: bytes, mask: bytes = CLIENT_MASK) -> bytes:
    """One final, masked frame as a client sends it."""
    header = _length_header(0x80 | opcode, len(payload), masked=True)
    return header + mask + apply_mask(payload, mask)


def server_frame(opcode: Opcode, payload: bytes) -> bytes:
    """One final, unmasked frame as a server sends it."""
    return _length_header(0x80 | opcode, len(payload), masked=False) + payload


def close_payload(code: int = 1000, reason: bytes = b"") -> bytes:
    """The payload of a close frame: 2-byte status code, then the reason."""
    return code.to_bytes(2, "big") + reason


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def upgrade_request(path: str, host: str) -> bytes:
    """The complete HTTP/1.1 upgrade request a bench client writes, built once."""
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {CLIENT_KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode("ascii")


def switching_protocols(key: str) -> bytes:
    """The backend's 101 response for ``key``."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
        "\r\n"
    ).encode("ascii")


BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class UpgradeRequest:
    """What the backend needs from a request head: the target and the key."""

    path: str
    query: dict[str, str]
    key: str


def parse_upgrade_request(head: bytes) -> UpgradeRequest | None:
    """Read a request head (up to, excluding, the blank line); ``None`` if it is no upgrade."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "GET":
        return None
    key = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    if len(key) != 24:
        return None
    path, _, raw_query = parts[1].partition("?")
    query: dict[str, str] = {}
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            query[name] = value
    return UpgradeRequest(path=path, query=query, key=key)


class FixedSizeCounter:
    """Counts frames of one known wire size by arithmetic: O(1) per read, not per frame."""

    __slots__ = ("frame_size", "_partial")

    def __init__(self, frame_size: int) -> None:
        if frame_size <= 0:
            raise ValueError("frame_size must be positive")
        self.frame_size = frame_size
        self._partial = 0

    def next_boundary(self) -> int:
        """Bytes still to come before the next frame starts (0: the next byte starts one)."""
        return -self._partial % self.frame_size

    def feed(self, nbytes: int) -> int:
        """Account ``nbytes`` more bytes of the stream; return how many frames they completed."""
        done, self._partial = divmod(self._partial + nbytes, self.frame_size)
        return done


@dataclass(frozen=True)
class Frame:
    """A complete frame with its unmasked payload (only kept when asked for)."""

    opcode: int
    payload: bytes


class FrameScanner:
    """Follows one direction's frame stream by its headers; a header may split at any byte.

    Counts every frame and notes a close frame.  With ``keep_payloads`` the
    completed frames are returned unmasked (the echo backend's slow path);
    otherwise payload bytes are only skipped, never copied.
    """

    def __init__(self, *, keep_payloads: bool = False) -> None:
        self.keep_payloads = keep_payloads
        self.frames = 0
        self.close_seen = False
        self._head = bytearray()
        self._remaining = 0
        self._opcode = 0
        self._mask = b""
        self._payload = bytearray()

    @staticmethod
    def _header_size(head: bytearray) -> int:
        size = 2
        length7 = head[1] & 0x7F
        if length7 == 126:
            size += 2
        elif length7 == 127:
            size += 8
        if head[1] & 0x80:
            size += 4
        return size

    def _start_frame(self) -> None:
        head = self._head
        length7 = head[1] & 0x7F
        offset = 2
        if length7 == 126:
            length = int.from_bytes(head[2:4], "big")
            offset = 4
        elif length7 == 127:
            length = int.from_bytes(head[2:10], "big")
            offset = 10
        else:
            length = length7
        self._opcode = head[0] & 0x0F
        self._mask = bytes(head[offset : offset + 4]) if head[1] & 0x80 else b""
        self._remaining = length
        head.clear()

    def _finish_frame(self, out: list[Frame]) -> None:
        self.frames += 1
        if self._opcode == Opcode.CLOSE:
            self.close_seen = True
        if self.keep_payloads:
            payload = bytes(self._payload)
            if self._mask:
                payload = apply_mask(payload, self._mask)
            out.append(Frame(self._opcode, payload))
            self._payload.clear()

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completed (empty unless ``keep_payloads``)."""
        out: list[Frame] = []
        pos = 0
        end = len(data)
        head = self._head
        while pos < end:
            if self._remaining:
                take = min(self._remaining, end - pos)
                if self.keep_payloads:
                    self._payload += data[pos : pos + take]
                self._remaining -= take
                pos += take
                if not self._remaining:
                    self._finish_frame(out)
                continue
            need = 2 if len(head) < 2 else self._header_size(head)
            while len(head) < need and pos < end:
                take = min(need - len(head), end - pos)
                head += data[pos : pos + take]
                pos += take
                if len(head) >= 2:
                    need = self._header_size(head)
            if len(head) < need:
                break
            self._start_frame()
            if not self._remaining:
                self._finish_frame(out)
        return out
