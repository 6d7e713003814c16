"""The mutated-head corpus: the same first answer as Debian's nginx on every
input (issue 8, item 8).

Each of the 1000 heads of ``head_corpus.corpus()`` goes to nginx and to
ngxws running the same conf, on its own connection, many at a time; what is
compared is the first line each sent back (its status line), "closed" when
it closed without answering, or "silent" when it said nothing for
``WAIT`` seconds (an incomplete head waits for client_header_timeout).
``KNOWN`` lists the documented differences (README, "differs from nginx"):
an input of such a class may answer differently, any other must agree.

Run ``python tests/differential/test_head_corpus.py`` to print every
disagreement.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from head_corpus import CONF, corpus  # noqa: E402
from oracle import NGINX, Group, Running  # noqa: E402

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian nginx not installed")

WAIT = 3.0
PARALLEL = 48

# Inputs on which ngxws may answer differently, each with the reason
# (mirrored in README's "differs from nginx" list).  Keep it short.
KNOWN: dict[str, str] = {}


def first_line(addr: tuple[str, int], data: bytes) -> str:
    """What a server answered first: its first line, "closed" or "silent"."""
    deadline = time.monotonic() + WAIT
    try:
        with socket.create_connection(addr, timeout=WAIT) as sock:
            try:
                sock.sendall(data)
            except OSError:
                pass  # refused mid-send: the answer may already be there
            got = b""
            while b"\n" not in got:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "silent" if not got else "partial: " + got.decode("latin-1")
                sock.settimeout(left)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    return "silent" if not got else "partial: " + got.decode("latin-1")
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    return "closed" if not got else "partial: " + got.decode("latin-1")
                got += chunk
            return got.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    except OSError as exc:
        return f"error {type(exc).__name__}"


def compare(running: Running) -> tuple[int, list[tuple[str, bytes, str, str]]]:
    """Send the corpus to both sides; (inputs, disagreements)."""
    inputs = corpus()
    answers: dict[str, list[str]] = {}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for kind in ("nginx", "ngxws"):
            addr = ("127.0.0.1", running.sides[kind].ports[0])
            answers[kind] = list(pool.map(first_line, [addr] * len(inputs), [data for _, data in inputs]))
            running.take_records()
    diffs = [
        (name, data, a, b)
        for (name, data), a, b in zip(inputs, answers["nginx"], answers["ngxws"], strict=True)
        if a != b
    ]
    return len(inputs), diffs


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    r = Running(Group("head-corpus", CONF))
    yield r
    r.close()


def test_same_first_answer_as_nginx(running: Running) -> None:
    start = time.monotonic()
    total, diffs = compare(running)
    unexplained = [d for d in diffs if d[0] not in KNOWN]
    assert total >= 500
    assert not unexplained, "\n".join(f"{name}: {data!r}: nginx {a!r}, ngxws {b!r}" for name, data, a, b in unexplained[:40])
    assert time.monotonic() - start < 60


if __name__ == "__main__":
    r = Running(Group("head-corpus", CONF))
    try:
        t0 = time.monotonic()
        n, found = compare(r)
        for name, data, a, b in found:
            print(f"{name}: {data!r}\n    nginx {a!r}\n    ngxws {b!r}")
        print(f"{n - len(found)}/{n} agree ({time.monotonic() - t0:.1f}s)")
    finally:
        r.close()
