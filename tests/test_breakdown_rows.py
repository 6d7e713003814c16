"""The breakdown's rows in the shared counters: one per (worker, location),
summed across workers, bounded by the keys fixed at config load."""

from __future__ import annotations

from pathlib import Path

from ngxws.accounting import breakdown as B
from ngxws.accounting.counters import ACTIVE, CLIENT_BYTES, KEY_FIELDS, SharedCounters
from ngxws.config.loader import load_config

CONF = """
events {}
http {
    server { listen 127.0.0.1:1; server_name a;
        location /x { proxy_pass http://127.0.0.1:2; location /x/y { proxy_pass http://127.0.0.1:2; } }
        location = /s { ws_stat; }
        location ~ ^/r { proxy_pass http://127.0.0.1:2; }
    }
    server { listen 127.0.0.1:3; server_name a;
        location @n { proxy_pass http://127.0.0.1:2; }
    }
    server { listen 127.0.0.1:4; location / { proxy_pass http://127.0.0.1:2; } }
}
"""


def test_labels_are_fixed_by_the_config(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF)
    config = load_config(str(conf), str(tmp_path))
    assert B.labels(config) == [
        ("a", "/x"), ("a", "/x/y"), ("a", "~ ^/r"), ("a#2", "@n"), ("_", "/"),
    ]


def test_rows_of_two_workers_are_summed_per_location(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF)
    config = load_config(str(conf), str(tmp_path))
    c = SharedCounters(slots=4)
    c.register(B.labels(config))
    w1, w2 = c.allocate_slot(), c.allocate_slot()
    server = config.servers[0]
    x, r = server.locations[0], server.locations[2]
    k1, k2 = B.KeyMap(config, c, w1), B.KeyMap(config, c, w2)
    assert k1.base(server, x) != k2.base(server, x)
    c.array[k1.base(server, x) + CLIENT_BYTES] += 10
    c.array[k2.base(server, x) + CLIENT_BYTES] += 5
    c.array[k2.base(server, r) + CLIENT_BYTES] += 1
    assert c.try_open(k1.base(server, r), 0)
    B.record_close(c.array, k2.base(server, x), "client", 2.5)
    B.record_upgrade(c.array, k1.base(server, x), 404)
    rows = {(k.server, k.location): k for k in B.snapshot(c)}
    assert rows[("a", "/x")][CLIENT_BYTES] == 15
    assert rows[("a", "~ ^/r")][CLIENT_BYTES] == 1
    assert rows[("a", "~ ^/r")][ACTIVE] == 1
    assert rows[("a", "/x")][B.CLOSER_BASE] == 1
    assert rows[("a", "/x")][B.DURATION_BASE + 2] == 1  # 1 s < 2.5 s <= 10 s
    assert rows[("a", "/x")][B.DURATION_SUM_MS] == 2500
    assert rows[("a", "/x")][B.NON101_BASE + B.NON101_STATUSES.index(404)] == 1
    assert c.totals().client_bytes == 16 and c.active() == 1
    c.retire_slot(w1)  # its tunnels are gone, its traffic stays
    assert c.active() == 0 and c.totals().client_bytes == 16


def test_keys_past_the_cap_share_the_other_row() -> None:
    c = SharedCounters(slots=1, max_keys=3)
    c.register([("s", "/a"), ("s", "/b"), ("s", "/c")])
    c.register([("s", "/d")])  # a reload adding a location
    assert c.keys == {("", ""): 0, ("s", "/a"): 1, ("s", "/b"): 2}
    assert c.key_base(0, ("s", "/c")) == c.key_base(0, ("s", "/d")) == 0
    assert c.key_base(0, ("s", "/b")) == 2 * KEY_FIELDS
