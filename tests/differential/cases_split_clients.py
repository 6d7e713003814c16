"""``split_clients`` against nginx: the same key lands in the same share
(MurmurHash2 over the rendered string, shares as nginx sums them), with
fractional percents, a ``*`` line, no ``*`` (the rest is empty), and the
canary shape people write: ``split_clients $remote_addr $pool { 10% canary;
* stable; }`` feeding ``proxy_pass http://$pool``."""

from __future__ import annotations

from cases import each, group
from oracle import Group, get

group(Group("split", """
    split_clients "${arg_k}AAA" $variant {
        0.5%  .one;
        2.0%  .two;
        30%   three;
        *     "";
    }
    split_clients $arg_k $half { 50% a; 50% b; }
    split_clients $arg_k $tenth { 10% x; }
    split_clients "$arg_k-$uri" $pool { 33.33% canary; * stable; }
    upstream canary { server 127.0.0.1:@B0@; }
    upstream stable { server 127.0.0.1:@B1@; }
    server {
        listen 127.0.0.1:@L0@;
        location /v/ { return 200 "[$variant][$half][$tenth]\\n"; }
        location /pool/ { proxy_pass http://$pool; }
    }
"""))

KEYS = [str(k) for k in range(40)] + ["", "alice", "bob", "10.0.0.1", "x" * 37]

each("split_clients: shares of the hash", "split", [get(f"/v/?k={k}") for k in KEYS])
each("split_clients: a canary pool by proxy_pass $pool", "split", [get(f"/pool/{k}?k={k}") for k in KEYS[:24]])
