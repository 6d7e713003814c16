"""Client certificates (``ssl_verify_client``) and nginx's ``$ssl_*`` variables.

nginx asks for a client certificate with ``SSL_VERIFY_PEER`` and a verify
callback that always says yes (``ngx_ssl_verify_callback``): the handshake
succeeds whatever the certificate, OpenSSL keeps the verification result on
the connection, and every *request* is then judged by the server the Host
header picked (``ngx_http_process_request``): 495 for a certificate that did
not verify, 496 for none under ``on``.  ``$ssl_client_verify`` prints that
same result (``SUCCESS``, ``FAILED:reason``, ``NONE``).

Python's ``ssl`` module has no verify callback, so with ``CERT_OPTIONAL``
a bad certificate would fail the handshake instead.  ``_Native`` reaches
the very OpenSSL that ``_ssl`` is linked with (through ``_ssl``'s own
shared object, so never a second copy of the library) and sets nginx's
callback and depth on the ``SSL_CTX``, the client CA list nginx sends, and
reads back per connection what nginx reads: the verify result, the SNI
name, the DN strings in ``XN_FLAG_RFC2253`` and the serial as
``i2a_ASN1_INTEGER`` prints them.  The ``SSL_CTX``/``SSL`` pointers are read
from CPython's ``_ssl`` objects (the pointer right after the object head);
the layout is checked against what Python itself reports before use.

Everything else here is pure: the per-request decision (``request_status``)
and the variables' text.
"""

from __future__ import annotations

import _ssl
import ctypes
import hashlib
import ssl
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from ngxws.config.model import Server
from ngxws.routing.servers import VirtualHosts, normalise_host

VERIFY_CLIENT = ("off", "on", "optional", "optional_no_ca")
"""``ssl_verify_client`` values, in nginx's enum order."""

_X509_V_OK = 0
# ngx_ssl_verify_error_optional(): what ``optional_no_ca`` lets through
# (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, _SELF_SIGNED_CERT_IN_CHAIN,
# _UNABLE_TO_GET_ISSUER_CERT_LOCALLY, _CERT_UNTRUSTED, _UNABLE_TO_VERIFY_LEAF_SIGNATURE)
_OPTIONAL_ERRORS = frozenset({18, 19, 20, 27, 21})

_SSL_VERIFY_PEER = 1
_XN_FLAG_RFC2253 = 0x0317 | (1 << 16) | (1 << 20) | (1 << 24)
_BIO_CTRL_PENDING = 10

SSL_VARIABLES = frozenset(
    {
        "ssl_protocol", "ssl_cipher", "ssl_server_name", "ssl_client_verify",
        "ssl_client_s_dn", "ssl_client_i_dn", "ssl_client_serial",
        "ssl_client_fingerprint", "ssl_client_escaped_cert", "ssl_client_raw_cert",
        "ssl_client_cert", "ssl_alpn_protocol",
    }
)  # fmt: skip
"""The ``$ssl_*`` variables ngxws renders (ngx_http_ssl_vars)."""


class NativeUnavailable(Exception):
    """This Python's ``ssl`` cannot be reached natively (not CPython, or its
    OpenSSL hides its symbols): client certificates cannot be verified."""


_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _always_ok(preverify_ok: int, store: int | None) -> int:
    # ngx_ssl_verify_callback(): the result stays on the connection, the
    # handshake goes on; nginx decides per request.
    return 1


