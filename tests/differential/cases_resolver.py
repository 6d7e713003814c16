"""Issue 11 item 2: ``proxy_pass`` with variables whose host is not an
``upstream {}`` name, resolved with the ``resolver`` in force: a tiny DNS
server on 127.0.0.1 (tests/dns_server.py) answers both nginx and ngxws.
Found names reach the backend (``Host: name:port``); NXDOMAIN, SERVFAIL,
an answer without addresses and no answer within ``resolver_timeout`` are
502; ``ipv6=off`` asks for A records only; an ``upstream {}`` name or an
address is not looked up.
"""

from __future__ import annotations

from dataclasses import dataclass

from cases import UPGRADE_LOC, case, group
from dns_server import DnsServer, Record
from oracle import Group, get, upgrade

_SERVER: list[DnsServer] = []


def dns_port() -> int:
    """The one DNS server of this run, started when a conf first needs it."""
    if not _SERVER:
        _SERVER.append(
            DnsServer(
                {
                    "app.test": Record(a=("127.0.0.1",)),
                    "both.test": Record(a=("127.0.0.1",), aaaa=("::1",)),
                    "six.test": Record(aaaa=("::1",)),
                    "short.test": Record(a=("127.0.0.1",), ttl=1),
                },
                silent=frozenset({"silent.test"}),
                servfail=frozenset({"fail.test"}),
            )
        )
    return _SERVER[0].port


@dataclass
class _DnsGroup(Group):
    def render(self, values: dict[str, str]) -> str:
        return super().render({**values, "DNS": str(dns_port())})


group(_DnsGroup("resolver", f"""
    resolver 127.0.0.1:@DNS@ valid=30s;
    resolver_timeout 1s;
    upstream named_up {{ server 127.0.0.1:@B1@; }}
    server {{
        listen 127.0.0.1:@L0@;
        server_name example.com;
        location /a/ {{ set $h app.test; proxy_pass http://$h:@B0@; }}
        location /hdr/ {{ proxy_pass http://$http_x_target:@B0@; }}
        location /six-off/ {{ resolver 127.0.0.1:@DNS@ ipv6=off; set $h six.test; proxy_pass http://$h:@B0@; }}
        location /both-off/ {{ resolver 127.0.0.1:@DNS@ ipv6=off; set $h both.test; proxy_pass http://$h:@B0@; }}
        location /up/ {{ set $h named_up; proxy_pass http://$h; }}
        location /ip/ {{ set $h 127.0.0.1; proxy_pass http://$h:@B0@; }}
        location /uri/ {{ set $h app.test; proxy_pass http://$h:@B0@/rewritten$request_uri; }}
        location /ws/ {{ proxy_pass http://$http_x_target:@B0@; {UPGRADE_LOC} }}
        location /wsdead/ {{ proxy_pass http://127.0.0.1:@DEAD@; {UPGRADE_LOC} }}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        server_name other.example;
        resolver_timeout 2s;
        location / {{ proxy_pass http://$http_x_target:@B0@; }}
    }}
"""))


def _target(name: str) -> str:
    return f"X-Target: {name}\r\n"


case("resolver-found", "resolver", get("/a/x?q=1"), expect=(200,))
case("resolver-found-by-header", "resolver", get("/hdr/x", extra=_target("app.test")), expect=(200,))
case("resolver-name-case", "resolver", get("/hdr/x", extra=_target("App.Test")), expect=(200,))
case("resolver-found-twice", "resolver", get("/hdr/1", extra=_target("app.test")) + get("/hdr/2", extra=_target("app.test")),
     expect=(200,))
case("resolver-short-ttl", "resolver", get("/hdr/x", extra=_target("short.test")), expect=(200,))
case("resolver-nxdomain", "resolver", get("/hdr/x", extra=_target("missing.test")), expect=(502,))
case("resolver-servfail", "resolver", get("/hdr/x", extra=_target("fail.test")), expect=(502,))
case("resolver-timeout", "resolver", get("/hdr/x", extra=_target("silent.test")), expect=(502,))
case("resolver-timeout-server-level", "resolver", get("/x", host="other.example", extra=_target("silent.test")),
     expect=(502,), target="L1")
case("resolver-found-server-level", "resolver", get("/x", host="other.example", extra=_target("app.test")),
     expect=(200,), target="L1")
case("resolver-ipv6-off-no-a", "resolver", get("/six-off/x"), expect=(502,))
case("resolver-ipv6-off-a", "resolver", get("/both-off/x"), expect=(200,))
case("resolver-upstream-name-first", "resolver", get("/up/x"), expect=(200,))
case("resolver-address-not-looked-up", "resolver", get("/ip/x"), expect=(200,))
case("resolver-uri-part", "resolver", get("/uri/x?y=2"), expect=(200,))
case("resolver-upgrade", "resolver", upgrade("/ws/x", extra=_target("app.test")), ws=True)
case("resolver-upgrade-nxdomain", "resolver", upgrade("/ws/x", extra=_target("missing.test")), expect=(502,))
case("upgrade-unreachable-keepalive", "resolver", upgrade("/wsdead/x"), expect=(502,))
