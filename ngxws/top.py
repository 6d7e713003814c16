"""``ngxws top``: the ``ws_stat`` numbers in a terminal, for a box without a
browser -- the running instance's ``?format=json`` (``stats_schema.json``),
read through the config's own ``ws_stat`` location, refreshed every second.

Three parts, as everywhere in ngxws: pure functions that find the stats URL
in a ``Config`` (``stats_target``) and turn one or two JSON snapshots into
the lines to show (``render``), and a thin shell (``fetch``, ``run_top``)
that reads the URL with urllib and paints the lines with plain ANSI codes
(home, erase; no curses, so it works on any terminal and over ``ssh``).
Rates are the difference of two successive snapshots over the difference
of their ``time`` members (the server's clock, not the poll's), as the
dashboard computes them.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from ngxws.config.model import Config, Listen, Location, Server

SCHEMA_ID = "ngxws-stats/2"  # statsformats.SCHEMA_ID (not imported: top needs no prometheus_client)
DIRECTIONS = ("client", "upstream")
# who closed first (the JSON's ``closes`` members) and the close code that went with it
CLOSE_CODES = {
    "client": "its own",
    "upstream": "its own",
    "ngxws_age": "4001",
    "ngxws_shutdown": "1001",
    "ngxws_timeout": "none",
    "ngxws_error": "none",
    "client_tcp": "none",
    "upstream_tcp": "none",
}
HOME_CLEAR = "\x1b[H"  # cursor home; each line then erases its rest, the last the screen below
ERASE_LINE = "\x1b[K"
ERASE_BELOW = "\x1b[J"


# -- where the page is (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class StatsTarget:
    """The JSON's URL, the Host header to send (the server block's name, so
    that a ``ws_stat`` in a non-default server is reached) and whether TLS
    verification is off (only ever for a loopback address)."""

    url: str
    host: str | None = None
    insecure: bool = False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def location_path(loc: Location) -> str | None:
    """A URI that reaches ``loc``: its pattern, for a prefix, ``=`` or ``^~``
    location; None for a regex or named one (no URI can be derived)."""
    if loc.modifier in ("", "=", "^~") and loc.pattern.startswith("/"):
        return loc.pattern
    return None


def _stat_locations(locations: Iterable[Location]) -> Iterable[str]:
    for loc in locations:
        path = location_path(loc) if loc.ws_stat else None
        if path is not None:
            yield path
        yield from _stat_locations(loc.locations)


def _host_name(server: Server) -> str | None:
    """The server's first literal name (``.example.com`` as ``example.com``);
    None when it has none (wildcards, regexes, ``_``, the empty name)."""
    for name in server.server_names:
        name = name[1:] if name.startswith(".") else name
        if name and name != "_" and "*" not in name and not name.startswith("~"):
            return name
    return None


def _listen_rank(listen: Listen) -> tuple[int, str] | None:
    """How good a way in ``listen`` is (lower is better) and the address to
    connect to; None when urllib cannot use it (a unix socket, a listener
    that expects a PROXY protocol preface)."""
    if listen.unix is not None or listen.proxy_protocol:
        return None
    if _is_loopback(listen.host):
        return 0, listen.host
    if listen.host in ("0.0.0.0", "*"):
        return 1, "127.0.0.1"  # a wildcard listener takes loopback connections too
    if listen.host == "::":
        return 1, "::1"
    return 2, listen.host


def _authority(host: str, port: int, ssl_on: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == (443 if ssl_on else 80) else f"{shown}:{port}"


def stats_target(config: Config) -> StatsTarget | None:
    """The best URL of the config's ``ws_stat`` JSON: a loopback listener
    first, then a wildcard one (reached on loopback), then any address;
    plain http before https at equal rank.  None when no ``ws_stat``
    location has a derivable URI on a TCP listener."""
    best: tuple[tuple[int, bool], StatsTarget] | None = None
    for server in config.servers:
        paths = list(_stat_locations(server.locations))
        if not paths:
            continue
        for listen in server.listens:
            rank = _listen_rank(listen)
            if rank is None:
                continue
            order, host = rank
            scheme = "https" if listen.ssl else "http"
            target = StatsTarget(
                url=f"{scheme}://{_authority(host, listen.port, listen.ssl)}{paths[0]}?format=json",
                host=_host_name(server),
                insecure=listen.ssl and _is_loopback(host),
            )
            key = (order, listen.ssl)
            if best is None or key < best[0]:
                best = key, target
    return best[1] if best is not None else None


def target_from_url(url: str) -> StatsTarget:
    """``--url``: the ws_stat location's URL; its query is replaced by
    ``format=json`` (the first ``format=`` argument decides on the server)."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    json_url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "format=json", ""))
    insecure = parts.scheme == "https" and _is_loopback(parts.hostname or "")
    return StatsTarget(url=json_url, insecure=insecure)


