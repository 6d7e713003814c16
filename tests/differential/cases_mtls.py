"""Client certificates and ssl_reject_handshake (issue 10, items 1 and 5).

Certificates are made here with ``cryptography`` (fresh keys each run, the
same files for both servers): a CA, a second ("foreign") CA, client
certificates that are valid, expired, from the foreign CA, revoked (with a
CRL), issued through an intermediate, and self-signed.  What the backend
receives through ``proxy_set_header X-... $ssl_...`` is compared byte for
byte, so the variables' formats (RFC 2253 DNs, serial, fingerprint, the
escaped PEM) must be nginx's.
"""

from __future__ import annotations

import datetime

from cases import CASES, UPGRADE_LOC, group
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from oracle import Case, Exchange, Group, get, upgrade

_NOW = datetime.datetime.now(datetime.timezone.utc)
_DAY = datetime.timedelta(days=1)


def _name(cn: str, org: str = "ngxws tests") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


class _Issued:
    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert, self.key = cert, key

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def _issue(
    subject: x509.Name,
    issuer: _Issued | None,
    *,
    ca: bool = False,
    before: datetime.datetime = _NOW - _DAY,
    after: datetime.datetime = _NOW + 30 * _DAY,
    dns: str | None = None,
    serial: int | None = None,
) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    signer = issuer.key if issuer else key
    return _Issued(builder.sign(signer, hashes.SHA256()), key)


def _crl(ca: _Issued, revoked: list[_Issued]) -> str:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(_NOW - _DAY)
        .next_update(_NOW + 30 * _DAY)
    )
    for r in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(r.cert.serial_number).revocation_date(_NOW - _DAY).build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


CA = _issue(_name("ngxws test CA"), None, ca=True)
FOREIGN_CA = _issue(_name("someone else's CA", "Elsewhere"), None, ca=True)
INTERMEDIATE = _issue(_name("ngxws intermediate"), CA, ca=True)
SERVER = _issue(_name("example.com"), CA, dns="example.com")
# RFC 2253 escaping is exercised: ',' '+' '"' in the subject
VALID = _issue(x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, 'R+D "labs"'),
    x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
    x509.NameAttribute(NameOID.EMAIL_ADDRESS, "alice@example.com"),
]), CA, serial=0x0ABCDEF0123)
EXPIRED = _issue(_name("bob"), CA, before=_NOW - 30 * _DAY, after=_NOW - _DAY)
FOREIGN = _issue(_name("mallory", "Elsewhere"), FOREIGN_CA)
REVOKED = _issue(_name("carol"), CA)
VIA_INTERMEDIATE = _issue(_name("dave"), INTERMEDIATE)
SELF_SIGNED = _issue(_name("eve"), None)

FILES = {
    "server.pem": SERVER.cert_pem,
    "server.key": SERVER.key_pem,
    "ca.pem": CA.cert_pem,
    "crl.pem": _crl(CA, [REVOKED]) + _crl(INTERMEDIATE, []),
    "valid.pem": VALID.cert_pem + VALID.key_pem,
    "expired.pem": EXPIRED.cert_pem + EXPIRED.key_pem,
    "foreign.pem": FOREIGN.cert_pem + FOREIGN.key_pem,
    "revoked.pem": REVOKED.cert_pem + REVOKED.key_pem,
    "chain.pem": VIA_INTERMEDIATE.cert_pem + VIA_INTERMEDIATE.key_pem + INTERMEDIATE.cert_pem,
    "self.pem": SELF_SIGNED.cert_pem + SELF_SIGNED.key_pem,
}

SSL_HEADERS = """
            proxy_set_header X-Client-Verify $ssl_client_verify;
            proxy_set_header X-Client-DN $ssl_client_s_dn;
            proxy_set_header X-Client-Issuer $ssl_client_i_dn;
            proxy_set_header X-Client-Serial $ssl_client_serial;
            proxy_set_header X-Client-Fingerprint $ssl_client_fingerprint;
            proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-SSL-Protocol $ssl_protocol;
            proxy_set_header X-SSL-Cipher $ssl_cipher;
            proxy_set_header X-SNI $ssl_server_name;
"""

TLS_SERVER = """
        ssl_certificate @DIR@/server.pem;
        ssl_certificate_key @DIR@/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
"""


