"""The ws_stat dashboard (issue 14, item 3): who gets the HTML page, and the
page itself in a real headless browser (Debian's chromium) during a load.

A real ngxws (``worker_processes 2``) in front of a real ``websockets``
backend that answers every message twice (so the two directions' rate
curves differ and both show); real clients send frames for the whole
browser session.  The browser loads the plain location URL (a navigation's
``Accept: text/html`` picks the page), polls the JSON once a second, and
the test reads what the page says it drew (``data-points`` on each canvas,
``data-polls`` on the body), compares its numbers with the JSON, and
decodes its screenshot to find the curve colours in the chart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, chromium, count_color, decode_png
from harness import LoopThread, free_port, ngxws, ws_backend
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection

from ngxws.sinks import dashboard

CLIENT_RGB = (0x1F, 0x77, 0xB4)  # --client in dashboard.html
UPSTREAM_RGB = (0xD6, 0x27, 0x28)  # --upstream
ACTIVE_RGB = (0x2C, 0xA0, 0x2C)  # --active
IDLE_PAGE = (  # the module's v1 page, byte for byte (README)
    b"WebSocket connections: 0\n"
    b"client websocket frames  | client websocket payload | client tcp data\n"
    b"0 0 0\n"
    b"upstream websocket frames  | upstream websocket payload | upstream tcp data\n"
    b"0 0 0\n"
)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("args", "accept", "html"),
    [
        (None, None, False),  # no Accept: the module's page
        (None, "*/*", False),  # curl, wget, the module's users' scripts
        (None, "text/*", False),  # a wildcard is not a request for HTML
        (None, "text/plain", False),
        (None, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", False),
        (None, BROWSER_ACCEPT, True),  # a browser's navigation
        (None, "TEXT/HTML", True),
        (None, "text/html;q=0", False),  # explicitly not wanted
        (None, "text/html;q=0.000", False),
        (None, "text/html ; q=0.5", True),
        (None, "text/html;q=x", False),
        (None, "application/json, text/html;level=1", True),
        ("format=html", None, True),
        ("format=html", "*/*", True),
        ("a=1&format=html", None, True),
        ("format=json", BROWSER_ACCEPT, False),  # the page's own polls, from a browser
        ("format=prometheus", BROWSER_ACCEPT, False),
        ("format=text", BROWSER_ACCEPT, False),  # an explicit format= wins over Accept
        ("format=", BROWSER_ACCEPT, False),
        ("format=json&format=html", None, False),  # the first format= decides, as $arg_format
        ("formats=html", None, False),
        ("x=format=html", BROWSER_ACCEPT, True),
    ],
)
def test_wants_html(args: str | None, accept: str | None, html: bool) -> None:
    assert dashboard.wants_html(args, accept) is html


def test_page_is_self_contained() -> None:
    """Nothing loaded from anywhere: no URL, no external script, style or
    image, and a policy that forbids any (the box may be offline)."""
    page = dashboard.PAGE.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.I), "a URL in the page"
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", page, re.I), "an external resource"
    assert "default-src 'none'" in page and "connect-src 'self'" in page
    assert "?format=json" in page


def _conf(port: int, backend: int) -> str:
    return f"""
