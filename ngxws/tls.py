"""TLS contexts built from the config model: no sockets here.

Two sides, each mirroring an nginx module:

- **server** (``ngx_http_ssl_module``): one ``ssl.SSLContext`` per listening
  socket that says ``listen ... ssl``.  The socket's default server supplies
  the certificate a client sees without SNI (or with a name nobody claims);
  the SNI name picks another server's certificate through the same virtual
  server lookup the Host header uses (exact, wildcards, regexes), as
  ``ngx_http_ssl_servername()`` does.  As there, only the certificate
  follows SNI: protocol versions and ciphers are the default server's.
- **upstream** (``proxy_pass https://``, ``proxy_ssl_*``): one client context
  per ``ProxySettings``, cached.  Like nginx, the default is *no*
  verification (``proxy_ssl_verify off``) and no SNI
  (``proxy_ssl_server_name off``).

Both offer only ``http/1.1`` by ALPN: ngxws speaks no HTTP/2, so a
``listen ... http2`` socket must not let clients pick ``h2``.
"""

from __future__ import annotations

import ipaddress
import ssl
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ngxws.client_certs import NativeUnavailable, adopt_verify, configure_client_verify
from ngxws.config.model import ProxyPass, ProxySettings, Server
from ngxws.routing.servers import VirtualHosts

# ssl_protocols names -> OpenSSL versions.  SSLv2/SSLv3 are accepted by the
# loader (nginx takes them) but OpenSSL 3 cannot speak them: they add nothing.
PROTOCOL_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

ALPN = ["http/1.1"]


class TLSError(Exception):
    """A certificate, key or cipher list OpenSSL refuses.  The message reads
    like nginx's ``[emerg]`` line for it (print it the way ConfigError is)."""


def version_bounds(protocols: Sequence[str]) -> tuple[ssl.TLSVersion, ssl.TLSVersion] | None:
    """``ssl_protocols`` as (minimum, maximum); None when no listed version is usable.

    A gap (``TLSv1 TLSv1.2``) is widened to the range: OpenSSL's min/max
    cannot express it, and the per-version disable options are deprecated.
    """
    allowed = sorted(PROTOCOL_VERSIONS[p] for p in protocols if p in PROTOCOL_VERSIONS)
    if not allowed:
        return None
    return allowed[0], allowed[-1]


def _apply_protocols(ctx: ssl.SSLContext, protocols: Sequence[str]) -> None:
    bounds = version_bounds(protocols)
    if bounds is not None:
        ctx.minimum_version, ctx.maximum_version = bounds


def _set_ciphers(ctx: ssl.SSLContext, ciphers: str) -> None:
    try:
        ctx.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        # Python drops OpenSSL's error code; the wording is nginx's.
        raise TLSError(
            f'SSL_CTX_set_cipher_list("{ciphers}") failed (SSL: no cipher match)'
        ) from exc


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    """``load_cert_chain`` with nginx's three messages for what can go wrong."""
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            probe.load_verify_locations(cafile=cert)
        except (OSError, ssl.SSLError):
            raise TLSError(
                f'cannot load certificate "{cert}": PEM_read_bio_X509_AUX() failed '
                "(SSL: no start line:Expecting: TRUSTED CERTIFICATE)"
            ) from exc
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            raise TLSError(
                f'SSL_CTX_use_PrivateKey("{key}") failed (SSL: key values mismatch)'
            ) from exc
        raise TLSError(
            f'cannot load certificate key "{key}": PEM_read_bio_PrivateKey() failed (SSL: {exc})'
        ) from exc


# -- server side -------------------------------------------------------------