class _Native:
    """The few OpenSSL calls Python's ``ssl`` does not offer."""

    def __init__(self) -> None:
        if sys.implementation.name != "cpython":
            raise NativeUnavailable("client certificates need CPython's ssl module")
        try:
            lib = ctypes.CDLL(_ssl.__file__)
            self._bind(lib)
        except (OSError, AttributeError) as exc:
            raise NativeUnavailable(f"OpenSSL of the ssl module is not reachable: {exc}") from exc
        self.callback = _VerifyCallback(_always_ok)
        self.head = object.__basicsize__  # PyObject_HEAD: the SSL_CTX*/SSL* follow it
        self._check_layout()

    def _bind(self, lib: ctypes.CDLL) -> None:
        vp, c_int, c_long = ctypes.c_void_p, ctypes.c_int, ctypes.c_long

        def fn(name: str, res: object, *args: object) -> Any:
            f = getattr(lib, name)
            f.restype = res
            f.argtypes = list(args)
            return f

        self.SSL_CTX_set_verify = fn("SSL_CTX_set_verify", None, vp, c_int, _VerifyCallback)
        self.SSL_CTX_get_verify_mode = fn("SSL_CTX_get_verify_mode", c_int, vp)
        self.SSL_CTX_set_verify_depth = fn("SSL_CTX_set_verify_depth", None, vp, c_int)
        self.SSL_CTX_get_verify_depth = fn("SSL_CTX_get_verify_depth", c_int, vp)
        self.SSL_CTX_get_options = fn("SSL_CTX_get_options", ctypes.c_uint64, vp)
        self.SSL_CTX_set_client_CA_list = fn("SSL_CTX_set_client_CA_list", None, vp, vp)
        self.SSL_load_client_CA_file = fn("SSL_load_client_CA_file", vp, ctypes.c_char_p)
        self.SSL_set_verify = fn("SSL_set_verify", None, vp, c_int, _VerifyCallback)
        self.SSL_set_verify_depth = fn("SSL_set_verify_depth", None, vp, c_int)
        self.SSL_get_verify_result = fn("SSL_get_verify_result", c_long, vp)
        self.SSL_get_servername = fn("SSL_get_servername", ctypes.c_char_p, vp, c_int)
        self.X509_verify_cert_error_string = fn("X509_verify_cert_error_string", ctypes.c_char_p, c_long)
        self.d2i_X509 = fn("d2i_X509", vp, vp, ctypes.POINTER(ctypes.c_char_p), c_long)
        self.X509_free = fn("X509_free", None, vp)
        self.X509_get_subject_name = fn("X509_get_subject_name", vp, vp)
        self.X509_get_issuer_name = fn("X509_get_issuer_name", vp, vp)
        self.X509_get_serialNumber = fn("X509_get_serialNumber", vp, vp)
        self.X509_NAME_print_ex = fn("X509_NAME_print_ex", c_int, vp, vp, c_int, ctypes.c_ulong)
        self.i2a_ASN1_INTEGER = fn("i2a_ASN1_INTEGER", c_int, vp, vp)
        self.BIO_s_mem = fn("BIO_s_mem", vp)
        self.BIO_new = fn("BIO_new", vp, vp)
        self.BIO_ctrl = fn("BIO_ctrl", c_long, vp, c_int, c_long, vp)
        self.BIO_read = fn("BIO_read", c_int, vp, ctypes.c_char_p, c_int)
        self.BIO_free = fn("BIO_free", c_int, vp)

    def _pointer_after_head(self, obj: object, extra: int = 0) -> int:
        value = ctypes.c_void_p.from_address(id(obj) + self.head + extra).value
        if not value:
            raise NativeUnavailable("unexpected layout of the ssl module's objects")
        return value

    def _check_layout(self) -> None:
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        probe.verify_mode = ssl.CERT_OPTIONAL
        ptr = self._pointer_after_head(probe)
        if (
            self.SSL_CTX_get_options(ptr) != int(probe.options)
            or self.SSL_CTX_get_verify_mode(ptr) != _SSL_VERIFY_PEER
        ):
            raise NativeUnavailable("unexpected layout of the ssl module's SSLContext")

    def ctx_pointer(self, ctx: ssl.SSLContext) -> int:
        return self._pointer_after_head(ctx)

    def ssl_pointer(self, sslobj: ssl.SSLObject) -> int:
        inner = sslobj._sslobj  # type: ignore[attr-defined]
        # _ssl._SSLSocket: head, Socket (weakref), SSL*, PySSLContext* ctx
        ctx_field = ctypes.c_void_p.from_address(id(inner) + self.head + 16).value
        if ctx_field != id(inner.context):
            raise NativeUnavailable("unexpected layout of the ssl module's SSLObject")
        return self._pointer_after_head(inner, 8)

    def bio_text(self, write: Callable[[int], object]) -> str:
        bio = self.BIO_new(self.BIO_s_mem())
        try:
            write(bio)
            n = self.BIO_ctrl(bio, _BIO_CTRL_PENDING, 0, None)
            buf = ctypes.create_string_buffer(max(n, 1))
            got = self.BIO_read(bio, buf, n) if n > 0 else 0
            return buf.raw[: max(got, 0)].decode("utf-8", "surrogateescape")
        finally:
            self.BIO_free(bio)


