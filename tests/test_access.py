"""allow/deny, auth_basic and htpasswd hashes (issue 4 item 7), plus the
ws_log's $remote_user and $upstream_addr fed by them."""

from __future__ import annotations

import base64
import hashlib
import socket
import warnings
from pathlib import Path

import pytest
from harness import free_port, ngxws, read_head, upgrade_request, wait_for, ws_backend

from ngxws.access import (
    basic_credentials,
    check_basic_auth,
    client_allowed,
    md5_crypt,
    verify_password,
)
from ngxws.config.model import Access

# Vectors made with `openssl passwd -apr1 / -1 / -5 -salt abcdefgh secret`.
HASHES = {
    "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/": "secret",
    "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1": "secret",
    "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.": "secret",
    "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=": "secret",
    "{SSHA}gVK8WC9YyFT1gMsQHTGCgT3sSv5zYWx0": "secret",
    "{PLAIN}secret": "secret",
    "abNANd1rDfiNc": "secret",  # traditional DES crypt(3)
}


@pytest.mark.parametrize("hashed", sorted(HASHES))
def test_hash_formats_nginx_accepts(hashed: str) -> None:
    assert verify_password(HASHES[hashed], hashed)
    assert not verify_password("wrong", hashed)


def test_md5_crypt_matches_the_system_crypt() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    for salt in ("a", "abcdefgh", "saltsaltsalt"):
        for pw in ("", "x", "a much longer password than sixteen bytes"):
            want = crypt.crypt(pw, f"$1${salt}$")
            assert md5_crypt(pw.encode(), f"$1${salt}$", b"$1$") == want


def test_ssha_with_any_salt_length() -> None:
    salt = b"0123456789"
    token = base64.b64encode(hashlib.sha1(b"pw" + salt).digest() + salt).decode()
    assert verify_password("pw", "{SSHA}" + token)


@pytest.mark.parametrize(
    ("rules", "addr", "allowed"),
    [
        ((), "10.0.0.1", True),
        ((("deny", "all"),), "10.0.0.1", False),
        ((("allow", "10.0.0.0/8"), ("deny", "all")), "10.2.3.4", True),
        ((("allow", "10.0.0.0/8"), ("deny", "all")), "11.2.3.4", False),
        ((("deny", "10.0.0.1"), ("allow", "10.0.0.0/8")), "10.0.0.1", False),
        ((("allow", "::1"), ("deny", "all")), "::1", True),
        ((("allow", "::1"), ("deny", "all")), "127.0.0.1", False),
        ((("allow", "127.0.0.1"), ("deny", "all")), "::ffff:127.0.0.1", True),
        ((("allow", "unix:"), ("deny", "all")), "unix:", True),
        ((("deny", "192.168.1.0/24"),), "192.168.2.1", True),
    ],
)
def test_allow_deny_first_match_wins(rules: tuple[tuple[str, str], ...], addr: str, allowed: bool) -> None:
    assert client_allowed(rules, addr) is allowed


def test_basic_credentials() -> None:
    assert basic_credentials("Basic " + base64.b64encode(b"u:p:q").decode()) == ("u", "p:q")
    assert basic_credentials("basic " + base64.b64encode(b"u:").decode()) == ("u", "")
    assert basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials(None) is None


def test_check_basic_auth(tmp_path: Path) -> None:
    users = tmp_path / "htpasswd"
    users.write_text("# comment\nbob:{PLAIN}pw:comment field\nann:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n")
    access = Access(auth_basic="r", auth_basic_user_file=str(users))

    def auth(user: str, pw: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    assert check_basic_auth(access, auth("bob", "pw"), "r").status == 0
    assert check_basic_auth(access, auth("ann", "secret"), "r").user == "ann"
    denied = check_basic_auth(access, auth("ann", "nope"), "Realm")
    assert (denied.status, denied.challenge) == (401, 'Basic realm="Realm"')
    assert check_basic_auth(access, None, "r").status == 401
    assert check_basic_auth(access, auth("eve", "pw"), "r").status == 401
    missing = Access(auth_basic="r", auth_basic_user_file=str(tmp_path / "nope"))
    assert check_basic_auth(missing, auth("bob", "pw"), "r").status == 403  # as nginx on ENOENT
    assert check_basic_auth(Access(), None, "r").status == 0


def test_ws_log_gets_remote_user_and_upstream_addr(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("carol:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n")
    port = free_port()
    with ws_backend() as backend:
        conf = f"""
events {{ }}
http {{
    upstream pool {{ server 127.0.0.1:{free_port()}; server 127.0.0.1:{backend}; }}
    server {{
        listen 127.0.0.1:{port};
        ws_log {tmp_path}/ws.log;
        ws_log_format open "OPEN user=$remote_user upstream=$upstream_addr";
        ws_log_format close "CLOSE";
        location / {{
            auth_basic "ws";
            auth_basic_user_file users;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://pool;
        }}
    }}
}}
"""
        with ngxws(conf, tmp_path, port):
            token = base64.b64encode(b"carol:secret").decode()
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(upgrade_request("/").replace(b"\r\n\r\n", f"\r\nAuthorization: Basic {token}\r\n\r\n".encode()))
                head, _ = read_head(s)
                assert head.startswith(b"HTTP/1.1 101"), head
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(upgrade_request("/"))
                head, _ = read_head(s)
                assert head.startswith(b"HTTP/1.1 401"), head
                assert b'WWW-Authenticate: Basic realm="ws"' in head
            log = tmp_path / "ws.log"
            assert wait_for(lambda: log.exists() and "CLOSE" in log.read_text())
    # the first peer refuses; the one that answered is named
    assert log.read_text().splitlines()[0] == f"OPEN user=carol upstream=127.0.0.1:{backend}"
