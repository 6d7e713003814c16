"""``limit_req`` and ``limit_conn``: nginx's preaccess-phase limits, shared by every worker.

- ``table.py``: the zone's nodes in a byte buffer and nginx's algorithms on
  them (leaky bucket, LRU expiry, connection counts) -- no I/O, no clock;
- ``zones.py``: each zone's buffer as a memfd mapped by the master before it
  forks, with a process-shared lock, kept across reloads as nginx keeps them;
- ``preaccess.py``: the two phase handlers (several limits per location,
  dry run, status, log lines) and what one request holds until it ends.
"""
