"""Issue 13 item 1: the upstream request head prepared per settings object
(ngxws.http.prepared_head) is byte for byte the head rendered whole per
request, as build_upstream_head did before (``whole_head`` below is that
code, kept here as the reference), over a table of header lists and
requests."""

from __future__ import annotations

import itertools

import pytest

from ngxws.config.model import ProxySettings
from ngxws.http.prepared_head import DEFAULT_HEADERS, prepared
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables, build_upstream_head


def whole_head(uri: str, settings: ProxySettings, v: RequestVariables) -> bytes:
    """build_upstream_head before item 1: every line rendered per request."""
    h = v.head
    lines = [f"{h.method} {uri} HTTP/{settings.http_version}"]
    named: set[str] = set()
    merged = list(settings.set_headers)
    for name, _ in merged:
        named.add(name.lower())
    for name, value in DEFAULT_HEADERS:
        if name.lower() not in named:
            merged.append((name, value))
            named.add(name.lower())
    for name, value in merged:
        rendered = v.render(value)
        if rendered:
            lines.append(f"{name}: {rendered}")
    if settings.pass_request_headers:
        for name, value in h.headers:
            if name.lower() not in named:
                lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


HEADER_LISTS: list[tuple[tuple[str, str], ...]] = [
    ProxySettings().set_headers,
    (),
    (("Upgrade", "$http_upgrade"), ("Connection", "upgrade"), ("Host", "$host")),
    (("Upgrade", "$http_upgrade"), ("Connection", '"upgrade"'), ("X-Real-IP", "$remote_addr"),
     ("X-Forwarded-For", "$proxy_add_x_forwarded_for"), ("X-Forwarded-Proto", "$scheme"), ("Host", "$host")),
    (("Host", "$host:$server_port"), ("X-Uri", "${uri}?${args}"), ("X-Empty", ""), ("X-Const", "a b c")),
    (("host", "$http_host"), ("connection", ""), ("X-Missing", "$http_x_missing"), ("X-Id", "$request_id")),
    (("Content-Length", ""), ("Transfer-Encoding", ""), ("X-A", "1"), ("X-B", "2"), ("X-C", "$arg_c")),
    (("X-Dollar", "$"), ("X-Price", "5$"), ("X-Cap", "$1-$2"), ("X-Name", "$tail"), ("X-Pct", "caf\u00e9")),
    (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("X-Remote", "$remote_addr:$remote_port")),
]

REQUESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("GET", "/ws", [("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]),
    ("GET", "/a/b?c=1&d=2", [("Host", "Example.COM:8080"), ("X-Forwarded-For", "10.0.0.1"),
                             ("x-forwarded-for", "10.0.0.2"), ("Cookie", "a=b"), ("TE", "trailers")]),
    ("POST", "/p", [("Host", "h"), ("Content-Length", "5"), ("Expect", "100-continue"), ("Keep-Alive", "300")]),
    ("HEAD", "/", []),
    ("GET", "http://abs.example/x?y", [("Host", "ignored"), ("X-Missing", "present"), ("X-Latin", "caf\u00e9")]),
    ("GET", "/\u00e9t\u00e9", [("Host", "h"), ("Connection", "keep-alive"), ("Transfer-Encoding", "chunked")]),
]


def variables(method: str, target: str, headers: list[tuple[str, str]], body: int | None) -> RequestVariables:
    head = RequestHead(method=method, target=target, version="1.1", headers=headers, keep_alive=True)
    v = RequestVariables(
        head=head, remote_addr="127.0.0.1", remote_port=4242, server_addr="127.0.0.1", server_port=8080,
        server_name="srv", captures=("x", "y"), named={"tail": "t/a/i/l"}, proxy_host="backend:9000",
        body_length=body, random_hex=lambda: "f" * 32,
    )
    return v


@pytest.mark.parametrize(
    "set_headers,request_,http_version,pass_headers,body",
    list(itertools.product(HEADER_LISTS, REQUESTS, ("1.0", "1.1"), (True, False), (None, 0, 17))),
)
def test_the_prepared_head_is_the_head_rendered_whole(
    set_headers: tuple[tuple[str, str], ...],
    request_: tuple[str, str, list[tuple[str, str]]],
    http_version: str,
    pass_headers: bool,
    body: int | None,
) -> None:
    settings = ProxySettings(set_headers=set_headers, http_version=http_version, pass_request_headers=pass_headers)
    method, target, headers = request_
    uri = "/up" + target if target.startswith("/") else target
    expected = whole_head(uri, settings, variables(method, target, headers, body))
    assert build_upstream_head(uri, settings, variables(method, target, headers, body)) == expected
    # and again, from the prepared (cached) list
    assert build_upstream_head(uri, settings, variables(method, target, headers, body)) == expected


def test_one_preparation_per_settings_object() -> None:
    settings = ProxySettings(set_headers=HEADER_LISTS[3])
    assert prepared(settings) is prepared(settings)
    other = ProxySettings(set_headers=HEADER_LISTS[3])
    assert prepared(other) is not prepared(settings)