def _server(port: str, settings: str, name: str = "example.com", extra: str = "") -> str:
    return f"""
    server {{
        listen 127.0.0.1:@{port}@ ssl;
        server_name {name};
        {TLS_SERVER}
        {settings}
        location / {{ {SSL_HEADERS} proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} {SSL_HEADERS} proxy_pass http://127.0.0.1:@B0@; }}
        {extra}
    }}
"""


group(Group("mtls", "map $ssl_client_verify $verified { SUCCESS yes; default no; }\n" + _server(
    "L0", "ssl_verify_client on; ssl_client_certificate @DIR@/ca.pem; ssl_verify_depth 2;",
) + _server(
    "L1", "ssl_verify_client optional; ssl_client_certificate @DIR@/ca.pem;",
    extra="""
        location /mapped { proxy_set_header X-Verified $verified; proxy_pass http://127.0.0.1:@B0@; }
        location /if {
            if ($ssl_client_verify != SUCCESS) { return 403; }
            proxy_pass http://127.0.0.1:@B0@;
        }
        location /return { return 200 "$ssl_client_verify|$ssl_client_s_dn|$ssl_protocol\\n"; }
        error_page 495 /cert-error;
        location = /cert-error { return 200 "bad certificate\\n"; }
""",
) + _server(
    "L2", "ssl_verify_client optional_no_ca;",
) + _server(
    "L3", "ssl_verify_client on; ssl_client_certificate @DIR@/ca.pem; ssl_crl @DIR@/crl.pem;"
    " ssl_verify_depth 2;",
), files=FILES))


def _mtls(id: str, grp: str, request: bytes, cert: str, expect: int, target: str = "L0", ws: bool = False,
          sni: str = "example.com", body: bool = False) -> None:
    CASES.append(Case(id, grp, [Exchange([request], target=target, tls=True, client_cert=cert, ws=ws,
                                         server_name=sni)], expect=(expect,), body=body))


for _cert, _on, _opt, _noca in (
    ("", 400, 200, 200),
    ("valid.pem", 200, 200, 200),
    ("expired.pem", 400, 400, 400),
    ("foreign.pem", 400, 400, 200),
    ("self.pem", 400, 400, 200),
    ("chain.pem", 200, 200, 200),
):
    _what = _cert.removesuffix(".pem") or "no certificate"
    _mtls(f"verify on, {_what}", "mtls", get("/x"), _cert, _on)
    _mtls(f"verify on, {_what}, websocket", "mtls", upgrade("/ws/x"), _cert, 101 if _on == 200 else _on,
          ws=True)
    _mtls(f"verify optional, {_what}", "mtls", get("/x"), _cert, _opt, target="L1")
    _mtls(f"verify optional, {_what}, websocket", "mtls", upgrade("/ws/x"), _cert,
          101 if _opt == 200 else _opt, target="L1", ws=True)
    _mtls(f"verify optional_no_ca, {_what}", "mtls", get("/x"), _cert, _noca, target="L2")
    _mtls(f"verify optional_no_ca, {_what}, websocket", "mtls", upgrade("/ws/x"), _cert,
          101 if _noca == 200 else _noca, target="L2", ws=True)

for _cert, _status in (("valid.pem", 200), ("revoked.pem", 400), ("chain.pem", 200), ("", 400)):
    _mtls(f"ssl_crl, {_cert or 'no certificate'}", "mtls", get("/x"), _cert, _status, target="L3")

_mtls("$ssl_client_verify in a map", "mtls", get("/mapped"), "valid.pem", 200, target="L1")
_mtls("$ssl_client_verify in a map, none", "mtls", get("/mapped"), "", 200, target="L1")
_mtls("$ssl_client_verify in if: valid", "mtls", get("/if"), "valid.pem", 200, target="L1")
_mtls("$ssl_client_verify in if: none", "mtls", get("/if"), "", 403, target="L1")
_mtls("$ssl_* in return", "mtls", get("/return"), "valid.pem", 200, target="L1")
_mtls("error_page 495 (answers 400 with the page)", "mtls", get("/x"), "expired.pem", 400, target="L1")


# --- SNI: per server, as nginx --------------------------------------------------

