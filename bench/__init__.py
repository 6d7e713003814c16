"""ngxws benchmarks: the same workloads against ngxws and Debian's nginx, same conf.

Not part of the test suite; run with ``make bench`` or ``python -m bench``.
Module map, in data-flow order:

- ``wire.py``: frames, upgrade request, 101 response, frame counters (pure).
- ``backend.py``: the upstream server process (sink and echo).
- ``loadgen.py``: the client protocols (flood, echo, churn, idle, paced).
- ``proxies.py``: the shared nginx.conf and the proxy processes.
- ``procfs.py``: process trees, CPU seconds, PSS/RSS from /proc.
- ``workloads.py``: W1..W8 as data, one runner each.
- ``probe.py``: W8's latency probes (stat GET, upgrade + echo), in their own process.
- ``driver.py``: rounds A B A B ..., cells, timeouts.
- ``report.py``: medians, ratios, targets; the table and the JSON file.

Tools beside ``make bench`` (bench/PROFILE.md says what each found): ``ab.py``
(two ngxws trees on W5, CPU per connection), ``callcount.py`` (calls per W5
connection), ``fixed_rate.py`` (ngxws and nginx at a fixed offered rate, CPU
per W5 connection or W4 round trip).
"""
