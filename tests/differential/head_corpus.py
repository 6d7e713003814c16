"""Mutated request heads, generated deterministically (issue 8, item 8).

A set of valid requests (a GET, a POST with a body, a chunked POST, a
websocket upgrade, an absolute-form target, HTTP/1.0 ...) is mutated with a
fixed seed: byte flips, insertions of CR/LF/NUL/space/tab/colon/high bytes,
deletions, duplicated or removed header lines, and targeted mutations of the
method, the version, the target and the values nginx checks (Host,
Content-Length, Transfer-Encoding, Connection, Upgrade).  Each mutation is
sent to Debian's nginx and to ngxws on the same conf; the first line each
answered (or that it closed, or said nothing) must be the same.
"""

from __future__ import annotations

import random

SEED = 8
KEY = "dGhlIHNhbXBsZSBub25jZQ=="

CONF = """
    server {
        listen 127.0.0.1:@L0@;
        location / { proxy_pass http://127.0.0.1:@B0@; }
        location /ws/ {
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /ret/ { return 200 "ret\\n"; }
    }
"""

BASES: list[bytes] = [
    b"GET /p/index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: corpus/1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    b"POST /p/form HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    b"POST /p/chunk HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ("GET /ws/chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode(),
    b"GET http://example.com:80/p/abs?x=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    b"GET /p/old HTTP/1.0\r\nAccept: */*\r\n\r\n",
    b"HEAD /ret/x HTTP/1.1\r\nHost: example.com\r\nCookie: a=b\r\nConnection: close\r\n\r\n",
    b"PUT /p/put HTTP/1.1\r\nHost: example.com:8080\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
]

INSERTS = [b"\r", b"\n", b"\x00", b" ", b"\t", b":", b"\x80", b"\xff", b"_", b"/", b"@", b"\x7f", b"\x01", b";", b"\"", b"#"]

METHODS = [b"get", b"CONNECT", b"TRACE", b"PROPFIND", b"G_T", b"G-T", b"", b"GET GET", b"GE\x00T", b"\xc3\x89T", b"OPTIONS",
           b"DELETE", b"PATCH", b"X" * 40, b"GET\t", b"M-SEARCH", b"PRI"]
VERSIONS = [b"HTTP/1.2", b"HTTP/2.0", b"HTTP/1.10", b"HTTP/01.1", b"HTTP/1", b"http/1.1", b"HTTP/1.1x", b"", b"HTTP/0.9",
            b"HTTP/1.01", b"HTTP/1.999", b"HTTP/1.1000", b"HTTP/3", b"HTTP/1.1 ", b"HTTP/1.1  ", b"HTTPS/1.1", b"HTTP/ 1.1",
            b"HTTP/9.9", b"HTTP/1.0", b"HTTP/11.1"]
TARGETS = [b"*", b"", b"//p//a", b"/p/../..", b"/p/%00", b"/p/%zz", b"http://u@example.com/p", b"http://example.com",
           b"http://example.com?x", b"http://[::1]:80/p", b"http://[::1/p", b"http://exa_mple.com/p", b"https://example.com:443/p",
           b"ftp://example.com/p", b"http://example.com:x/p", b"http:/example.com/p", b"p/relative", b"/p/a b", b"/p/a\tb",
           b"/p/\x7f", b"/p/\xe9", b"/p/#frag", b"/p?q#f", b"http://example..com/p", b"http://.example.com/p",
           b"http://example.com./p", b"example.com:443", b"/p/" + b"a" * 300, b"http://example.com:99999999999999999999/p",
           b"/p/%2e%2e/%2e%2e/x"]
HEADERS = [
    b"Host: ", b"Host:", b"Host: \texample.com", b"Host: exa mple.com", b"Host: [::1", b"Host: [::1]:80", b"Host: .example.com",
    b"Host: example..com", b"Host: example.com.", b"Host: ex/ample", b"Host: ex\\ample", b"Host: example.com:abc",
    b"Host: example.com", b"Host", b"Content-Length: -1", b"Content-Length: +5", b"Content-Length: 5 5", b"Content-Length: ",
    b"Content-Length: 99999999999999999999999", b"Content-Length: 0x5", b"Content-Length: 5", b"Content-Length: 0",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity, chunked", b"Transfer-Encoding: xchunked",
    b"Transfer-Encoding: Chunked", b"Transfer-Encoding: chunked, identity", b"Transfer-Encoding: identity",
    b"Transfer-Encoding:  chunked ", b"Transfer-Encoding: \tchunked", b"Connection: keep-alive", b"Connection: close, upgrade",
    b"Upgrade: websocket", b"Upgrade: h2c", b"Expect: 100-continue", b"If-Match: a", b"Authorization: Basic eDp5",
    b"X_Under: 1", b"X Space: 1", b"X\tTab: 1", b"X{Brace}: 1", b"X\xe9: 1", b": empty name", b" leading: space",
    b"\tleading: tab", b"X-Fold: a\r\n folded", b"X-Nul: a\x00b", b"X-Ctl: a\x01b", b"X-High: \xff\xfe", b"X-Cr: a\rb",
    b"NoColon", b"X-Long-" + b"n" * 64 + b": 1",
]


def _lines(head: bytes) -> tuple[list[bytes], bytes]:
    """The head's lines (without CRLF) and what follows the head."""
    text, _, rest = head.partition(b"\r\n\r\n")
    return text.split(b"\r\n"), rest


def _join(lines: list[bytes], rest: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + rest


def _mutate(rng: random.Random, base: bytes) -> tuple[str, bytes]:
    lines, rest = _lines(base)
    head_len = len(base) - len(rest)
    kind = rng.choice([
        "flip", "flip", "insert", "insert", "insert", "delete", "dup", "remove", "method", "version",
        "target", "header", "header", "header", "bare-lf", "cr-only", "chunks", "swap-case",
    ])
    if kind == "flip":
        i = rng.randrange(head_len)
        b = bytearray(base)
        b[i] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "insert":
        i = rng.randrange(head_len)
        return kind, base[:i] + rng.choice(INSERTS) + base[i:]
    if kind == "delete":
        i = rng.randrange(head_len)
        return kind, base[:i] + base[i + 1 :]
    if kind in ("dup", "remove") and len(lines) > 1:
        i = rng.randrange(1, len(lines))
        if kind == "dup":
            lines.insert(i, lines[i])
        else:
            del lines[i]
        return kind, _join(lines, rest)
    method, _, after = lines[0].partition(b" ")
    target, _, version = after.rpartition(b" ")
    if kind == "method":
        lines[0] = rng.choice(METHODS) + b" " + target + b" " + version
        return kind, _join(lines, rest)
    if kind == "version":
        lines[0] = method + b" " + target + (b" " if rng.random() < 0.9 else b"  ") + rng.choice(VERSIONS)
        return kind, _join(lines, rest)
    if kind == "target":
        lines[0] = method + b" " + rng.choice(TARGETS) + b" " + version
        return kind, _join(lines, rest)
    if kind == "header":
        lines.insert(rng.randrange(1, len(lines) + 1), rng.choice(HEADERS))
        return kind, _join(lines, rest)
    if kind == "bare-lf":
        if rng.random() < 0.5:
            return kind, base[:head_len].replace(b"\r\n", b"\n") + rest
        i = rng.randrange(len(lines))
        return kind, b"\r\n".join(lines[:i]) + (b"\r\n" if i else b"") + lines[i] + b"\n" + b"\r\n".join(lines[i + 1 :]) + b"\r\n\r\n" + rest
    if kind == "cr-only":
        i = rng.randrange(len(lines))
        lines[i] = lines[i] + b"\r"
        return kind, _join(lines, rest)
    if kind == "chunks":
        body = rng.choice([
            b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\nhello\r\n0\r\n\r\n", b"5;ext=1\r\nhello\r\n0\r\n\r\n", b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\nhello\n0\n\n", b"fffffffffffffffff\r\nx\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n",
            b"0\r\nTrailer: x\r\n\r\n", b"0x5\r\nhello\r\n0\r\n\r\n", b"\r\n5\r\nhello\r\n0\r\n\r\n",
        ])
        if not any(line.lower().startswith(b"transfer-encoding") for line in lines):
            lines = [ln for ln in lines if not ln.lower().startswith(b"content-length")]
            lines.insert(1, b"Transfer-Encoding: chunked")
        return kind, _join(lines, body)
    # swap-case of a header name, or anything that did not apply above
    i = rng.randrange(len(lines))
    lines[i] = lines[i].swapcase()
    return "swap-case", _join(lines, rest)


def corpus(count: int = 1000, seed: int = SEED) -> list[tuple[str, bytes]]:
    """``count`` mutations, the same list every time (a fixed seed)."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = [("base", b) for b in BASES]
    while len(out) < count:
        kind, data = _mutate(rng, rng.choice(BASES))
        out.append((kind, data))
    return out
