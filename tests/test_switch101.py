"""Issue 13, W5 (the upgrade's 101 to the tunnel's end): each fast step
equals the general one it stands in for, over tables of inputs.

- ``switching_head`` without a filter where ``switch101.plain_hidden``
  says none can act, against ``handshake.switching_head`` through the headers filter and
  ``response_head``, for every location of a real configuration (crossplane)
  and a table of upstream 101s; locations it does not take are the ones
  that need the general path (add_header, expires, charset, an upstream
  Server/Date passed);
- ``upgrade.switched_to_websocket``'s usual-pair shortcut against the
  tokenizing rule it short-cuts;
- ``head101.py_parse_101`` (findall of lines) against the line loop it
  replaced, and the extension's ``parse_101`` (C) against ``py_parse_101``,
  over the heads of tests/test_head101.py and random mutations of them;
- ``breakdown.record_close`` (a closer's field by dict, the duration bucket by
  bisect) against the linear searches it replaced.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_head101 import DECLINED, SIMPLE, TAILS

from ngxws.accounting import breakdown as B
from ngxws.accounting import counters as C
from ngxws.config.loader import load_config
from ngxws.config.model import Location, Server
from ngxws.http.request import RequestHead
from ngxws.proxy.handshake import switching_head
from ngxws.proxy.head101 import Head101, parse_101, py_parse_101
from ngxws.proxy.header_phase import filtered
from ngxws.proxy.switch101 import plain_hidden
from ngxws.proxy.upgrade import switched_to_websocket, tokens
from ngxws.proxy.upstream_response import hidden_headers
from ngxws.ws.frames import CRelay

# -- the client's 101 --------------------------------------------------------

# name -> (location body, whether its 101 is plain)
LOCATIONS: dict[str, tuple[str, bool]] = {
    "/plain": ("", True),
    "/hide": ("proxy_hide_header X-A; proxy_hide_header x-b;", True),
    "/hide-upgrade": ("proxy_hide_header Upgrade;", True),  # Upgrade passes all the same
    "/hide-accept": ("proxy_hide_header Sec-WebSocket-Accept;", True),
    "/pass-accel": ("proxy_pass_header X-Accel-Redirect; proxy_pass_header X-Accel-Buffering;", True),
    "/pass-hop": ("proxy_pass_header Keep-Alive; proxy_pass_header Connection;", True),
    "/pass-x": ("proxy_pass_header X-Pad; proxy_hide_header X-Pad;", True),
    "/pass-server": ("proxy_pass_header Server;", False),
    "/pass-date": ("proxy_pass_header Date;", False),
    "/add": ("add_header X-Y 1;", False),
    "/add-always": ("add_header X-Y $uri always;", False),
    "/expires": ("expires 1h;", False),
    "/charset": ("charset utf-8;", False),
    "/hide-server": ("proxy_hide_header Server; proxy_hide_header Date;", True),
}


def _locations(tmp_path: Path, server_extra: str = "") -> list[tuple[Server, Location]]:
    body = "\n".join(
        f"location {name} {{ proxy_pass http://127.0.0.1:9; proxy_http_version 1.1; {extra} }}"
        for name, (extra, _) in LOCATIONS.items()
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp {\n server {\n  listen 127.0.0.1:8080;\n"
        f"  {server_extra}\n  {body}\n }}\n}}\n"
    )
    (server,) = load_config(str(conf)).servers
    return [(server, loc) for loc in server.locations]


ACCEPT = ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

RESPONSES: list[Head101] = [h for h in (parse_101(d) for d in SIMPLE) if h is not None] + [
    Head101("Switching Protocols", [("Upgrade", "websocket"), ("Connection", "upgrade"), ACCEPT], b""),
    Head101("", [("Upgrade", "websocket"), ("Connection", "upgrade")], b""),  # the general reader's empty reason
    Head101("OK", [("upgrade", "websocket"), ("CONNECTION", "Upgrade"), ("Server", "backend/1"),
                   ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("X-Pad", "p"), ("X-Accel-Redirect", "/x"),
                   ("X-Accel-Buffering", "no"), ("Keep-Alive", "timeout=5"), ("X-A", "a"), ("X-B", "b"),
                   ("Sec-WebSocket-Accept", "k"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], b""),  # fmt: skip
    Head101("Switching Protocols", [("Upgrade", "websocket"), ("Upgrade", "h2c"), ("Connection", "upgrade")], b"x"),
    Head101("Switching Protocols", [("Connection", "upgrade"), ("Upgrade", "websocket"), ("X-L", "caf\xe9")], b""),
    Head101("Switching Protocols", [("Upgrade", "websocket"), ("Content-Type", "text/plain"),
                                    ("Last-Modified", "x"), ("Connection", "upgrade")], b""),  # fmt: skip
]

_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def _undated(head: bytes) -> bytes:
    """``head`` with its Date value blanked (the two answers may straddle a second)."""
    assert len(_DATE.findall(head)) == 1
    return _DATE.sub(b"\r\nDate: -\r\n", head)


def _general(server: Server, loc: Location, response: Head101) -> bytes:
    """What tunnel_now writes through the general steps (the headers filter
    runs for real; on these locations it reads nothing of the client)."""
    head = RequestHead("GET", "/", "1.1", [("Host", "a"), ("Upgrade", "websocket")], True)
    client: Any = None
    return switching_head(response, lambda status, h: filtered(client, loc, server, head, status, h, proxied=True),
                          hidden_headers(loc.proxy.hide_headers, loc.proxy.pass_headers))  # fmt: skip


def test_plain_answer_is_switching_head(tmp_path: Path) -> None:
    pairs = _locations(tmp_path)
    assert len(pairs) == len(LOCATIONS)
    compared = 0
    for server, loc in pairs:
        plain = plain_hidden(loc)
        assert (plain is not None) == LOCATIONS[loc.pattern][1], loc.pattern
        assert plain_hidden(loc) is plain  # the per-location plan, kept
        if plain is None:
            continue
        for response in RESPONSES:
            assert _undated(switching_head(response, None, plain)) == _undated(_general(server, loc, response)), (
                loc.pattern, response.headers)  # fmt: skip
            compared += 1
    assert compared == sum(plain for _, plain in LOCATIONS.values()) * len(RESPONSES)


def test_server_add_header_is_not_plain(tmp_path: Path) -> None:
    """An add_header inherited from the server level makes every location's 101 general."""
    for _, loc in _locations(tmp_path, "add_header X-S 1;"):
        assert plain_hidden(loc) is None, loc.pattern