# -- what to show (pure) -------------------------------------------------------------------


def _rate(cur: int, old: int, seconds: float) -> float | None:
    """Per second; None without an interval or across a restart (a counter went down)."""
    if seconds <= 0 or cur < old:
        return None
    return (cur - old) / seconds


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Columns two spaces apart: the first ``left`` aligned left (names),
    the rest right (numbers)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out


def _refused(upgrades: dict[str, Any]) -> int:
    statuses: dict[str, int] = upgrades["upstream_status"]
    return int(upgrades["rejected_cap"] + upgrades["connect_error"] + upgrades["connect_timeout"] + sum(statuses.values()))


def render(doc: dict[str, Any], prev: dict[str, Any] | None, source: str) -> list[str]:
    """The screen for snapshot ``doc`` (rates against ``prev``, the one
    before it, or ``-`` without one): every counter exactly as the JSON has
    it, names as written in the config."""
    if doc.get("schema") != SCHEMA_ID:
        raise ValueError(f"not an {SCHEMA_ID} document: schema {doc.get('schema')!r}")
    dt = float(doc["time"]) - float(prev["time"]) if prev is not None else 0.0
    tot = doc["totals"]
    ptot = prev["totals"] if prev is not None else None
    clock = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(doc["time"])))
    up = tot["upgrades"]
    lines = [
        f"ngxws top  {source}  {clock} UTC",
        "",
        f"open tunnels {tot['active']}   upgrades: switched {up['switched']}  rejected_cap {up['rejected_cap']}"
        f"  connect_error {up['connect_error']}  connect_timeout {up['connect_timeout']}"
        f"  upstream_status {sum(up['upstream_status'].values())}",
        "",
    ]
    rows = []
    for d in DIRECTIONS:
        row = [d]
        for field in ("frames", "payload", "tcp_bytes"):
            row.append(str(tot[d][field]))
            row.append(_fmt_rate(_rate(tot[d][field], ptot[d][field], dt) if ptot is not None else None))
        rows.append(row)
    lines += _table(["direction", "frames", "frames/s", "payload", "payload/s", "tcp_bytes", "tcp_bytes/s"], rows, 1)
    closes: dict[str, int] = tot["closes"]
    lines.append("")
    lines += _table(
        ["closed by", *closes],
        [["close code", *(CLOSE_CODES.get(who, "?") for who in closes)], ["tunnels", *(str(n) for n in closes.values())]],
        1,
    )
    duration = tot["duration_seconds"]
    if duration["count"]:
        lines.append(f"mean tunnel lifetime {duration['sum'] / duration['count']:.1f}s over {duration['count']} closed")
    lines += _frame_tables(tot)
    lines.append("")
    prev_rows = {(r["server"], r["location"]): r for r in (prev["locations"] if prev is not None else [])}
    rows = []
    for loc in doc["locations"]:
        p = prev_rows.get((loc["server"], loc["location"]))
        other = not loc["server"] and not loc["location"]
        row = ["(other)" if other else loc["server"], "-" if other else loc["location"], str(loc["active"])]
        for d in DIRECTIONS:
            for field in ("frames", "tcp_bytes"):
                row.append(str(loc[d][field]))
                row.append(_fmt_rate(_rate(loc[d][field], p[d][field], dt) if p is not None else None))
        row += [str(loc["upgrades"]["switched"]), str(_refused(loc["upgrades"])), str(sum(loc["closes"].values()))]
        rows.append(row)
    lines += _table(
        ["server", "location", "open", "client.frames", "client.f/s", "client.tcp", "client.B/s",
         "upstream.frames", "upstream.f/s", "upstream.tcp", "upstream.B/s", "upgrades", "refused", "closed"],
        rows,
        2,
    )
    return lines


