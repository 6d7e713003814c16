"""Issue 13 item 1: HeadBuffers' one-search path for a head that fits the
first buffer ends where the line walk ends, in the same state.

The walk is what a head fed in two pieces gets (the search applies only
to a head's first bytes); every head here is fed both ways."""

from __future__ import annotations

import itertools
import random

import pytest

from ngxws.http.request import HeadBuffers

LINES = [b"Host: x", b"A: " + b"b" * 300, b"", b"\r", b"X-Y: z\r", b"Cookie: " + b"c" * 900, b"Q: \r\r"]
ENDS = [b"\r\n", b"\n", b"\r\r\n"]


def state(h: HeadBuffers) -> tuple[object, ...]:
    return (h.done, h.used, h.line, h.busy, h.request_line, h.cap, h.at)


def both(data: bytes, num: int = 4, size: int = 8192, first: int = 1024) -> None:
    fast = HeadBuffers(num, size, first)
    slow = HeadBuffers(num, size, first)
    got = fast.feed(data)
    want = slow.feed(data[:1])
    if not want:
        want = slow.feed(data[1:])
        if want:
            slow.at += 1  # ``at`` is an offset in the data fed last: the second piece began at 1
    assert (got, state(fast)) == (want, state(slow)), data[:120]


def heads() -> list[bytes]:
    rng = random.Random(13)
    out = [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"GET / HTTP/1.1\n\n", b"\r\nGET / HTTP/1.1\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n"]
    for _ in range(400):  # bounded
        lines = [b"GET /" + b"p" * rng.choice((1, 50, 1200)) + b" HTTP/1.1"]
        lines += [rng.choice(LINES) for _ in range(rng.randrange(0, 8))]
        data = b"".join(line + rng.choice(ENDS) for line in lines) + rng.choice(ENDS + [b""]) + b"tail"
        out.append(data)
    return out


@pytest.mark.parametrize("data", heads())
def test_one_search_ends_where_the_line_walk_ends(data: bytes) -> None:
    both(data)


@pytest.mark.parametrize("first,size,num", list(itertools.product((64, 1024), (128, 8192), (1, 4))))
def test_small_buffers(first: int, size: int, num: int) -> None:
    for data in heads()[:60]:
        both(data, num, size, first)