# -- the websocket check -------------------------------------------------------


def _reference_switched(offered: str | None, response_headers: Sequence[tuple[str, str]]) -> bool:
    """switched_to_websocket before its shortcut."""
    if "websocket" not in tokens(offered):
        return False
    said = [v for n, v in response_headers if n.lower() == "upgrade"]
    chosen = tokens(", ".join(said)) if said else tokens(offered)
    return chosen == ["websocket"]


OFFERS = [None, "", "websocket", "WebSocket", "websocket ", " websocket", "websocket/13", "h2c", "websocket, h2c",
          "h2c, websocket", "websocket,websocket", "websockets", "web socket", ",websocket,", "WEBSOCKET"]  # fmt: skip
SAID: list[list[tuple[str, str]]] = [
    [],
    [("Upgrade", "websocket")],
    [("upgrade", "WebSocket")],
    [("UPGRADE", "websocket/13")],
    [("Upgrade", "websocket ")],
    [("Upgrade", "h2c")],
    [("Upgrade", "websocket, h2c")],
    [("Upgrade", "websocket"), ("Upgrade", "websocket")],
    [("Upgrade", "websocket"), ("Upgrade", "h2c")],
    [("Upgrade", "")],
    [("Upgrade", "websockets")],
    [("Connection", "upgrade"), ("X-Upgrade", "websocket")],
]