def server_context(server: Server) -> ssl.SSLContext:
    """The context of one server block: its certificate, protocols, ciphers
    and client certificate checks.  A server refusing handshakes
    (``ssl_reject_handshake on``) may have no certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if server.ssl_certificate is not None and server.ssl_certificate_key is not None:
        _load_chain(ctx, server.ssl_certificate, server.ssl_certificate_key)
    _apply_protocols(ctx, server.ssl_protocols)
    if server.ssl_ciphers is not None:
        _set_ciphers(ctx, server.ssl_ciphers)
    ctx.set_alpn_protocols(ALPN)
    if server.ssl_verify_client != "off":
        _client_verify(ctx, server)
    return ctx


def _client_verify(ctx: ssl.SSLContext, server: Server) -> None:
    try:
        configure_client_verify(ctx, server)
    except NativeUnavailable as exc:
        raise TLSError(f"ssl_verify_client is not supported here: {exc}") from exc
    except (OSError, ssl.SSLError) as exc:
        files = [
            p
            for p in (server.ssl_client_certificate, server.ssl_trusted_certificate, server.ssl_crl)
            if p
        ]
        path = next((p for p in files if not _loads(p)), files[0] if files else "")
        raise TLSError(f'SSL_CTX_load_verify_locations("{path}") failed (SSL: {exc})') from exc


def _loads(path: str) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError):
        return False
    return True


def _has_certificate(server: Server) -> bool:
    return bool(server.ssl_certificate and server.ssl_certificate_key)


def listener_context(vhosts: VirtualHosts, servers: Sequence[Server]) -> ssl.SSLContext | None:
    """The context of one ``listen ... ssl`` socket, with SNI across ``servers``.

    ``vhosts`` is the socket's name table (``routing.servers``); its default
    server's certificate is presented when SNI names nobody.  None when no
    server on the socket has a certificate (the loader refuses that for the
    default server already, as nginx does).
    """
    with_cert = [s for s in servers if _has_certificate(s) or s.ssl_reject_handshake]
    if not with_cert:
        return None
    default_server = vhosts.default
    if not (_has_certificate(default_server) or default_server.ssl_reject_handshake):
        default_server = with_cert[0]
    # Servers that share a certificate and settings share a context.
    by_settings: dict[tuple[object, ...], ssl.SSLContext] = {}
    by_server: dict[int, ssl.SSLContext] = {}
    for s in [default_server, *with_cert]:
        settings = (
            s.ssl_certificate, s.ssl_certificate_key, s.ssl_protocols, s.ssl_ciphers,
            s.ssl_verify_client, s.ssl_verify_depth, s.ssl_client_certificate,
            s.ssl_trusted_certificate, s.ssl_crl,
        )  # fmt: skip
        ctx = by_settings.get(settings)
        if ctx is None:
            ctx = by_settings[settings] = server_context(s)
        by_server[id(s)] = ctx
    default = by_server[id(default_server)]
    if len(by_settings) > 1 or any(s.ssl_reject_handshake for s in servers):
        default.sni_callback = _sni_picker(vhosts, by_server)
    if any(s.ssl_reject_handshake for s in servers):
        _refusers[default] = _refuser(vhosts)
    return default


def _sni_picker(
    vhosts: VirtualHosts, by_server: dict[int, ssl.SSLContext]
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], int | None]:
    def pick(sslobj: ssl.SSLObject, name: str | None, current: ssl.SSLContext) -> int | None:
        server = vhosts.select(name) if name else vhosts.default
        if server.ssl_reject_handshake:
            # ngx_http_ssl_servername(): the name (or, without one, the
            # default server) picks a server that refuses: alert 112
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ctx = by_server.get(id(server))
        # A server without a certificate of its own keeps the default's,
        # as nginx keeps the connection's SSL_CTX when the server has none.
        if ctx is not None and ctx is not current:
            sslobj.context = ctx
            if ctx.verify_mode != current.verify_mode or ctx.verify_mode != ssl.CERT_NONE:
                adopt_verify(sslobj, ctx)
        return None

    return pick


# -- upstream side -------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamTLS:
    """What ``connect_upstream`` passes to ``create_connection`` for an https peer.

    ``server_hostname`` is the SNI name and, with ``proxy_ssl_verify on``,
    the name the certificate must carry; ``""`` sends no SNI and checks no
    name (asyncio would otherwise use the peer's address).
    """

    context: ssl.SSLContext
    server_hostname: str


def upstream_context(settings: ProxySettings, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context for ``proxy_ssl_*`` settings (uncached; see ``upstream_tls``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.ssl_verify:
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
        if settings.ssl_trusted_certificate is not None:
            try:
                ctx.load_verify_locations(cafile=settings.ssl_trusted_certificate)
            except (OSError, ssl.SSLError) as exc:
                raise TLSError(
                    f'cannot load trusted certificate "{settings.ssl_trusted_certificate}": {exc}'
                ) from exc
        # proxy_ssl_verify_depth is not enforced: Python's ssl has no knob for it.
    else:
        # nginx's default: encrypt, verify nothing.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _apply_protocols(ctx, settings.ssl_protocols)
    if settings.ssl_ciphers != "DEFAULT":
        _set_ciphers(ctx, settings.ssl_ciphers)
    if settings.ssl_certificate is not None and settings.ssl_certificate_key is not None:
        _load_chain(ctx, settings.ssl_certificate, settings.ssl_certificate_key)
    return ctx


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def upstream_server_hostname(pp: ProxyPass, settings: ProxySettings) -> str:
    """The name given to OpenSSL for an https upstream; ``""`` for none.

    nginx sends SNI only with ``proxy_ssl_server_name on`` and checks the
    certificate against ``proxy_ssl_name`` (default: the proxy_pass host, an
    ``upstream`` block's name included) whenever ``proxy_ssl_verify on``.
    Python uses one name for both: so with verification on and SNI off, a
    DNS name is still sent as SNI (an IP address never is) -- the one place
    ngxws sends SNI where nginx would not.
    """
    if not (settings.ssl_server_name or settings.ssl_verify):
        return ""
    name = settings.ssl_name if settings.ssl_name is not None else pp.host
    if "$" in name:
        return ""  # variables are not rendered here: no SNI, chain-only check
    return name.strip("[]") if _is_ip(name) else name


# Keyed by identity: the config model is immutable and lives as long as the
# worker; each entry keeps its key objects alive so an id is never reused.
_upstream_cache: dict[tuple[int, int], tuple[ProxySettings, ProxyPass, UpstreamTLS]] = {}
_context_cache: dict[tuple[int, bool], tuple[ProxySettings, ssl.SSLContext]] = {}


def upstream_tls(pp: ProxyPass, settings: ProxySettings) -> UpstreamTLS | None:
    """TLS for ``pp`` (None unless it is ``https://``); one context per settings object."""
    if pp.scheme != "https":
        return None
    key = (id(settings), id(pp))
    hit = _upstream_cache.get(key)
    if hit is not None:
        return hit[2]
    name = upstream_server_hostname(pp, settings)
    # Without a literal name the chain is still verified, the name cannot be.
    check_hostname = bool(name)
    cached = _context_cache.get((id(settings), check_hostname))
    if cached is None:
        cached = (settings, upstream_context(settings, check_hostname))
        _context_cache[(id(settings), check_hostname)] = cached
    tls = UpstreamTLS(cached[1], name)
    _upstream_cache[key] = (settings, pp, tls)
    return tls


def clear_upstream_cache() -> None:
    """Forget every cached upstream context: after a reload the old config's
    objects are garbage, and only this cache would keep them alive."""
    _upstream_cache.clear()
    _context_cache.clear()


# -- ssl_reject_handshake before OpenSSL ----------------------------------------
#
# A refusal decided in the SNI callback cannot reach the client: both asyncio's
# and uvloop's SSL protocols drop the connection on a handshake error without
# sending what OpenSSL queued (the alert).  So the listener reads the SNI name
# out of the ClientHello itself and answers nginx's alert (fatal,
# unrecognized_name) before any SSL object exists; the callback stays as the
# backstop for hellos this reader cannot parse.

UNRECOGNIZED_NAME_ALERT = b"\x15\x03\x01\x00\x02\x02\x70"

_refusers: weakref.WeakKeyDictionary[ssl.SSLContext, Callable[[str | None], bool]] = (
    weakref.WeakKeyDictionary()
)


def handshake_refuser(ctx: ssl.SSLContext) -> Callable[[str | None], bool] | None:
    """For a listener's context: does a ClientHello naming this (or no) name get
    refused?  None when no server on the socket says ``ssl_reject_handshake on``."""
    return _refusers.get(ctx)


def _refuser(vhosts: VirtualHosts) -> Callable[[str | None], bool]:
    def refuses(name: str | None) -> bool:
        server = vhosts.select(name.lower()) if name else vhosts.default
        return server.ssl_reject_handshake

    return refuses


HELLO_INCOMPLETE = "need more"  # (not a host name: it has a space)
_HELLO_LIMIT = 65536


def client_hello_server_name(data: bytes) -> str | None:
    """The SNI host name of the ClientHello at the start of ``data`` (TLS
    records), ``None`` when it names none or cannot be read, ``HELLO_INCOMPLETE``
    while the hello is incomplete."""
    body = bytearray()
    pos = 0
    while True:  # gather handshake bytes across records, bounded by _HELLO_LIMIT
        if len(data) < pos + 5:
            return HELLO_INCOMPLETE if len(data) < _HELLO_LIMIT else None
        if data[pos] != 0x16:
            return None
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if len(data) < pos + 5 + length:
            return HELLO_INCOMPLETE if len(data) < _HELLO_LIMIT else None
        body += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(body) >= 4:
            if body[0] != 1:  # not a ClientHello
                return None
            if len(body) >= 4 + int.from_bytes(body[1:4], "big"):
                break
    try:
        return _sni_of(bytes(body[4 : 4 + int.from_bytes(body[1:4], "big")]))
    except IndexError:
        return None


def _sni_of(hello: bytes) -> str | None:
    p = 2 + 32  # legacy_version, random
    p += 1 + hello[p]  # session id
    p += 2 + int.from_bytes(hello[p : p + 2], "big")  # cipher suites
    p += 1 + hello[p]  # compression methods
    if p + 2 > len(hello):
        return None  # no extensions
    end = p + 2 + int.from_bytes(hello[p : p + 2], "big")
    p += 2
    while p + 4 <= end:
        kind = int.from_bytes(hello[p : p + 2], "big")
        size = int.from_bytes(hello[p + 2 : p + 4], "big")
        if kind == 0:  # server_name: list length, then (type, length, name)
            q = p + 4 + 2
            if hello[q] != 0:
                return None
            n = int.from_bytes(hello[q + 1 : q + 3], "big")
            return hello[q + 3 : q + 3 + n].decode("latin-1")
        p += 4 + size
    return None
