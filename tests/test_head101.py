"""Issue 13 item 1: head101's fast read of the upstream's 101 gives what the
general reader (UpstreamResponse, llhttp) gives, or declines.

Every head below is fed to both; wherever ``parse_101`` answers, the
status, reason, headers and leftover bytes must be the general reader's.
The heads it must decline are checked to decline (the general reader then
reads them, as before)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from ngxws.proxy.head101 import parse_101
from ngxws.proxy.upstream_response import UpstreamResponse

ACCEPT = b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"

SIMPLE = [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + ACCEPT + b"\r\n",
    b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n",
    b"HTTP/1.1 101 OK\r\nupgrade:websocket\r\nconnection:upgrade\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: a b  c\r\nX-B: =\r\nConnection: UPGRADE\r\n\r\n",
    b"HTTP/1.1 101 x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: keep-alive,upgrade\r\nUpgrade: websocket, h2c\r\n"
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX~!#$%&'*+.^_`|-1: v\r\n\r\n",
]

TAILS = [b"", b"\x81\x05hello", b"\x88\x02\x03\xe8", b"HTTP/1.1 200 OK\r\n\r\n", b"\r\n\r\n"]

DECLINED = [
    # llhttp: no upgrade without both headers (an invalid response to it)
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgradex\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: up grade\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: a b, upgrade\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade;q=1\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade ,x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101 \r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols \r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade:  websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket \r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\t\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade:\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: \r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade : websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n Upgrade: websocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nX: a\r\n b\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: web\x7fsocket\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nX: caf\xe9\r\n\r\n",
    b"HTTP/1.1 101 Sw\xeftching\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\ncontent-length: 5\r\n\r\nhello",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",  # not whole in this read
    b"HTTP/1.1 101 Switching Protocols",
    b"HTTP/1.1 1010 Switching Protocols\r\n\r\n",
    b"HTTP/1.1 102 Processing\r\n\r\n",
    b"http/1.1 101 Switching Protocols\r\n\r\n",
    b"HTTP/1.1  101 Switching Protocols\r\n\r\n",
    b"",
]


def general(data: bytes) -> UpstreamResponse:
    async def feed() -> UpstreamResponse:
        r = UpstreamResponse(head_only=False)
        r.data_received(data)
        return r

    return asyncio.run(feed())


@pytest.mark.parametrize("data", [h + t for h, t in itertools.product(SIMPLE, TAILS)])
def test_a_simple_101_reads_as_the_general_reader_reads_it(data: bytes) -> None:
    fast = parse_101(data)
    assert fast is not None
    slow = general(data)
    assert slow.upgraded and slow.head_done.done() and slow.head_done.exception() is None
    assert (fast.status, fast.version, fast.reason, fast.headers, fast.leftover) == (
        slow.status, slow.version, slow.reason, slow.headers, slow.leftover,
    )


@pytest.mark.parametrize("data", DECLINED)
def test_anything_else_is_left_to_the_general_reader(data: bytes) -> None:
    assert parse_101(data) is None


def test_mutations_of_a_simple_101_agree_or_decline() -> None:
    """Every one-byte change of a simple 101: the fast read declines, or
    agrees with the general reader (which must then have read a 101)."""
    base = SIMPLE[0] + b"\x81\x05hello"
    agreed = declined = 0
    for i in range(len(base)):
        for byte in (0x00, 0x09, 0x0A, 0x0D, 0x20, 0x3A, 0x41, 0x7F, 0xE9):
            data = base[:i] + bytes([byte]) + base[i + 1 :]
            fast = parse_101(data)
            if fast is None:
                declined += 1
                continue
            slow = general(data)
            assert slow.status == 101 and slow.upgraded and slow.error is None, data
            assert (fast.reason, fast.headers, fast.leftover) == (slow.reason, slow.headers, slow.leftover), data
            agreed += 1
    assert agreed > 50 and declined > 100