worker_processes 2;
events {{ worker_connections 1024; }}
http {{
    server {{
        listen 127.0.0.1:{port};
        server_name dash.test;
        location /websocket_status {{ ws_stat; }}
        location /ws {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""


def _get(url: str, accept: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    headers = {} if accept is None else {"Accept": accept}
    req = urllib.request.Request(url, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, dict(resp.headers.items()), resp.read()


async def _twice(ws: ServerConnection) -> None:
    """The backend answers every message twice: upstream rates = 2 x client's."""
    async for message in ws:
        await ws.send(message)
        await ws.send(message)


class Load:
    """``clients`` websocket clients each sending a 200-byte message every
    20 ms (and reading both answers) until stopped; bounded in count and time."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.stop = threading.Event()
        self.open = threading.Event()
        self.sent = 0
        self.loop = LoopThread()
        self.future = asyncio.run_coroutine_threadsafe(self._run(), self.loop.loop)

    async def _client(self, opened: list[int]) -> None:
        async with connect(self.url, compression=None, ping_interval=None) as ws:
            opened.append(1)
            if len(opened) == self.clients:
                self.open.set()
            for _ in range(6000):  # 2 minutes at most
                if self.stop.is_set():
                    break
                await ws.send(b"x" * 200)
                await ws.recv()
                await ws.recv()
                self.sent += 1
                await asyncio.sleep(0.02)
            while not self.stop.is_set():  # stay open, idle, until the test ends
                await asyncio.sleep(0.05)

    async def _run(self) -> None:
        opened: list[int] = []
        await asyncio.wait_for(asyncio.gather(*(self._client(opened) for _ in range(self.clients))), 180)

    def finish(self) -> None:
        self.stop.set()
        try:
            self.future.result(30)
        finally:
            self.loop.close()


def test_text_page_unchanged_for_non_browsers(tmp_path: Path) -> None:
    """Over the wire: the v1 text page for no Accept and ``*/*`` (the same
    bytes the text renderer makes), the dashboard for a browser and for
    ``?format=html``, the JSON for ``?format=json`` even from a browser."""
    port = free_port()
    with ws_backend() as backend, ngxws(_conf(port, backend), tmp_path, port):
        base = f"http://127.0.0.1:{port}/websocket_status"
        text = [_get(base, accept) for accept in (None, "*/*", "text/plain", "text/*")]
        for status, headers, body in text:
            assert status == 200 and headers["Content-Type"] == "text/plain"
            assert body == text[0][2]
            assert body.startswith(b"WebSocket connections: 0\nclient websocket frames")
        assert text[0][2] == IDLE_PAGE
        for url, accept in ((base, BROWSER_ACCEPT), (base + "?format=html", None), (base + "?format=html", "*/*")):
            status, headers, body = _get(url, accept)
            assert status == 200
            assert headers["Content-Type"] == "text/html; charset=utf-8"
            assert body == dashboard.PAGE
        status, headers, body = _get(base, BROWSER_ACCEPT, method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(dashboard.PAGE)
        status, headers, body = _get(base + "?format=json", BROWSER_ACCEPT)
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["schema"] == "ngxws-stats/2"


async def _closed_with(url: str, code: int) -> None:
    """One short tunnel the client closes with ``code`` after one message."""
    async with connect(url, compression=None, ping_interval=None) as ws:
        await ws.send(b"y" * 3000)
        await ws.recv()
        await ws.recv()
        await ws.close(code, "done")


def _json(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_get(url + "?format=json")[2])
    return doc


@pytest.mark.timeout(240)
def test_dashboard_draws_live_curves(tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), "chromium missing: scripts/install-chromium.sh"
    port = free_port()
    clients = 6
    with ws_backend(_twice) as backend, ngxws(_conf(port, backend), tmp_path, port):
        base = f"http://127.0.0.1:{port}/websocket_status"
        load = Load(f"ws://127.0.0.1:{port}/ws", clients)
        try:
            assert load.open.wait(30), "clients did not connect"
            assert _json(base)["totals"]["active"] == clients
            for code in (4000, 1000):  # two closed tunnels: the codes' table has rows
                load.loop.run(_closed_with(f"ws://127.0.0.1:{port}/ws", code), timeout=30)
            profile = tmp_path / "chromium-profile"
            profile.mkdir()
            with chromium(base, profile) as page:  # the plain URL: the browser's Accept picks the page
                polls = page.wait_for("Number(document.body.dataset.polls) >= 5 && Number(document.body.dataset.polls)", 60)
                assert polls >= 5
                assert page.eval("document.body.dataset.errors") == "0"
                points = page.eval("[...document.querySelectorAll('canvas')].map(c => [c.id, Number(c.dataset.points)])")
                drawn = dict(points)
                # open tunnels: a point a poll; rates: a point a poll after the first, two directions
                assert drawn["c-active"] >= 5, drawn
                assert drawn["c-frames"] >= 8 and drawn["c-bytes"] >= 8, drawn
                assert page.eval("document.body.dataset.active") == str(clients)
                assert page.eval("document.getElementById('t-active').textContent") == str(clients)
                # the per-location table shows the location and its open tunnels
                rows = page.eval(
                    "[...document.querySelectorAll('#locations tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
                )
                ws_row = next(r for r in rows if r[0] == "dash.test" and r[1] == "/ws")
                assert ws_row[2] == str(clients)
                assert int(ws_row[7].replace(",", "")) > 0 and int(ws_row[8].replace(",", "")) > 0
                closes = page.eval("[...document.querySelectorAll('#closes tbody tr')].map(r => r.cells[0].textContent)")
                assert closes == [
                    "client", "upstream", "ngxws_age", "ngxws_shutdown", "ngxws_timeout", "ngxws_error",
                    "client_tcp", "upstream_tcp",
                ]
                table = "[...document.querySelectorAll('#{} tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
                who = {r[0]: r[2] for r in page.eval(table.format("closes"))}
                assert who["client"] == "2", who  # the two tunnels above: their client's close frame came first
                # first close codes per direction: the client's two, the backend's echo of each
                codes = {r[0]: r[1:] for r in page.eval(table.format("codes"))}
                assert codes == {"1000": ["1", "1"], "4000-4999": ["1", "1"]}, codes
                doc = _json(base)["totals"]
                opcodes = {r[0]: r[1:] for r in page.eval(table.format("opcodes"))}
                assert list(opcodes) == ["text", "binary", "continuation", "close", "ping", "pong", "other"]
                assert opcodes["close"] == ["2", "2"]
                assert int(opcodes["binary"][0].replace(",", "")) > 0
                sizes = page.eval(table.format("sizes"))
                assert [r[0] for r in sizes] == ["64", "1,024", "16,384", "262,144", "1,048,576", "+Inf"]
                assert int(sizes[2][1].replace(",", "")) >= 2 and int(sizes[-1][2].replace(",", "")) >= 4
                assert int(sizes[-1][1].replace(",", "")) <= doc["client"]["message_size_bytes"]["count"]
                # the live rate shown is the JSON's: client frames/s near clients / 20 ms, upstream twice that
                rates = page.eval("[document.getElementById('t-cf').textContent, document.getElementById('t-uf').textContent]")
                cf, uf = (float(r) for r in rates)
                assert 0 < cf < uf, rates

                shot = page.screenshot()
                (tmp_path / "dashboard.png").write_bytes(shot)
                keep = os.environ.get("NGXWS_DASHBOARD_PNG")
                if keep:
                    Path(keep).write_bytes(shot)
                width, height, _ = decode_png(shot)
                assert (width, height) == (1200, 900)
                # the pixels: each chart's plot area holds its curves' colours
                for canvas, colours in (
                    ("c-active", [ACTIVE_RGB]),
                    ("c-frames", [CLIENT_RGB, UPSTREAM_RGB]),
                    ("c-bytes", [CLIENT_RGB, UPSTREAM_RGB]),
                ):
                    rect = page.eval(
                        f"(r => ({{x: r.x, y: r.y, width: r.width, height: r.height}}))"
                        f"(document.getElementById('{canvas}').getBoundingClientRect())"
                    )
                    assert rect["width"] > 200 and rect["height"] > 100, rect
                    _, _, pixels = decode_png(page.screenshot(rect))
                    for rgb in colours:
                        found = count_color(pixels, rgb)
                        assert found >= 30, (canvas, rgb, found)
        finally:
            load.finish()
