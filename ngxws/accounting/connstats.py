"""nginx's connection counters, as ngx_http_stub_status_module shows them.

nginx counts, in shared memory: connections accepted, handled (accepted and
given a connection structure: not refused for lack of
``worker_connections``) and requests, and how many connections are open
now (``active``) and what each is doing: reading a request head
(``reading``), processing a request -- a websocket tunnel included, as its
request lasts until the tunnel closes (``writing``) -- or idle between
requests (``waiting``).  The points where nginx moves them:
``ngx_event_accept`` (accepted, active, handled), ``ngx_reusable_connection``
(waiting), ``ngx_http_create_request`` (reading, requests),
``ngx_http_process_request`` (reading -> writing), ``ngx_http_free_request``
and ``ngx_http_close_connection`` (the end).

ngxws keeps them in each worker's counter slot (``counters.STUB_*``); a
connection's current state is one of those field numbers, held by whoever
owns the connection (the client connection, then its tunnel).
"""

from __future__ import annotations

from ngxws.accounting.counters import (
    STUB_ACCEPTED,
    STUB_ACTIVE,
    STUB_HANDLED,
    STUB_READING,
    STUB_REQUESTS,
    STUB_WAITING,
    STUB_WRITING,
    SharedCounters,
)

__all__ = ["CLOSED", "READING", "WAITING", "WRITING", "ConnStats", "stub_page"]

READING, WRITING, WAITING = STUB_READING, STUB_WRITING, STUB_WAITING
CLOSED = 0  # counted no more


class ConnStats:
    """One worker's connection counters (its slot)."""

    __slots__ = ("a", "base")

    def __init__(self, array: memoryview, base: int) -> None:
        self.a = array
        self.base = base

    def refused(self) -> None:
        """Accepted, then closed for want of a connection (worker_connections)."""
        self.a[self.base + STUB_ACCEPTED] += 1

    def opened(self) -> int:
        """A new connection, idle until its first bytes: its state."""
        a, b = self.a, self.base
        a[b + STUB_ACCEPTED] += 1
        a[b + STUB_HANDLED] += 1
        a[b + STUB_ACTIVE] += 1
        a[b + STUB_WAITING] += 1
        return WAITING

    def move(self, state: int, new: int) -> int:
        """The connection in ``state`` now does ``new``: its new state."""
        if state != new:
            if state:
                self.a[self.base + state] -= 1
            if new:
                self.a[self.base + new] += 1
        return new

    def request(self, state: int) -> int:
        """A request begins (its first bytes are read): reading its head."""
        a, b = self.a, self.base
        a[b + STUB_REQUESTS] += 1
        if state != READING:  # move(state, READING), without the call
            if state:
                a[b + state] -= 1
            a[b + READING] += 1
        return READING

    def closed(self, state: int) -> int:
        """The connection is closed (once: a closed one is not counted again)."""
        if state:
            self.a[self.base + state] -= 1
            self.a[self.base + STUB_ACTIVE] -= 1
        return CLOSED


def stub_page(counters: SharedCounters) -> bytes:
    """ngx_http_stub_status_handler()'s text, every worker summed."""
    ap, hn, rq, ac, rd, wr, wa = counters.stub_totals()
    return (
        f"Active connections: {ac} \nserver accepts handled requests\n {ap} {hn} {rq} \n"
        f"Reading: {rd} Writing: {wr} Waiting: {wa} \n"
    ).encode()