@pytest.mark.parametrize("offered", OFFERS)
def test_switched_to_websocket_shortcut(offered: str | None) -> None:
    headers = [("Host", "a")] if offered is None else [("Host", "a"), ("Upgrade", offered)]
    head = RequestHead("GET", "/", "1.1", headers, True)
    for said in SAID:
        response_headers = [("Connection", "upgrade"), *said]
        assert switched_to_websocket(head, response_headers) == _reference_switched(offered, response_headers), said


# -- parse_101 -------------------------------------------------------------------

_VALUE = rb"[!-~](?:[ -~]*[!-~])?"
_OLD_HEAD = re.compile(
    rb"HTTP/1\.1 101 (" + _VALUE + rb")\r\n((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+: ?" + _VALUE + rb"\r\n)*)\r\n"
)
_OLD_TOKENS = re.compile(r"[0-9A-Za-z-]+(?:, ?[0-9A-Za-z-]+)*")


def _reference_parse_101(data: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """parse_101 before findall (its line loop)."""
    m = _OLD_HEAD.match(data)
    if m is None:
        return None
    block = m.group(2).decode("ascii")
    low = block.lower()
    if "content-length" in low or "transfer-encoding" in low:
        return None
    headers = []
    upgrade = connection_upgrade = False
    for line in block.split("\r\n")[:-1]:
        key, _, raw = line.partition(":")
        value = raw.lstrip(" ")
        low_key = key.lower()
        if low_key == "upgrade":
            upgrade = True
        elif low_key == "connection":
            if _OLD_TOKENS.fullmatch(value) is None:
                return None
            if "upgrade" in value.lower().replace(" ", "").split(","):
                connection_upgrade = True
        headers.append((key, value))
    if not (upgrade and connection_upgrade):
        return None
    return m.group(1).decode("ascii"), headers, data[m.end() :]


def _read(parse: Callable[[bytes], Head101 | None], data: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    head = parse(data)
    if head is None:
        return None
    assert type(head) is Head101 and head.status == 101 and head.version == "1.1"
    assert all(type(n) is str and type(v) is str for n, v in head.headers)
    return head.reason, list(head.headers), head.leftover


EXTRA_HEADS = [
    b"HTTP/1.1 101 S\r\nX-Upgrade: websocket\r\nConnection: upgrade\r\n\r\n",  # no Upgrade line
    b"HTTP/1.1 101 S\r\nUpgrade-X: websocket\r\nConnection: upgrade\r\n\r\n",
    b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nX-Connection: upgrade\r\n\r\n",
    b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection-X: upgrade\r\n\r\n",
    b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection:upgrade\r\nConnection: a b\r\n\r\n",
    b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: x\r\nConnection: Upgrade\r\nX: a:b: c\r\n\r\n",
    b"HTTP/1.1 101 S\r\nUPGRADE: websocket\r\nCONNECTION: UPGRADE\r\nX:  \r\n\r\n",
    b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: upgrade\r\nX: upgrade: y\r\n\r\n",
    b"HTTP/1.1 101 S\r\nX: y\r\nupgrade:a\r\nconnection:keep-alive, upgrade\r\n\r\nrest",
    b"HTTP/1.1 101 S\r\nX: \r\nupgrade: a\r\n\r\n",
    b"HTTP/1.1 101 S\r\nX: content-length\r\nUpgrade: a\r\nConnection: upgrade\r\n\r\n",
]

_ALPHABET = b"ab:, \r\nUuCcpgrdeo-\t\x00\x7f\xe9"


def _mutations(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    bases = SIMPLE + DECLINED + EXTRA_HEADS
    out = []
    for _ in range(count):
        data = bytearray(rng.choice(bases) + rng.choice(TAILS))
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(3)
            at = rng.randrange(len(data) + 1)
            if op == 0 and data:
                del data[min(at, len(data) - 1)]
            elif op == 1:
                data[at:at] = bytes([rng.choice(_ALPHABET)])
            elif data:
                data[min(at, len(data) - 1)] = rng.choice(_ALPHABET)
        out.append(bytes(data))
    return out


def _heads() -> list[bytes]:
    return [h + t for h in SIMPLE + DECLINED + EXTRA_HEADS for t in TAILS] + _mutations(13, 20000)


def test_parse_101_as_before() -> None:
    """py_parse_101 (findall) is the line loop it replaced."""
    answered = 0
    for data in _heads():
        want = _reference_parse_101(data)
        assert _read(py_parse_101, data) == want, data
        answered += want is not None
    assert answered > 500  # the mutations keep many heads readable


@pytest.mark.skipif(CRelay is None, reason="the extension is not built or is switched off")
def test_c_parse_101_is_py_parse_101() -> None:
    """The extension's parse_101 (what parse_101 is when it is built) reads
    every head as py_parse_101 does, the nasty ones included."""
    assert parse_101 is not py_parse_101
    extra = [
        b"HTTP/1.1 101 ",
        b"HTTP/1.1 101 x\r",
        b"HTTP/1.1 101 x\r\n",
        b"HTTP/1.1 101 x\r\n\r",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\n\r",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\nX:\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade,\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: ,upgrade\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: x,  upgrade\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: x, upgrade\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: UpGrAdE-x, upgrade\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\nX: Transfer-Encodin\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\nX: TRANSFER-ENCODING\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\nX\x00: y\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\n: y\r\n\r\n",
        b"HTTP/1.1 101 \xe9\r\nUpgrade: a\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 101 x\r\nUpgrade: a\r\nConnection: upgrade\r\n\r\n" + bytes(range(256)),
    ]
    readable = 0
    for data in _heads() + _mutations(31, 30000) + extra:
        want = _read(py_parse_101, data)
        assert _read(parse_101, data) == want, data
        readable += want is not None
    assert readable > 1000
    with pytest.raises(TypeError):
        parse_101(bytearray(b"HTTP/1.1 101 x\r\n\r\n"))  # type: ignore[arg-type]  # bytes only (a recv's)


# -- record_close ------------------------------------------------------------------


def _reference_record_close(array: list[int], base: int, closer: str, seconds: float, silent: tuple[str, ...]) -> None:
    array[base + B.CLOSER_BASE + B.CLOSERS.index(closer)] += 1
    for direction in silent:
        array[base + B.AT[direction] + B.OPCODE_FIELDS + B.CLOSE_NONE] += 1
    for i, bound in enumerate(B.DURATION_BOUNDS):
        if seconds <= bound:
            array[base + B.DURATION_BASE + i] += 1
            break
    else:
        array[base + B.DURATION_BASE + len(B.DURATION_BOUNDS)] += 1
    array[base + B.DURATION_SUM_MS] += int(seconds * 1000)
    array[base + B.CLOSED] += 1


def test_record_close_as_before() -> None:
    counters = C.SharedCounters(slots=1, max_keys=2)
    array = counters.array
    base = C.KEY_FIELDS  # the second row
    durations = [0.0, 0.05, 0.1, 0.1000001, 0.99, 1.0, 5.0, 10.0, 59.9, 60.0, 300.0, 1799.0, 1800.0,
                 3600.0, 3600.5, 86400.0, 86400.01, 1e7]  # fmt: skip
    silents: list[tuple[str, ...]] = [(), ("client",), ("upstream",), ("client", "upstream")]
    for closer in B.CLOSERS:
        for seconds in durations:
            for silent in silents:
                want = array.tolist()
                _reference_record_close(want, base, closer, seconds, silent)
                B.record_close(array, base, closer, seconds, silent=silent)
                assert array.tolist() == want, (closer, seconds, silent)