_native: _Native | None = None


def native() -> _Native:
    """The native calls, loaded on first use (raises ``NativeUnavailable``)."""
    global _native
    if _native is None:
        _native = _Native()
    return _native


# -- contexts --------------------------------------------------------------------


def configure_client_verify(ctx: ssl.SSLContext, server: Server) -> None:
    """ngx_ssl_client_certificate() + ngx_ssl_trusted_certificate() + ngx_ssl_crl()
    for a server with ``ssl_verify_client`` other than ``off``.

    Raises ``OSError``/``ssl.SSLError`` for a file OpenSSL cannot load and
    ``NativeUnavailable``; the caller words them as nginx does.
    """
    n = native()
    ctx.verify_mode = ssl.CERT_OPTIONAL  # SSL_VERIFY_PEER, never FAIL_IF_NO_PEER_CERT
    for path in (server.ssl_client_certificate, server.ssl_trusted_certificate, server.ssl_crl):
        if path:
            ctx.load_verify_locations(cafile=path)  # certificates and CRLs alike
    if server.ssl_crl:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN  # X509_V_FLAG_CRL_CHECK|_CHECK_ALL
    ptr = n.ctx_pointer(ctx)
    n.SSL_CTX_set_verify(ptr, _SSL_VERIFY_PEER, n.callback)
    n.SSL_CTX_set_verify_depth(ptr, server.ssl_verify_depth)
    if server.ssl_client_certificate:
        names = n.SSL_load_client_CA_file(server.ssl_client_certificate.encode())
        if names:
            n.SSL_CTX_set_client_CA_list(ptr, names)


def adopt_verify(sslobj: ssl.SSLObject, ctx: ssl.SSLContext) -> None:
    """After SNI switched ``sslobj`` to ``ctx``: take that context's verify
    mode and depth, as ngx_http_ssl_servername() does (SSL_set_SSL_CTX()
    alone changes only the certificate and the trust store)."""
    n = native()
    ctx_ptr = n.ctx_pointer(ctx)
    ssl_ptr = n.ssl_pointer(sslobj)
    n.SSL_set_verify(ssl_ptr, n.SSL_CTX_get_verify_mode(ctx_ptr), n.callback)
    n.SSL_set_verify_depth(ssl_ptr, n.SSL_CTX_get_verify_depth(ctx_ptr))


# -- per connection ----------------------------------------------------------------


class ConnectionTLS:
    """What nginx's ``$ssl_*`` variables read from one TLS connection; each
    value computed on first use and kept (the handshake is over)."""

    __slots__ = ("_obj", "_values", "_der", "_der_read")

    def __init__(self, sslobj: ssl.SSLObject) -> None:
        self._obj = sslobj
        self._values: dict[str, str] = {}
        self._der: bytes | None = None
        self._der_read = False

    @property
    def peer_certificate(self) -> bytes | None:
        """The client's certificate (DER), None when it sent none."""
        if not self._der_read:
            self._der_read = True
            try:
                self._der = self._obj.getpeercert(binary_form=True)
            except ValueError:  # handshake not done: no certificate
                self._der = None
        return self._der

    def verify_result(self) -> int:
        """SSL_get_verify_result(): X509_V_OK (0) also when no certificate came."""
        n = native()
        return int(n.SSL_get_verify_result(n.ssl_pointer(self._obj)))

    def variable(self, name: str) -> str:
        """``$name`` (one of ``SSL_VARIABLES``) as nginx prints it."""
        value = self._values.get(name)
        if value is None:
            value = self._values[name] = self._compute(name)
        return value

    def _compute(self, name: str) -> str:
        obj = self._obj
        if name == "ssl_protocol":
            return obj.version() or ""
        if name == "ssl_cipher":
            cipher = obj.cipher()
            return cipher[0] if cipher else ""
        if name == "ssl_alpn_protocol":
            return obj.selected_alpn_protocol() or ""
        if name == "ssl_server_name":
            n = native()
            sni = n.SSL_get_servername(n.ssl_pointer(obj), 0)  # TLSEXT_NAMETYPE_host_name
            return sni.decode("latin-1") if sni else ""
        der = self.peer_certificate
        if name == "ssl_client_verify":
            if der is None:
                return "NONE"
            rc = self.verify_result()
            if rc == _X509_V_OK:
                return "SUCCESS"
            reason = native().X509_verify_cert_error_string(rc) or b""
            return "FAILED:" + reason.decode("latin-1")
        if der is None:
            return ""
        if name == "ssl_client_fingerprint":
            return hashlib.sha1(der).hexdigest()  # X509_digest(EVP_sha1()), ngx_hex_dump
        pem = ssl.DER_cert_to_PEM_cert(der)  # what PEM_write_bio_X509() writes
        if name == "ssl_client_raw_cert":
            return pem
        if name == "ssl_client_cert":  # deprecated form: every line but the first tab-indented
            return pem[:-1].replace("\n", "\n\t")
        if name == "ssl_client_escaped_cert":
            return quote(pem, safe="")  # ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT)
        return _x509_text(der, name)


