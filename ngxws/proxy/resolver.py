"""Name lookups for ``proxy_pass`` with variables, as nginx's resolver
(src/core/ngx_resolver.c) makes them when ``resolver`` is set.

- A (and, unless ``ipv6=off``, AAAA) queries over UDP to the configured
  servers, taken in turn (``r->last_connection++``); a server that does not
  answer is asked again, the next one, every 5 seconds (``resend_timeout``),
  until ``resolver_timeout`` has passed;
- the answer's addresses are kept for the smallest TTL of its records, or
  ``valid=`` when given; failures are not kept (nginx frees the node);
- failures carry nginx's codes and texts (ngx_resolver_strerror), which the
  proxy logs as ``NAME could not be resolved (3: Host not found)`` and
  answers 502;
- concurrent lookups of one name share one query (``rn->waiting``).

The wire format and the UDP exchange are dnspython's (``dns.asyncquery``);
the cache's clock is injectable so expiry is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from ngxws.config.model import Resolver

__all__ = ["NameCache", "ResolveFailed", "TIMED_OUT", "strerror"]

TIMED_OUT = 110  # NGX_RESOLVE_TIMEDOUT (= NGX_ETIMEDOUT)
_HOST_NOT_FOUND = 3  # NXDOMAIN, and an answer without addresses
_RESEND = 5.0  # r->resend_timeout
_ERRORS = ("Format error", "Server failure", "Host not found", "Unimplemented", "Operation refused")


def strerror(code: int) -> str:
    """ngx_resolver_strerror()."""
    if 0 < code < 6:
        return _ERRORS[code - 1]
    if code == TIMED_OUT:
        return "Operation timed out"
    return "Unknown error"


class ResolveFailed(Exception):
    """A name could not be resolved; ``str()`` is nginx's error line head."""

    def __init__(self, name: str, code: int) -> None:
        super().__init__(f"{name} could not be resolved ({code}: {strerror(code)})")
        self.code = code


Answer = tuple[list[str], float]  # addresses, TTL (seconds)


class NameCache:
    """One worker's resolver state: answers per (resolver, name), and the
    next server to ask per resolver."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, resend: float = _RESEND) -> None:
        self._clock = clock
        self._resend = resend
        self._answers: dict[tuple[Resolver, str], tuple[list[str], float]] = {}
        self._pending: dict[tuple[Resolver, str], asyncio.Future[list[str]]] = {}
        self._next: dict[Resolver, int] = {}

    async def resolve(self, resolver: Resolver, name: str, timeout: float) -> list[str]:
        """The addresses of ``name`` (A records first), or ResolveFailed."""
        key = (resolver, name.lower())
        cached = self._answers.get(key)
        if cached is not None:
            if cached[1] >= self._clock():
                return cached[0]
            del self._answers[key]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(resolver, name, timeout))
            self._pending[key] = pending
            pending.add_done_callback(lambda f: self._done(key, f))
        return await asyncio.shield(pending)

    def _done(self, key: tuple[Resolver, str], done: asyncio.Future[list[str]]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()  # read: a waiter that went away leaves no warning

    async def _lookup(self, resolver: Resolver, name: str, timeout: float) -> list[str]:
        deadline = asyncio.get_running_loop().time() + timeout
        tries = int(timeout / self._resend) + 1  # one per resend period
        kinds = [dns.rdatatype.A, dns.rdatatype.AAAA] if resolver.ipv6 else [dns.rdatatype.A]
        answers = await asyncio.gather(*(self._ask(resolver, name, kind, deadline, tries) for kind in kinds))
        if any(found == TIMED_OUT for found, _ttl in answers):
            raise ResolveFailed(name, TIMED_OUT)  # nginx waits for both answers
        addresses = [a for found, _ttl in answers if isinstance(found, list) for a in found]
        if not addresses:
            codes = [found for found, _ttl in answers if isinstance(found, int)]
            raise ResolveFailed(name, next((c for c in codes if c != _HOST_NOT_FOUND), _HOST_NOT_FOUND))
        ttl = min(ttl for found, ttl in answers if isinstance(found, list) and found)
        kept = resolver.valid if resolver.valid is not None else ttl
        self._answers[(resolver, name.lower())] = (addresses, self._clock() + kept)
        return addresses

    async def _ask(
        self, resolver: Resolver, name: str, kind: dns.rdatatype.RdataType, deadline: float, tries: int
    ) -> tuple[list[str] | int, float]:
        """One record type: (addresses, TTL) or (nginx's error code, 0);
        ``deadline`` on the event loop's clock."""
        query = dns.message.make_query(name, kind)
        loop = asyncio.get_running_loop()
        for _ in range(tries):
            left = deadline - loop.time()
            if left <= 0:
                break
            turn = self._next.get(resolver, 0)
            self._next[resolver] = turn + 1
            host, port = resolver.servers[turn % len(resolver.servers)]
            try:
                reply = await dns.asyncquery.udp(query, host, timeout=min(self._resend, left), port=port)
            except dns.exception.Timeout:
                continue
            except (OSError, dns.exception.DNSException):
                # an unreachable server or a garbled reply: nginx logs it and
                # waits for the resend to the next server
                await asyncio.sleep(min(self._resend, max(deadline - loop.time(), 0)))
                continue
            code = reply.rcode()
            if code != dns.rcode.NOERROR:
                return int(code), 0.0
            found: list[str] = []
            ttl = float("inf")
            for rrset in reply.answer:
                if rrset.rdtype == kind:
                    ttl = min(ttl, float(rrset.ttl))
                    found.extend(rdata.address for rdata in rrset)
            return (found, ttl) if found else (_HOST_NOT_FOUND, 0.0)
        return TIMED_OUT, 0.0
