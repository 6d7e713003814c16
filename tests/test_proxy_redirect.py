"""``proxy_redirect`` and ``proxy_cookie_*`` (ngxws/config/redirects.py, ngxws/http/proxy_redirect.py):
the rules a real conf gives each location, read through crossplane -- the
implicit ``default``, ``off``, a level's lines replacing the inherited ones,
a nested location inheriting the outer default -- the rewrite itself as a
table, and nginx's refusals with file:line.  Answers through both servers
are tests/differential/cases_locations_out.py's."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import assert_location_refused

from ngxws.config.loader import load_config
from ngxws.config.pcre import compile_pcre
from ngxws.config.redirects import RedirectRule, default_rule
from ngxws.http.proxy_redirect import refresh_url_at, rewrite_cookie, rewrite_redirect
from ngxws.routing.locations import match_location

ROOT = Path(__file__).resolve().parents[1]

CONF = """
events {}
http {
    upstream backend { server 127.0.0.1:9; }
    server {
        listen 127.0.0.1:8080;
        proxy_redirect http://server-level/ /h/;
        location /inherits/ { proxy_pass http://backend/x/; }
    }
    server {
        listen 127.0.0.1:8081;
        proxy_redirect off;
        location /off/ { proxy_pass http://backend/x/; }
        location /own/ { proxy_pass http://backend/x/; proxy_redirect http://a/ /b/; }
    }
    server {
        listen 127.0.0.1:8082;
        location /one/ { proxy_pass http://backend/two/; }
        location /bare/ { proxy_pass http://127.0.0.1:9; }
        location /outer/ {
            proxy_pass http://backend/o/;
            location /outer/inner/ { proxy_pass http://backend/i/; }
        }
        location /static/ { }
        location /vars/ { proxy_pass http://$host/; }
    }
}
"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("conf") / "nginx.conf"
    path.write_text(CONF)
    return load_config(str(path)).servers


def _rules(servers, index: int, uri: str) -> tuple[RedirectRule, ...]:  # type: ignore[no-untyped-def]
    match = match_location(servers[index].locations, uri)
    assert match is not None
    return match.location.proxy.redirects


def test_the_rules_each_location_gets(servers) -> None:  # type: ignore[no-untyped-def]
    # a server's line is inherited: no implicit default then
    assert _rules(servers, 0, "/inherits/a") == (RedirectRule("http://server-level/", "/h/"),)
    assert _rules(servers, 1, "/off/a") == ()  # the server's off
    assert _rules(servers, 1, "/own/a") == (RedirectRule("http://a/", "/b/"),)  # a line of its own turns it on
    assert _rules(servers, 2, "/one/a") == (RedirectRule("http://backend/two/", "/one/"),)
    assert _rules(servers, 2, "/bare/a") == (RedirectRule("http://127.0.0.1:9/", "/"),)
    # nginx merges the outer location first: the inner one inherits its default
    assert _rules(servers, 2, "/outer/inner/a") == (RedirectRule("http://backend/o/", "/outer/"),)
    assert _rules(servers, 2, "/static/a") == ()
    assert _rules(servers, 2, "/vars/a") == ()  # no default with variables in proxy_pass


def _render(template: str, captures: tuple[str, ...]) -> str:
    out = template.replace("$host", "example.com")
    for i, c in enumerate(captures, 1):
        out = out.replace(f"${i}", c)
    return out


@pytest.mark.parametrize(
    ("rules", "value", "want"),
    [
        ((default_rule("http://b/two/", True, "/one/"),), "http://b/two/x?y", "/one/x?y"),
        ((default_rule("http://b", False, "/loc/"),), "http://b/x", "/x"),
        ((default_rule("http://b/two/", True, "/one/"),), "http://B/two/x", None),  # case matters
        ((default_rule("http://b/two/", True, "/one/"),), "/two/x", None),
        ((RedirectRule("http://b/", "$host/"),), "http://b/z", "example.com/z"),
        ((RedirectRule("http://none/", "/n/"), RedirectRule("x", "y", compile_pcre("^http://([^/]+)(/.*)$"))),
         "http://b/p", "y"),  # the regex's match: the whole value replaced
        ((RedirectRule("x", "https://f$2", compile_pcre("^http://([^/]+)(/.*)$")),), "http://b/p", "https://f/p"),
        ((RedirectRule("x", "/$1", compile_pcre("^HTTP://B/(.*)$", caseless=True)),), "http://b/q", "/q"),
        ((RedirectRule("x", "/$1", compile_pcre("^HTTP://B/(.*)$")),), "http://b/q", None),
        ((RedirectRule("http://b/", "/first/"), RedirectRule("http://b/", "/second/")), "http://b/q", "/first/q"),
    ],
)
def test_rewrite_table(rules: tuple[RedirectRule, ...], value: str, want: str | None) -> None:
    assert rewrite_redirect(rules, value, _render) == want


def test_refresh_rewrites_after_url() -> None:
    value = "5; URL=http://b/two/x"
    at = refresh_url_at(value)
    assert at == len("5; URL=")
    assert rewrite_redirect((default_rule("http://b/two/", True, "/one/"),), value, _render, at) == "5; URL=/one/x"
    assert refresh_url_at("5") is None


DOMAIN = (RedirectRule("backend.internal", "example.com", domain=True),)
PATH = (RedirectRule("/", "/app/"),)


@pytest.mark.parametrize(
    ("cookie", "want"),
    [
        ("sid=1; Domain=backend.internal; Path=/; HttpOnly", "sid=1; Domain=example.com; Path=/app/; HttpOnly"),
        ("sid=1;domain=.BACKEND.internal", "sid=1; domain=.example.com"),  # a leading dot kept, any case
        ("sid=1; Domain=sub.backend.internal", None),  # a domain is compared whole
        ("a = b ;Path = /x ; Secure", "a=b; Path=/app/x; Secure"),  # written back as nginx does
        ("sid=1; Path=x", None),
        ("Secure; Path=/", None),  # no name=value first: not rewritten
    ],
)
def test_cookie_table(cookie: str, want: str | None) -> None:
    assert rewrite_cookie(cookie, DOMAIN, PATH, _render) == want


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("location / { proxy_redirect default; proxy_pass http://127.0.0.1:9; }",
         '"proxy_redirect default" should be placed after the "proxy_pass" directive'),
        ("location / { proxy_pass http://$host; proxy_redirect default; }",
         '"proxy_redirect default" cannot be used with "proxy_pass" directive with variables'),
        ("location / { proxy_redirect sometimes; }", 'invalid parameter "sometimes"'),
        ("location / { proxy_redirect http://a/ /b/; proxy_redirect off; }", '"proxy_redirect" directive is duplicate'),
        ("location / { proxy_redirect off; proxy_redirect http://a/ /b/; }", '"proxy_redirect" directive is duplicate'),
        ("location / { proxy_redirect ~(unclosed /b/; }", "pcre2_compile() failed: missing closing parenthesis"),
        ("location / { proxy_cookie_path / /a/; proxy_cookie_path off; }", '"proxy_cookie_path" directive is duplicate'),
        ("location / { proxy_cookie_domain off; proxy_cookie_domain a b; }", '"proxy_cookie_domain" directive is duplicate'),
        ("location / { proxy_cookie_domain sometimes; }", 'invalid parameter "sometimes"'),
    ],
)
def test_refused_as_nginx_refuses(tmp_path: Path, block: str, message: str) -> None:
    assert_location_refused(tmp_path, block, message)