group(Group("mtls-sni", f"""
    server {{
        listen 127.0.0.1:@L0@ ssl default_server;
        server_name example.com;
        {TLS_SERVER}
        ssl_verify_client on;
        ssl_client_certificate @DIR@/ca.pem;
        location / {{ {SSL_HEADERS} proxy_pass http://127.0.0.1:@B0@; }}
    }}
    server {{
        listen 127.0.0.1:@L0@ ssl;
        server_name open.test;
        {TLS_SERVER}
        location / {{ {SSL_HEADERS} proxy_pass http://127.0.0.1:@B0@; }}
    }}
    server {{
        listen 127.0.0.1:@L0@ ssl;
        server_name optional.test;
        {TLS_SERVER}
        ssl_verify_client optional;
        ssl_client_certificate @DIR@/ca.pem;
        location / {{ {SSL_HEADERS} proxy_pass http://127.0.0.1:@B0@; }}
    }}
""", files=FILES))

_mtls("SNI default server (verify on), no certificate", "mtls-sni", get("/"), "", 400)
_mtls("SNI names a server without verification: no certificate asked", "mtls-sni",
      get("/", host="open.test"), "foreign.pem", 200, sni="open.test")
_mtls("SNI names the optional server: foreign certificate", "mtls-sni",
      get("/", host="optional.test"), "foreign.pem", 400, sni="optional.test")
_mtls("SNI names the optional server: none", "mtls-sni",
      get("/", host="optional.test"), "", 200, sni="optional.test")
_mtls("SNI names the optional server: valid", "mtls-sni",
      get("/", host="optional.test"), "valid.pem", 200, sni="optional.test")
_mtls("SNI unknown: the default server's verification", "mtls-sni",
      get("/", host="unknown.test"), "valid.pem", 200, sni="unknown.test")

# ngx_http_set_virtual_server(): SNI named a server, the Host another name
_mtls("Host names a verifying server other than SNI's: 421", "mtls-sni",
      get("/", host="example.com"), "valid.pem", 421, sni="open.test")
_mtls("Host unknown falls to the verifying default, SNI named another: 421", "mtls-sni",
      get("/", host="unknown.test"), "valid.pem", 421, sni="open.test")
_mtls("Host names a server without verification, SNI the verifying one: served", "mtls-sni",
      get("/", host="open.test"), "valid.pem", 200, sni="example.com")
_mtls("SNI named nobody, Host the verifying server: no 421", "mtls-sni",
      get("/", host="example.com"), "valid.pem", 200, sni="unknown.test")
_mtls("SNI and Host differ only in case and port", "mtls-sni",
      get("/", host="OPTIONAL.test:443"), "valid.pem", 200, sni="optional.test")


# --- item 5: ssl_reject_handshake -------------------------------------------------

group(Group("reject", f"""
    ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22's default has no TLSv1.3, ngxws's has
    server {{
        listen 127.0.0.1:@L0@ ssl default_server;
        ssl_reject_handshake on;
    }}
    server {{
        listen 127.0.0.1:@L0@ ssl;
        server_name known.test;
        {TLS_SERVER}
        location / {{ {SSL_HEADERS} proxy_pass http://127.0.0.1:@B0@; }}
        location /ws/ {{ {UPGRADE_LOC} proxy_pass http://127.0.0.1:@B0@; }}
    }}
    server {{
        listen 127.0.0.1:@L1@ ssl;
        server_name example.com;
        {TLS_SERVER}
        location / {{ return 200 "served\\n"; }}
    }}
    server {{
        listen 127.0.0.1:@L1@ ssl;
        server_name refused.test;
        ssl_reject_handshake on;
        location / {{ return 200 "never\\n"; }}
    }}
""", files=FILES))

_mtls("reject_handshake: a known name is served", "reject", get("/", host="known.test"), "", 200,
      sni="known.test")
_mtls("reject_handshake: websocket on the known name", "reject", upgrade("/ws/x", host="known.test"), "",
      101, sni="known.test", ws=True)
CASES.append(Case("reject_handshake: an unknown name is refused at the handshake", "reject",
                  [Exchange([get("/")], tls=True, server_name="unknown.test")]))
CASES.append(Case("reject_handshake: no SNI is refused at the handshake", "reject",
                  [Exchange([get("/")], tls=True, server_name="")]))
_mtls("reject_handshake on a named server: other names served", "reject", get("/"), "", 200, target="L1")
CASES.append(Case("reject_handshake on a named server: that name refused", "reject",
                  [Exchange([get("/", host="refused.test")], target="L1", tls=True, server_name="refused.test")]))
