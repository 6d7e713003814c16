"""The worker's own epoll set (``_speedups.Poller``, ngxws/ws/_poller.c).

On real loopback sockets, driven by hand (``run`` is what the loop calls
when the set's descriptor is readable): a callable target hears what it
asked for and nothing else; an interest change or a removal takes effect
at once; a socket left readable is reported again (level-triggered); a
hung-up socket nobody watches does not keep the set readable; an event of
a registration removed and replaced earlier in the same batch is not
delivered to the new one; a forgotten one's close takes it out of the set;
a target's exception comes out of ``run``.
The Splice targets are driven through real tunnels in tests/test_splice.py
and end to end in tests/test_dial.py.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from harness import tcp_pair

from ngxws.ws.frames import POLL_READ, POLL_WRITE, CPoller

pytestmark = pytest.mark.skipif(CPoller is None, reason="C extension not built")


@contextmanager
def _pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(near, far) ends of one loopback TCP connection; near is non-blocking."""
    far, near = tcp_pair()
    near.setblocking(False)
    try:
        yield near, far
    finally:
        near.close()
        far.close()


def _set_readable(poller: object) -> bool:
    """Whether the set's own descriptor is readable (what the loop watches)."""
    fd = poller.fd  # type: ignore[attr-defined]
    return bool(select.select([fd], [], [], 0)[0])


def _settle(poller: object) -> None:
    """Wait (bounded) until the set reports what the kernel has for it."""
    select.select([poller.fd], [], [], 1.0)  # type: ignore[attr-defined]


def test_callable_hears_what_it_asked_for() -> None:
    assert CPoller is not None
    poller = CPoller()
    heard: list[int] = []
    with _pair() as (near, far):
        poller.set(near.fileno(), POLL_READ, heard.append)
        poller.run()
        assert heard == []  # nothing to read: nothing said
        far.sendall(b"x")
        _settle(poller)
        poller.run()
        assert heard == [POLL_READ]
        # level-triggered: not read yet, so said again
        poller.run()
        assert heard == [POLL_READ, POLL_READ]
        assert near.recv(10) == b"x"
        heard.clear()
        poller.set(near.fileno(), POLL_READ | POLL_WRITE, heard.append)
        _settle(poller)
        poller.run()
        assert heard == [POLL_WRITE]  # writable, nothing to read
        poller.set(near.fileno(), 0, heard.append)  # registered, not watched
        far.sendall(b"y")
        heard.clear()
        poller.run()
        assert heard == [] and not _set_readable(poller)
        poller.set(near.fileno(), POLL_READ, heard.append)
        _settle(poller)
        poller.run()
        assert heard == [POLL_READ]
        poller.remove(near.fileno())
        heard.clear()
        poller.run()
        assert heard == [] and poller.watched == 0


def test_a_hung_up_socket_nobody_watches_does_not_spin() -> None:
    assert CPoller is not None
    poller = CPoller()
    heard: list[int] = []
    with _pair() as (near, far):
        poller.set(near.fileno(), POLL_READ, heard.append)
        far.close()
        _settle(poller)
        poller.run()
        assert heard == [POLL_READ]  # the end, to be read
        poller.set(near.fileno(), 0, heard.append)
        heard.clear()
        for _ in range(3):
            poller.run()
        assert heard == [] and not _set_readable(poller)


def test_an_event_of_a_replaced_registration_is_not_delivered() -> None:
    assert CPoller is not None
    poller = CPoller()
    first: list[int] = []
    second: list[int] = []
    newcomer: list[int] = []
    with _pair() as (a, fa), _pair() as (b, fb):

        def on_a(events: int) -> None:
            first.append(events)
            a.recv(10)
            # b is let go and its number registered anew, within this batch
            poller.remove(b.fileno())
            poller.set(b.fileno(), POLL_READ, newcomer.append)

        poller.set(a.fileno(), POLL_READ, on_a)
        poller.set(b.fileno(), POLL_READ, second.append)
        fa.sendall(b"1")
        select.select([a], [], [], 1.0)  # a is ready first: first in the batch
        fb.sendall(b"2")
        select.select([b], [], [], 1.0)
        poller.run()
        # b's event was in the batch, made for its old registration: not
        # delivered to the old target (removed) nor to the new one
        assert first == [POLL_READ]
        assert second == [] and newcomer == []
        poller.run()  # the new registration hears b's data from now on
        assert newcomer == [POLL_READ]
        b.recv(10)


def test_forget_leaves_the_set_to_the_close() -> None:
    """``forget`` drops a registration without the epoll_ctl: the close of
    the socket's last descriptor takes it out of the set; while another
    descriptor of it is open its events are still in the set, but carry the
    forgotten registration's number, so nothing is delivered -- not to a
    new registration under that number either."""
    import os

    assert CPoller is not None
    poller = CPoller()
    heard: list[int] = []
    with _pair() as (near, far), _pair() as (near2, far2):
        fd = os.dup(near.fileno())
        poller.set(fd, POLL_READ, heard.append)
        far.sendall(b"x")
        _settle(poller)
        poller.forget(fd)
        os.close(fd)  # near's own descriptor still open: the file stays in the set
        poller.run()
        assert heard == []
        fd2 = os.dup2(near2.fileno(), fd)  # the number again, another socket
        poller.set(fd2, POLL_READ, heard.append)
        poller.run()
        assert heard == []  # the old file's readiness is not the new one's
        far2.sendall(b"y")
        _settle(poller)
        poller.run()
        assert heard == [POLL_READ]
        poller.forget(fd2)
        os.close(fd2)
        near.close()  # the last descriptor of each: both out of the set
        near2.close()
        assert not _set_readable(poller)


def test_a_target_error_comes_out_of_run() -> None:
    assert CPoller is not None
    poller = CPoller()

    def broken(events: int) -> None:
        raise RuntimeError("boom")

    with _pair() as (near, far):
        poller.set(near.fileno(), POLL_READ, broken)
        far.sendall(b"x")
        _settle(poller)
        with pytest.raises(RuntimeError, match="boom"):
            poller.run()
        poller.remove(near.fileno())


def test_bad_arguments_are_refused() -> None:
    assert CPoller is not None
    poller = CPoller()
    with pytest.raises(ValueError):
        poller.set(-1, POLL_READ, print)
    with pytest.raises(ValueError):
        poller.set(0, 8, print)
    poller.remove(123456)  # never registered: nothing to do
