"""Issue 12 item 2: the client's real address -- ngx_http_realip_module
(``set_real_ip_from``, ``real_ip_header``, ``real_ip_recursive``) and
``listen ... proxy_protocol`` (v1 and v2 prefaces, as HAProxy and AWS NLB
send them).

Every case compares what the backend received: ``X-Forwarded-For`` through
``$proxy_add_x_forwarded_for``, ``X-Real-IP $remote_addr``,
``$realip_remote_addr`` and the ``$proxy_protocol_*`` variables, so the
address realip settled on is checked byte for byte; allow/deny cases check
that access judges the real address.  (``$remote_port`` is compared only
where it is fixed: from a PROXY preface or a header carrying a port, or
empty.)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cases import CASES, UPGRADE_LOC, case, group
from oracle import Case, Exchange, Group, get, upgrade

_SHOW = """
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Realip-Remote $realip_remote_addr;
"""

_LOCATIONS = f"""
        location / {{ proxy_pass http://127.0.0.1:@B0@; {_SHOW} }}
        location /ws/ {{ proxy_pass http://127.0.0.1:@B0@; {_SHOW} {UPGRADE_LOC} }}
        location /deny10/ {{ deny 10.0.0.0/8; allow all; proxy_pass http://127.0.0.1:@B0@; {_SHOW} }}
        location /only192/ {{ allow 192.0.2.0/24; deny all; proxy_pass http://127.0.0.1:@B0@; {_SHOW} }}
        location /port {{ return 200 "[$remote_addr] [$remote_port]\\n"; }}
"""

group(Group("realip_xff", f"""
    server {{
        listen 127.0.0.1:@L0@;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        {_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        set_real_ip_from 127.0.0.0/8;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        {_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L2@;
        set_real_ip_from 192.0.2.1;
        real_ip_header X-Forwarded-For;
        {_LOCATIONS}
    }}
    server {{
        listen unix:@DIR@/realip.sock;
        set_real_ip_from unix:;
        real_ip_header X-Forwarded-For;
        {_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L3@;
        {_LOCATIONS}
        location /loc/ {{
            set_real_ip_from 127.0.0.1;
            proxy_pass http://127.0.0.1:@B0@;
            {_SHOW}
        }}
        location /locdeny/ {{
            set_real_ip_from 127.0.0.1;
            deny 198.51.100.7;
            proxy_pass http://127.0.0.1:@B0@;
        }}
    }}
"""))

_XFF = "X-Forwarded-For: 203.0.113.9, 10.1.1.1\r\n"
for target, name in (("L0", "trusted"), ("L1", "recursive"), ("L2", "untrusted peer"), ("UNIX:realip.sock", "unix:")):
    case(f"realip XFF {name}: what the backend sees", "realip_xff", get("/a", extra=_XFF),
         target=target, expect=(200,))
    case(f"realip XFF {name}: no header", "realip_xff", get("/a"), target=target, expect=(200,))
    case(f"realip XFF {name}: deny 10/8 judges the real address", "realip_xff",
         get("/deny10/x", extra=_XFF), target=target)
    case(f"realip XFF {name}: websocket upgrade", "realip_xff", upgrade("/ws/x", extra=_XFF),
         target=target, ws=True, expect=(101,))
    if target != "L2":  # (the peer's own port differs between the two runs)
        case(f"realip XFF {name}: the port is the header's or none", "realip_xff",
             get("/port", extra="X-Forwarded-For: 192.0.2.5:4567\r\n"), target=target, body=True,
             expect=(200,))

case("realip XFF: two headers, the last one counts", "realip_xff",
     get("/a", extra="X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-For: 10.0.0.5, 192.0.2.44\r\n"), expect=(200,))
case("realip XFF recursive: two headers walked from the last", "realip_xff",
     get("/a", extra="X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-For: 10.0.0.5, 10.0.0.6\r\n"),
     target="L1", expect=(200,))
case("realip XFF recursive: all trusted stops at the leftmost", "realip_xff",
     get("/a", extra="X-Forwarded-For: 10.0.0.1, 127.0.0.5, 10.9.9.9\r\n"), target="L1", expect=(200,))
case("realip XFF: allow 192.0.2.0/24 lets the real client in", "realip_xff",
     get("/only192/x", extra="X-Forwarded-For: 192.0.2.77\r\n"), expect=(200,))
case("realip XFF: allow 192.0.2.0/24 keeps others out", "realip_xff",
     get("/only192/x", extra="X-Forwarded-For: 198.51.100.1\r\n"), expect=(403,))
case("realip XFF: garbage is ignored", "realip_xff",
     get("/a", extra="X-Forwarded-For: not-an-address\r\n"), expect=(200,))
case("realip XFF: trailing separators, IPv6, leading zeros", "realip_xff",
     get("/a", extra="X-Forwarded-For: 001.2.3.4 , ,\r\n"), expect=(200,))
case("realip XFF: IPv6 with port in brackets", "realip_xff",
     get("/port", extra="X-Forwarded-For: [2001:db8::1]:8443\r\n"), body=True, expect=(200,))
case("realip XFF: IPv6 client", "realip_xff",
     get("/a", extra="X-Forwarded-For: 2001:DB8:0:0:0:0:0:1\r\n"), expect=(200,))
case("realip: location-level set_real_ip_from (X-Real-IP default)", "realip_xff",
     get("/loc/a", extra="X-Real-IP: 198.51.100.7\r\n"), target="L3", expect=(200,))
case("realip: location-level realip before deny", "realip_xff",
     get("/locdeny/a", extra="X-Real-IP: 198.51.100.7\r\n"), target="L3", expect=(403,))
case("realip: off where not configured", "realip_xff",
     get("/a", extra="X-Real-IP: 198.51.100.7\r\n" + _XFF), target="L3", expect=(200,))

group(Group("realip_hdr", f"""
    server {{
        listen 127.0.0.1:@L0@;
        set_real_ip_from 127.0.0.1;
        {_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L1@;
        set_real_ip_from 127.0.0.1;
        real_ip_header CF-Connecting-IP;
        {_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L2@;
        set_real_ip_from ::1;
        set_real_ip_from 127.0.0.2;
        real_ip_header X-Real-IP;
        {_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L3@;
        set_real_ip_from 127.0.0.1;
        real_ip_header x-forwarded-for;
        {_LOCATIONS}
    }}
"""))

for target, name in (("L0", "X-Real-IP"), ("L1", "CF-Connecting-IP"), ("L2", "untrusted X-Real-IP"),
                     ("L3", "x-forwarded-for as a plain header")):
    hdr = "CF-Connecting-IP" if target == "L1" else "X-Forwarded-For" if target == "L3" else "X-Real-IP"
    case(f"realip {name}: what the backend sees", "realip_hdr",
         get("/a", extra=f"{hdr}: 198.51.100.23\r\nX-Forwarded-For: 10.1.1.1\r\n"), target=target, expect=(200,))
    case(f"realip {name}: the first of two headers", "realip_hdr",
         get("/a", extra=f"{hdr}: 198.51.100.1\r\n{hdr}: 198.51.100.2\r\n"), target=target, expect=(200,))
    case(f"realip {name}: a list is one bad address or its last", "realip_hdr",
         get("/a", extra=f"{hdr}: 198.51.100.1, 198.51.100.2\r\n"), target=target, expect=(200,))
    case(f"realip {name}: deny 10/8", "realip_hdr", get("/deny10/a", extra=f"{hdr}: 10.2.3.4\r\n"),
         target=target)
    case(f"realip {name}: websocket", "realip_hdr", upgrade("/ws/a", extra=f"{hdr}: 198.51.100.23\r\n"),
         target=target, ws=True, expect=(101,))

group(Group("realip_v6", f"""
    server {{
        listen 127.0.0.1:@L0@;
        listen [::1]:@L1@;
        set_real_ip_from ::1;
        real_ip_header X-Forwarded-For;
        {_LOCATIONS}
    }}
"""))
for target, name in (("V6:1", "trusted ::1"), ("L0", "untrusted 127.0.0.1")):
    case(f"realip IPv6 peer, {name}", "realip_v6", get("/a", extra="X-Forwarded-For: 198.51.100.3\r\n"),
         target=target, expect=(200,))
    case(f"realip IPv6 peer, {name}: IPv6 client", "realip_v6",
         get("/a", extra="X-Forwarded-For: 2001:db8:0::5\r\n"), target=target, expect=(200,))
case("realip IPv6 peer: deny 10/8", "realip_v6", get("/deny10/a", extra="X-Forwarded-For: 10.0.0.9\r\n"),
     target="V6:1", expect=(403,))


# --- PROXY protocol ------------------------------------------------------------------

_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src: str, dst: str, sport: int, dport: int, command: int = 1, tlv: bytes = b"") -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x11 if a.version == 4 else 0x21
    body = a.packed + b.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + tlv
    return _SIG + bytes([0x20 | command, family]) + len(body).to_bytes(2, "big") + body


_PP_SHOW = _SHOW + """
            proxy_set_header X-PP "[$proxy_protocol_addr]:[$proxy_protocol_port] [$proxy_protocol_server_addr]:[$proxy_protocol_server_port]";
"""
_PP_LOCATIONS = f"""
        location / {{ proxy_pass http://127.0.0.1:@B0@; {_PP_SHOW} }}
        location /ws/ {{ proxy_pass http://127.0.0.1:@B0@; {_PP_SHOW} {UPGRADE_LOC} }}
        location /deny10/ {{ deny 10.0.0.0/8; allow all; proxy_pass http://127.0.0.1:@B0@; {_PP_SHOW} }}
        location /port {{ return 200 "[$remote_addr] [$remote_port]\\n"; }}
"""
_SSL = Path(__file__).resolve().parent.parent / "configs" / "ssl"

group(Group("pp", f"""
    server {{
        listen 127.0.0.1:@L0@ proxy_protocol;
        {_PP_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L1@ proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        {_PP_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L2@ ssl proxy_protocol;
        ssl_certificate cert.pem;
        ssl_certificate_key key.pem;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        {_PP_LOCATIONS}
    }}
    server {{
        listen 127.0.0.1:@L3@ proxy_protocol;
        set_real_ip_from 127.0.0.1;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        {_PP_LOCATIONS}
    }}
""", files={"cert.pem": (_SSL / "cert.pem").read_text(), "key.pem": (_SSL / "key.pem").read_text()}))


def _pp(id: str, preface: bytes, request: bytes, target: str = "L0", expect: tuple[int, ...] = (),
        ws: bool = False, tls: bool = False) -> None:
    CASES.append(Case(id, "pp", [Exchange([request], target=target, preface=preface, ws=ws, tls=tls)],
                      expect=expect))


_PREFACES = {
    "v1 TCP4": b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 443\r\n",
    "v1 TCP6": b"PROXY TCP6 2001:db8::7 2001:db8::1 40002 443\r\n",
    "v1 UNKNOWN": b"PROXY UNKNOWN\r\n",
    "v1 UNKNOWN with addresses": b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n",
    "v2 TCP4": v2("198.51.100.8", "192.0.2.1", 40003, 8443),
    "v2 TCP6": v2("2001:db8::8", "2001:db8::1", 40004, 8443),
    "v2 TCP4 with TLVs (as AWS NLB)": v2("10.3.3.3", "192.0.2.1", 40005, 80, tlv=b"\xea\x00\x05\x01vpce"),
    "v2 LOCAL": v2("198.51.100.9", "192.0.2.1", 1, 2, command=0),
    "v2 IPv4-mapped": v2("::ffff:198.51.100.10", "::ffff:192.0.2.1", 40006, 80),
}

for name, preface in _PREFACES.items():
    for target, how in (("L0", "variables only"), ("L1", "real_ip_header proxy_protocol"),
                        ("L3", "X-Forwarded-For behind it")):
        _pp(f"PROXY {name}, {how}", preface, get("/a", extra="X-Forwarded-For: 10.0.0.1\r\n"), target,
            expect=(200,))
    _pp(f"PROXY {name}, deny 10/8 on the real address", preface, get("/deny10/a"), "L1")
    _pp(f"PROXY {name}, websocket upgrade", preface, upgrade("/ws/a"), "L1", ws=True, expect=(101,))
    _pp(f"PROXY {name}, before TLS", preface, get("/a"), "L2", tls=True, expect=(200,))

for name in ("v1 TCP4", "v1 TCP6", "v2 TCP4", "v2 TCP6"):
    for target in ("L1", "L2"):
        CASES.append(Case(f"PROXY {name}: $remote_port is the preface's ({target})", "pp",
                          [Exchange([get("/port")], target=target, preface=_PREFACES[name], tls=target == "L2")],
                          expect=(200,), body=True))
CASES.append(Case("PROXY v1: two requests after one preface", "pp", [Exchange(
    [get("/a").replace(b"Connection: close", b"Connection: keep-alive") + get("/b"), b""], target="L1",
    preface=_PREFACES["v1 TCP4"])], expect=(200, 200)))
for name, preface in {
    "no preface at all": b"",
    "v1 without CRLF": b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 443\n",
    "v1 bad protocol": b"PROXY TCP5 198.51.100.7 127.0.0.1 40001 443\r\n",
    "v1 bad address characters": b"PROXY TCP4 198.51.100.x 127.0.0.1 40001 443\r\n",
    "v1 port too large": b"PROXY TCP4 198.51.100.7 127.0.0.1 70000 443\r\n",
    "v1 missing port": b"PROXY TCP4 198.51.100.7 127.0.0.1 40001\r\n",
    "v1 lowercase": b"proxy TCP4 198.51.100.7 127.0.0.1 40001 443\r\n",
    "v2 version 3": b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + bytes(12),
    "v2 address block too short": b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + bytes(4),
}.items():
    _pp(f"PROXY broken: {name}", preface, get("/a"), "L0")
    _pp(f"PROXY broken before TLS: {name}", preface, get("/a"), "L2", tls=True)
_pp("PROXY v1: an address nginx does not check", b"PROXY TCP4 abc 1.2.3.4 5 6\r\n", get("/a"), "L1",
    expect=(200,))
_pp("PROXY v1: port 0", b"PROXY TCP4 198.51.100.7 127.0.0.1 0 0\r\n", get("/a"), "L1", expect=(200,))

_pp("PROXY v1 then plain HTTP on the TLS port", _PREFACES["v1 TCP4"], get("/a"), "L2", expect=(400,))
_pp("PROXY v2 then plain HTTP on the TLS port", _PREFACES["v2 TCP4"], get("/a"), "L2", expect=(400,))
