"""The PROXY protocol preface (HAProxy's v1 text line and v2 binary
header, as AWS NLB and HAProxy send it), read as nginx 1.22's
ngx_proxy_protocol_read() reads it.  Pure: bytes in, a verdict out.

nginx reads the preface from the first read of the connection only; a
preface split across reads is "broken" there.  ngxws waits for the rest
while the bytes so far can still begin a valid preface (bounded by the
size a preface can have and by ``client_header_timeout``), then judges the
bytes exactly as nginx would have judged them arriving at once.

What nginx keeps (``$proxy_protocol_addr`` and friends): v1 ``TCP4``/``TCP6``
addresses as written (nginx checks only their characters), the ports;
v2 ``PROXY`` over ``STREAM`` for ``AF_INET``/``AF_INET6`` (TLVs skipped).
``PROXY UNKNOWN``, v2 ``LOCAL``, other transports and families are
accepted with no address.  Anything else is broken: nginx logs
``broken header`` and closes the connection without a response.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Broken", "Incomplete", "Preface", "ProxyHeader", "read_preface"]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
_V1_LIMIT = 107  # NGX_PROXY_PROTOCOL_MAX_HEADER: the longest v1 line
_HEX_ADDR = frozenset(b"0123456789abcdefABCDEF:.")


@dataclass(frozen=True)
class ProxyHeader:
    """The addresses a PROXY preface carried (nginx's ngx_proxy_protocol_t)."""

    src_addr: str
    src_port: int
    dst_addr: str
    dst_port: int


@dataclass(frozen=True)
class Preface:
    """A complete preface: ``length`` bytes long, ``header`` None when it
    carried no address (UNKNOWN, LOCAL...)."""

    length: int
    header: ProxyHeader | None


@dataclass(frozen=True)
class Incomplete:
    """The bytes so far may still begin a valid preface: read more."""


@dataclass(frozen=True)
class Broken:
    """Not a preface nginx accepts; ``message`` is its error log line."""

    message: str


def read_preface(buf: bytes) -> Preface | Incomplete | Broken:
    """Judge the bytes a connection has sent so far."""
    if buf[:12] == V2_SIGNATURE[: len(buf[:12])]:
        if len(buf) < 16:
            return Incomplete()
        return _read_v2(buf)
    if len(buf) < 8 and _V1_PREFIX.startswith(buf[:6]):
        return Incomplete()
    if b"\n" not in buf and len(buf) < _V1_LIMIT and buf.startswith(_V1_PREFIX):
        return Incomplete()
    return _read_v1(buf)


def _broken(buf: bytes) -> Broken:
    return Broken(f'broken header: "{buf.decode("latin-1")}"')


def _read_v1(buf: bytes) -> Preface | Broken:
    if len(buf) < 8 or not buf.startswith(_V1_PREFIX):
        return _broken(buf)
    p = 6
    if buf.startswith(b"UNKNOWN", p):
        end = buf.find(b"\r\n", p + 7)
        return _broken(buf) if end < 0 else Preface(end + 2, None)
    if not (buf.startswith(b"TCP", p) and buf[p + 3 : p + 4] in (b"4", b"6") and buf[p + 4 : p + 5] == b" "):
        return _broken(buf)
    p += 5
    fields: list[str] = []
    for _ in range(2):  # ngx_proxy_protocol_read_addr(): hex digits, ':' and '.'
        end = buf.find(b" ", p)
        if end < 0 or any(c not in _HEX_ADDR for c in buf[p:end]):
            return _broken(buf)
        fields.append(buf[p:end].decode("ascii"))
        p = end + 1
    ports: list[int] = []
    for sep in (b" ", b"\r"):  # ngx_proxy_protocol_read_port()
        end = buf.find(sep, p)
        text = buf[p:end]
        if end < 0 or not text.isdigit() or int(text) > 65535:
            return _broken(buf)
        ports.append(int(text))
        p = end + 1
    if buf[p : p + 1] != b"\n":
        return _broken(buf)
    return Preface(p + 1, ProxyHeader(fields[0], ports[0], fields[1], ports[1]))


def _read_v2(buf: bytes) -> Preface | Incomplete | Broken:
    version, command = buf[12] >> 4, buf[12] & 0x0F
    if version != 2:
        return Broken(f"unknown PROXY protocol version: {version}")
    length = int.from_bytes(buf[14:16], "big")
    end = 16 + length
    if len(buf) < end:
        return Incomplete()
    family, transport = buf[13] >> 4, buf[13] & 0x0F
    if command != 1 or transport != 1 or family not in (1, 2):
        return Preface(end, None)  # LOCAL, UDP, AF_UNIX...: no address, as nginx
    size = 4 if family == 1 else 16
    if length < 2 * size + 4:
        return Broken("PROXY protocol v2 address block too short")
    body = buf[16:end]
    if family == 1:
        src, dst = str(ipaddress.IPv4Address(body[:4])), str(ipaddress.IPv4Address(body[4:8]))
    else:
        src, dst = ntop6(body[:16]), ntop6(body[16:32])
    ports = body[2 * size : 2 * size + 4]
    return Preface(
        end,
        ProxyHeader(src, int.from_bytes(ports[:2], "big"), dst, int.from_bytes(ports[2:], "big")),
    )


def ntop6(packed: bytes) -> str:
    """An IPv6 address as ngx_inet6_ntop() writes it: RFC 5952's shortest
    form, with a dotted IPv4 tail for IPv4-mapped and -compatible ones."""
    addr = ipaddress.IPv6Address(packed)
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return addr.compressed