def _frame_tables(tot: dict[str, Any]) -> list[str]:
    """Per direction: frames by opcode, the message-size histogram
    (cumulative, as the JSON has it) and the first close frame's code
    (the buckets either direction has seen; ``none``: no close frame).
    Members an older document lacks are left out."""
    lines: list[str] = []
    if all("opcodes" in tot[d] for d in DIRECTIONS):
        names = list(tot[DIRECTIONS[0]]["opcodes"])
        lines += ["", *_table(["opcode", *names], [[d, *(str(tot[d]["opcodes"][n]) for n in names)] for d in DIRECTIONS], 1)]
    if all("message_size_bytes" in tot[d] for d in DIRECTIONS):
        edges = [f"le {b['le']}" for b in tot[DIRECTIONS[0]]["message_size_bytes"]["buckets"]]
        rows = []
        for d in DIRECTIONS:
            hist = tot[d]["message_size_bytes"]
            rows.append([d, *(str(b["count"]) for b in hist["buckets"]), str(hist["count"])])
        lines += ["", *_table(["message size", *edges, "+Inf"], rows, 1)]
    if all("close_codes" in tot[d] for d in DIRECTIONS):
        codes = [c for c in tot[DIRECTIONS[0]]["close_codes"] if any(tot[d]["close_codes"][c] for d in DIRECTIONS)]
        codes = codes or ["none"]
        lines += ["", *_table(["first close code", *codes], [[d, *(str(tot[d]["close_codes"][c]) for c in codes)] for d in DIRECTIONS], 1)]
    return lines


def paint(lines: list[str], width: int, height: int) -> str:
    """One refresh of the live view: home, each line cut to the terminal
    and its rest erased, then the screen below erased (no flicker)."""
    shown = [line[:width] + ERASE_LINE for line in lines[: max(height - 1, 1)]]
    return HOME_CLEAR + "\n".join(shown) + "\n" + ERASE_BELOW


# -- the shell --------------------------------------------------------------------------------


def fetch(target: StatsTarget, timeout: float = 5.0) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if target.host is not None:
        headers["Host"] = target.host
    context = None
    if target.url.startswith("https:"):
        context = ssl.create_default_context()
        if target.insecure:  # a loopback listener: its certificate names some other host
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(target.url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        doc: dict[str, Any] = json.loads(response.read())
    return doc


def run_top(
    target: StatsTarget,
    interval: float,
    once: bool,
    iterations: int = 0,
    out: TextIO = sys.stdout,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``--once``: two snapshots ``interval`` apart (so rates are real),
    printed once without escape codes; exit 1 if the page cannot be read.
    Otherwise refresh every ``interval`` until interrupted (or for
    ``iterations`` refreshes), showing read errors in place and retrying."""
    source = target.url.removesuffix("?format=json")
    if once:
        try:
            prev = fetch(target) if interval > 0 else None
            if prev is not None:
                sleep(interval)
            lines = render(fetch(target), prev, source)
        except (OSError, ValueError, KeyError) as exc:
            print(f"ngxws top: cannot read {target.url}: {exc}", file=sys.stderr)
            return 1
        out.write("\n".join(lines) + "\n")
        return 0
    prev = None
    done = 0
    try:
        while iterations <= 0 or done < iterations:
            size = shutil.get_terminal_size()
            try:
                doc = fetch(target)
                lines = render(doc, prev, source)
                prev = doc
            except (OSError, ValueError, KeyError) as exc:
                lines = [f"ngxws top  {source}", "", f"cannot read the page: {exc} (retrying every {interval:g}s)"]
            out.write(paint(lines, size.columns, size.lines))
            out.flush()
            done += 1
            if iterations <= 0 or done < iterations:
                sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0