def _x509_text(der: bytes, name: str) -> str:
    """Subject/issuer DN (RFC 2253, as X509_NAME_print_ex prints it) or the serial."""
    n = native()
    data = ctypes.c_char_p(der)
    x509 = n.d2i_X509(None, ctypes.byref(data), len(der))
    if not x509:
        return ""
    try:
        if name == "ssl_client_serial":
            serial = n.X509_get_serialNumber(x509)
            return n.bio_text(lambda bio: n.i2a_ASN1_INTEGER(bio, serial))
        if name not in ("ssl_client_s_dn", "ssl_client_i_dn"):
            return ""
        getter = n.X509_get_subject_name if name == "ssl_client_s_dn" else n.X509_get_issuer_name
        xname = getter(x509)
        return n.bio_text(lambda bio: n.X509_NAME_print_ex(bio, xname, 0, _XN_FLAG_RFC2253))
    finally:
        n.X509_free(x509)


_NOBODY = Server(listens=(), server_names=(), locations=())
_probes: dict[int, tuple[VirtualHosts, VirtualHosts]] = {}


def _named_server(vhosts: VirtualHosts, name: str) -> Server | None:
    """The server ``name`` selects on the socket, None when it is only the
    default server's by fallback (ngx_http_find_virtual_server's NGX_DECLINED)."""
    entry = _probes.get(id(vhosts))
    if entry is None or entry[0] is not vhosts:
        entry = _probes[id(vhosts)] = (vhosts, replace(vhosts, default=_NOBODY))
    server = entry[1].select(name)
    return None if server is _NOBODY else server


def request_status(
    tls: ConnectionTLS | None, server: Server, vhosts: VirtualHosts, host: str | None
) -> int:
    """The checks nginx makes of a request on a TLS connection, for the server
    the Host picked: 421 when SNI named a server and the Host names another
    name and its server verifies client certificates
    (ngx_http_set_virtual_server()); then ngx_http_process_request()'s 495
    (certificate error) and 496 (none sent under ``on``); else 0."""
    if tls is None:
        return 0
    if host and server.ssl_verify_client != "off":
        sni = tls.variable("ssl_server_name")
        if sni and normalise_host(host) != normalise_host(sni) and _named_server(vhosts, sni):
            return 421
    mode = server.ssl_verify_client
    if mode == "off":
        return 0
    rc = tls.verify_result()
    if rc != _X509_V_OK and not (mode == "optional_no_ca" and rc in _OPTIONAL_ERRORS):
        return 495
    if mode == "on" and tls.peer_certificate is None:
        return 496
    return 0


def ssl_variable(tls: ConnectionTLS | None, name: str) -> str:
    """``$ssl_*`` for a request: empty on a plain connection, as nginx's
    variables are not found there."""
    if tls is None or name not in SSL_VARIABLES:
        return ""
    return tls.variable(name)
