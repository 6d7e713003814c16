"""A tiny DNS server on 127.0.0.1 for tests of ``resolver``: a UDP socket
in a thread that answers A/AAAA queries from a fixed table (dnspython
builds the replies).  Names not in the table get NXDOMAIN; ``silent``
names get no answer at all; ``servfail`` names get SERVFAIL.  Every query
is recorded as (name, type)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class Record:
    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    ttl: int = 300


@dataclass
class DnsServer:
    records: dict[str, Record]
    silent: frozenset[str] = frozenset()
    servfail: frozenset[str] = frozenset()
    queries: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - a test server: ignore garbage
                continue
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, kind))
            if name in self.silent:
                continue
            reply = dns.message.make_response(query)
            record = self.records.get(name)
            if name in self.servfail:
                reply.set_rcode(dns.rcode.SERVFAIL)
            elif record is None:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            else:
                found = record.a if kind == "A" else record.aaaa if kind == "AAAA" else ()
                if found:
                    reply.answer.append(dns.rrset.from_text_list(question.name, record.ttl, "IN", kind, list(found)))
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
