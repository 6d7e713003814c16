"""Access control: ``allow``/``deny`` (ngx_http_access_module) and
``auth_basic`` with an htpasswd file (ngx_http_auth_basic_module).

Pure functions except ``check_basic_auth``, which reads the user file on
every request as nginx does (so edits take effect without a reload).

The order they run in, with auth_request, and ``satisfy``: see
``ngxws.http.access_phase``.

Password hashes, as ngx_crypt() accepts them: ``$apr1$`` (Apache's
MD5-crypt variant) and ``$1$`` (MD5-crypt) computed here; ``{PLAIN}``,
``{SHA}``, ``{SSHA}``; anything else goes to the system's crypt(3) (DES,
``$5$``, ``$6$``...) through Python's ``crypt`` module when it exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ngxws.config.model import Access

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_allowed(rules: tuple[tuple[str, str], ...], remote_addr: str) -> bool:
    """The first rule that matches the client decides; none matching allows."""
    return access_verdict(rules, remote_addr) != "deny"


def access_verdict(rules: tuple[tuple[str, str], ...], remote_addr: str) -> str | None:
    """``"allow"`` or ``"deny"`` from the first rule that matches the client;
    None when none does (nginx's NGX_DECLINED, which matters to ``satisfy any``).

    IPv4-mapped IPv6 clients are checked against IPv4 rules (as nginx does);
    ``unix:`` matches clients of a unix socket, ``all`` everyone."""
    addr: IPAddress | None
    try:
        addr = ipaddress.ip_address(remote_addr)
    except ValueError:
        addr = None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for verdict, value in rules:
        if value == "all":
            return verdict
        if value == "unix:":
            if addr is None:
                return verdict
            continue
        if addr is None:
            continue
        net = ipaddress.ip_network(value, strict=False)
        if addr.version == net.version and addr in net:
            return verdict
    return None


_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(user:password)`` -> (user, password).

    Mirrors nginx's ngx_http_auth_basic_user(): ``Basic `` (any case, one
    space, then any spaces), base64 read up to the first ``=`` (padding
    optional, ngx_decode_base64), a non-empty user before the first ``:``.
    None where nginx declines (then ``$remote_user`` is empty).
    """
    if authorization is None or authorization[:6].lower() != "basic ":
        return None
    token = authorization[6:].lstrip(" ").encode("latin-1", "replace").split(b"=", 1)[0]
    if not token or len(token) % 4 == 1 or not _BASE64.issuperset(token):
        return None
    decoded = base64.b64decode(token + b"=" * (-len(token) % 4))
    user, sep, password = decoded.partition(b":")
    if not sep or not user:
        return None
    return user.decode("latin-1"), password.decode("latin-1")


def basic_user(authorization: str | None) -> str:
    """nginx's ``$remote_user``: the Basic user name whether or not the
    location uses auth_basic (the variable parses the header itself)."""
    creds = basic_credentials(authorization)
    return "" if creds is None else creds[0]


@dataclass(frozen=True)
class AuthResult:
    """``status`` 0 = let through; else 401 (``challenge`` is the
    WWW-Authenticate value), 403 (no user file) or 500."""

    status: int
    user: str = ""
    challenge: str | None = None


def read_file(path: str) -> bytes:
    """A whole file (the password file, read per request as nginx reads it)."""
    with open(path, "rb") as f:
        return f.read()


def check_basic_auth(
    access: Access, authorization: str | None, realm: str, read: Callable[[str], bytes] = read_file
) -> AuthResult:
    """nginx's auth_basic handler: ``realm`` is the rendered realm text;
    ``read`` reads the user file (injected: the engine opens no file)."""
    if access.auth_basic is None or access.auth_basic_user_file is None:
        return AuthResult(0)
    challenge = f'Basic realm="{realm}"'
    creds = basic_credentials(authorization)
    if creds is None:
        return AuthResult(401, challenge=challenge)
    user, password = creds
    try:
        text = read(access.auth_basic_user_file).decode("latin-1")
    except FileNotFoundError:
        return AuthResult(403, user)
    except OSError:
        return AuthResult(500, user)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        if not sep or name != user:
            continue
        hashed = rest.split(":", 1)[0].rstrip("\r")
        if verify_password(password, hashed):
            return AuthResult(0, user)
        return AuthResult(401, user, challenge)
    return AuthResult(401, user, challenge)


def verify_password(password: str, hashed: str) -> bool:
    """ngx_crypt(): the hash formats nginx accepts in an htpasswd file."""
    pw = password.encode("latin-1", "replace")
    if hashed.startswith("$apr1$"):
        computed = md5_crypt(pw, hashed, b"$apr1$")
    elif hashed.startswith("$1$"):
        computed = md5_crypt(pw, hashed, b"$1$")
    elif hashed.startswith("{PLAIN}"):
        computed = "{PLAIN}" + password
    elif hashed.startswith("{SHA}"):
        computed = "{SHA}" + base64.b64encode(hashlib.sha1(pw).digest()).decode()
    elif hashed.startswith("{SSHA}"):
        try:
            raw = base64.b64decode(hashed[6:])
        except (binascii.Error, ValueError):
            return False
        salt = raw[20:]
        computed = "{SSHA}" + base64.b64encode(hashlib.sha1(pw + salt).digest() + salt).decode()
    else:
        computed = _system_crypt(password, hashed) or ""
    return bool(computed) and hmac.compare_digest(computed.encode(), hashed.encode())


def md5_crypt(password: bytes, setting: str, magic: bytes) -> str:
    """Poul-Henning Kamp's MD5-crypt (``$1$``), and Apache's ``$apr1$``
    which differs only in the magic string."""
    rest = setting[len(magic) :]
    salt = rest.split("$", 1)[0][:8].encode("latin-1", "replace")
    ctx = hashlib.md5(password + magic + salt)
    alt = hashlib.md5(password + salt + password).digest()
    n = len(password)
    while n > 0:
        ctx.update(alt[: min(16, n)])
        n -= 16
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for r in range(1000):
        c = hashlib.md5()
        c.update(password if r & 1 else final)
        if r % 3:
            c.update(salt)
        if r % 7:
            c.update(password)
        c.update(final if r & 1 else password)
        final = c.digest()
    out = []
    for a, b, d in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        out.append(_to64((final[a] << 16) | (final[b] << 8) | final[d], 4))
    out.append(_to64(final[11], 2))
    return (magic + salt).decode("latin-1") + "$" + "".join(out)


def _to64(value: int, n: int) -> str:
    chars = []
    for _ in range(n):
        chars.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(chars)


def _system_crypt(password: str, hashed: str) -> str | None:
    """crypt(3) for DES, ``$5$``, ``$6$``...: Python's ``crypt`` module
    (deprecated since 3.11, still present); None where it is gone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:  # pragma: no cover - Python >= 3.13
            return None
    try:
        result = crypt.crypt(password, hashed)
    except (OSError, ValueError):
        return None
    return result if isinstance(result, str) else None
