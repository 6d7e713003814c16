"""``hash KEY consistent`` (nginx's ketama ring) against nginx: the same key
reaches the same backend, on weighted lines, past a dead or ``down`` line,
with an empty key (round robin), one line (no ring), for a websocket
upgrade (the callback path) and for a plain request.  Both sides share the
group's backends, so the ``server`` lines -- what the ring hashes -- are
the same text on both."""

from __future__ import annotations

from cases import UPGRADE_LOC, each, group
from oracle import Group, get, upgrade

group(Group("chash", f"""
    upstream ring {{
        hash $arg_k consistent;
        server 127.0.0.1:@B0@;
        server 127.0.0.1:@B1@ weight=2;
        server 127.0.0.1:@B2@;
    }}
    upstream ringdead {{
        hash $arg_k consistent;
        server 127.0.0.1:@DEAD@;
        server 127.0.0.1:@B1@;
        server 127.0.0.1:@B2@;
        server 127.0.0.1:@B3@;
    }}
    upstream ringdown {{
        hash $arg_k consistent;
        server 127.0.0.1:@B0@ down;
        server 127.0.0.1:@B1@;
        server 127.0.0.1:@B2@ weight=3;
    }}
    upstream ringuri {{
        hash $request_uri consistent;
        server 127.0.0.1:@B0@;
        server 127.0.0.1:@B1@;
        server 127.0.0.1:@B2@;
        server 127.0.0.1:@B3@;
    }}
    upstream ringone {{ hash $arg_k consistent; server 127.0.0.1:@B3@; }}
    upstream plainhash {{
        hash $arg_k;
        server 127.0.0.1:@B0@;
        server 127.0.0.1:@B1@;
        server 127.0.0.1:@B2@;
    }}
    server {{
        listen 127.0.0.1:@L0@;
        location /ring/ {{ {UPGRADE_LOC} proxy_pass http://ring; }}
        location /ringdead/ {{ {UPGRADE_LOC} proxy_pass http://ringdead; }}
        location /ringdown/ {{ {UPGRADE_LOC} proxy_pass http://ringdown; }}
        location /ringuri/ {{ {UPGRADE_LOC} proxy_pass http://ringuri; }}
        location /ringone/ {{ {UPGRADE_LOC} proxy_pass http://ringone; }}
        location /plainhash/ {{ {UPGRADE_LOC} proxy_pass http://plainhash; }}
    }}
"""))

KEYS = [str(k) for k in range(1, 25)] + ["alice", "bob", "10.1.2.3", "a-much-longer-session-key-0123456789"]

each("chash: 28 keys over weighted lines", "chash", [get(f"/ring/?k={k}") for k in KEYS])
each("chash: the same keys again (stable)", "chash", [get(f"/ring/x?k={k}") for k in KEYS[:8]])
each("chash: a dead line's keys go to the next point's line", "chash", [get(f"/ringdead/?k={k}") for k in KEYS])
each("chash: a down line's keys go to the next point's line", "chash", [get(f"/ringdown/?k={k}") for k in KEYS])
each("chash: hash $request_uri", "chash", [get(f"/ringuri/{k}") for k in KEYS[:16]])
each("chash: an empty key is round robin", "chash", [get("/ring/"), get("/ring/"), get("/ring/"), get("/ring/?k=")])
each("chash: one line, no ring", "chash", [get(f"/ringone/?k={k}") for k in KEYS[:4]])
each("chash: websocket upgrades on the ring", "chash", [upgrade(f"/ring/ws?k={k}") for k in KEYS[:12]],
     expect=(101,) * 12)
each("chash: upgrades past the dead line", "chash", [upgrade(f"/ringdead/ws?k={k}") for k in KEYS[:12]],
     expect=(101,) * 12)
each("chash: plain hash beside it, unchanged", "chash", [get(f"/plainhash/?k={k}") for k in KEYS[:12]])
