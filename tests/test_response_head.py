"""One response-head builder (ngxws.http.responses.response_head): the
layout every head ngxws writes shares, as nginx's header filter writes it."""

from __future__ import annotations

from ngxws.http.responses import CONTINUE, SERVER, build_response, response_head
from ngxws.proxy.handshake import refusal
from ngxws.sinks.timefmt import http_date

NOW = 1_700_000_000.0


def test_status_server_date_slots_connection_then_the_list() -> None:
    """ngx_http_header_filter(): its own slots (Content-Type, Content-Length,
    Last-Modified ...), Connection, then the headers list (add_header's,
    ETag ...) in order."""
    head = response_head(
        "HTTP/1.1 200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "2"), ("Last-Modified", "x"), ("ETag", '"e"'),
         ("X-A", "1")],
        connection="close", now=NOW,
    )  # fmt: skip
    assert head == (
        f"HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: {http_date(NOW)}\r\n"
        'Content-Type: text/plain\r\nContent-Length: 2\r\nLast-Modified: x\r\nConnection: close\r\n'
        'ETag: "e"\r\nX-A: 1\r\n\r\n'
    ).encode()


def test_fixed_says_how_many_lead() -> None:
    """A proxied Last-Modified stays in the list (fixed given), a completed Location leads."""
    head = response_head("HTTP/1.1 302 Found", [("Location", "http://h/x"), ("Last-Modified", "x")],
                         connection="close", now=NOW, fixed=1)  # fmt: skip
    assert head.endswith(b"Location: http://h/x\r\nConnection: close\r\nLast-Modified: x\r\n\r\n")


def test_no_connection_line_when_the_caller_places_it() -> None:
    head = response_head("HTTP/1.1 101 Switching Protocols", [("Connection", "upgrade"), ("Upgrade", "x")], now=NOW)
    assert head.endswith(b"Connection: upgrade\r\nUpgrade: x\r\n\r\n")
    assert head.count(b"Connection:") == 1


def test_build_response_goes_through_it() -> None:
    whole = build_response(200, b"hi", content_type="text/plain", keep_alive=False, now=NOW)
    assert whole == response_head(
        "HTTP/1.1 200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")], connection="close", now=NOW
    ) + b"hi"


def test_continue_is_the_status_line_alone() -> None:
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_refusal_head_order() -> None:
    out = refusal("dGhlIHNhbXBsZSBub25jZQ==")
    head, _, frame = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
    assert [line.split(b":")[0] for line in lines[1:]] == [
        b"Server", b"Date", b"Upgrade", b"Connection", b"Sec-WebSocket-Accept",
    ]
    assert lines[-1] == b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert frame[:2] == b"\x88\x11"  # close 1013 "Try Again Later"
