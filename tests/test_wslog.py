"""ws_log templates and the lines a tunnel writes (spec: module.md, "Log templates")."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngxws.config.model import Fork, WsLogTemplates, WsSettings
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables
from ngxws.sinks import timefmt
from ngxws.sinks.timefmt import TimeCache
from ngxws.sinks.wslog import (
    CLIENT,
    UNKNOWN,
    UPSTREAM,
    ConnInfo,
    FrameLogger,
    Variable,
    compile_template,
    module_reading,
)

# 2026-11-25 08:44:08 UTC, the instant of the spec's examples.
T0 = 1795596248.0
NOW = T0 + 75.25  # 75 s into the tunnel, 250 ms into the second

def make_conn(
    request: str = "GET /chat?room=1 HTTP/1.1",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    request_id: str = "0123456789abcdef0123456789abcdef",
    remote_user: str = "alice",
    upstream_addr: str = "10.0.0.5:9000",
    opened_at: float = T0,
) -> ConnInfo:
    """A tunnel's ConnInfo: the request's one evaluator over this request."""
    method, target, protocol = request.split(" ")
    pairs = list((headers if headers is not None else {
        "host": "example.com", "upgrade": "websocket", "x-forwarded-for": "203.0.113.9"
    }).items() if not isinstance(headers, list) else headers)  # fmt: skip
    head = RequestHead(method, target, protocol[5:], pairs, keep_alive=True)
    v = RequestVariables(
        head=head,
        remote_addr="192.0.2.7",
        remote_port=51234,
        server_addr="198.51.100.1",
        server_port=8080,
        server_name="example.com",
        remote_user=remote_user,
        upstream_addr=upstream_addr,
        random_hex=lambda: request_id,
    )
    return ConnInfo(v, opened_at=opened_at)


CONN = make_conn()


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """$time_iso8601 is local time: pin TZ so expectations are fixed."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def frame(text: str, conn: ConnInfo = CONN) -> str:
    """``text`` rendered for a 1311-byte text frame from the client, at NOW."""
    return compile_template(text).bind(conn).frame_line(1, 1311, 1311, CLIENT, NOW)


def event(text: str, conn: ConnInfo = CONN) -> str:
    return compile_template(text).bind(conn).event_line(NOW)


# --- time formatting --------------------------------------------------------


def test_http_date_is_the_modules_time_local() -> None:
    assert timefmt.http_date(T0) == "Wed, 25 Nov 2026 08:44:08 GMT"
    assert timefmt.http_date(T0 + 0.999) == "Wed, 25 Nov 2026 08:44:08 GMT"
    assert timefmt.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_http_date_ignores_tz_and_locale() -> None:
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    assert timefmt.http_date(T0) == "Wed, 25 Nov 2026 08:44:08 GMT"


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("UTC", "2026-11-25T08:44:08+00:00"),
        ("Asia/Kolkata", "2026-11-25T14:14:08+05:30"),
        ("America/St_Johns", "2026-11-25T05:14:08-03:30"),
        ("America/New_York", "2026-11-25T03:44:08-05:00"),
    ],
)
def test_iso8601_local_has_local_offset(tz: str, expected: str) -> None:
    os.environ["TZ"] = tz
    time.tzset()
    assert timefmt.iso8601_local(T0) == expected


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (1764060248.123, "1764060248.123"),  # float is ...122.9999 ms: not 122
        (1764060248.0, "1764060248.000"),
        (1764060248.0009, "1764060248.000"),  # truncated, as nginx does
        (1764060248.9999, "1764060248.999"),
        (1764060248.05, "1764060248.050"),
    ],
)
def test_msec(t: float, expected: str) -> None:
    assert timefmt.msec(t) == expected
    assert TimeCache().msec(t) == expected


def test_time_cache_renders_once_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    real = timefmt.http_date

    def counting(t: float) -> str:
        calls.append(t)
        return real(t)

    monkeypatch.setattr(timefmt, "http_date", counting)
    cache = TimeCache()
    for i in range(100):
        assert cache.http_date(T0 + i / 100) == "Wed, 25 Nov 2026 08:44:08 GMT"
    assert cache.http_date(T0 + 1.5) == "Wed, 25 Nov 2026 08:44:09 GMT"
    assert len(calls) == 2
    assert cache.iso8601_local(T0 + 0.5) == "2026-11-25T08:44:08+00:00"
    assert cache.iso8601_local(T0 + 61) == "2026-11-25T08:45:09+00:00"


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_time_cache_agrees_with_the_pure_formatters(t: float) -> None:
    cache = TimeCache()
    for _ in range(2):  # cold, then cached
        assert cache.http_date(t) == timefmt.http_date(t)
        assert cache.iso8601_local(t) == timefmt.iso8601_local(t)
        assert cache.msec(t) == timefmt.msec(t)


# --- compiling ----------------------------------------------------------------


def test_compile_splits_literals_and_variables() -> None:
    t = compile_template("$time_local: packet received from $ws_packet_source")
    assert t.parts == (
        Variable("time_local"),
        ": packet received from ",
        Variable("ws_packet_source"),
    )
    assert t.variables == ("time_local", "ws_packet_source")


def test_braced_form_glues_a_variable_to_letters() -> None:
    assert compile_template("${uri}x").parts == (Variable("uri"), "x")
    assert frame("${uri}x|${ws_opcode}") == "/chatx|1"


def test_names_follow_nginx_syntax_not_prefix_matching() -> None:
    # The module's strstr() printed $uri then "x"; nginx reads the name $urix,
    # unknown here, so it stays text.
    assert compile_template("$urix").parts == ("$urix",)
    assert frame("$urix") == "$urix"
    assert frame("$uri-x $uri.x $uri/x") == "/chat-x /chat.x /chat/x"


def test_variable_names_are_case_insensitive() -> None:
    assert frame("$URI $Remote_Addr ${WS_OPCODE}") == "/chat 192.0.2.7 1"


@pytest.mark.parametrize("text", ["cost: $", "$ 5", "${uri", "${}", "$$", "a$-b", "${ uri}"])
def test_dollar_without_a_name_stays_literal(text: str) -> None:
    assert compile_template(text).variables == ()
    assert frame(text) == text
    assert event(text) == text


def test_compile_is_cached() -> None:
    assert compile_template("$uri") is compile_template("$uri")


# --- every variable -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ws_opcode", "1"),
        ("ws_payload_size", "1311"),
        ("ws_message_size", "1311"),
        ("ws_packet_source", "client"),
        ("ws_conn_age", "75"),
        ("time_local", "Wed, 25 Nov 2026 08:45:23 GMT"),
        ("time_iso8601", "2026-11-25T08:45:23+00:00"),
        ("msec", "1795596323.250"),
        ("request", "GET /chat?room=1 HTTP/1.1"),
        ("uri", "/chat"),
        ("request_id", "0123456789abcdef0123456789abcdef"),
        ("remote_user", "alice"),
        ("remote_addr", "192.0.2.7"),
        ("remote_port", "51234"),
        ("server_addr", "198.51.100.1"),
        ("server_port", "8080"),
        ("upstream_addr", "10.0.0.5:9000"),
        ("remote_ip", "192.0.2.7"),
        ("http_upgrade", "websocket"),
        ("http_x_forwarded_for", "203.0.113.9"),
    ],
)
def test_every_variable(name: str, value: str) -> None:
    assert frame(f"[${name}]") == f"[{value}]"
    assert frame(f"[${{{name}}}]") == f"[{value}]"


def test_frame_values_per_call() -> None:
    bound = compile_template("$ws_opcode $ws_payload_size $ws_message_size $ws_packet_source").bind(
        CONN
    )
    assert bound.frame_line(2, 10, 30, UPSTREAM, NOW) == "2 10 30 upstream"
    assert bound.frame_line(9, 0, 0, CLIENT, NOW) == "9 0 0 client"
    assert bound.frame_line(0, 2**40, 2**41, CLIENT, NOW) == f"0 {2**40} {2**41} client"


def test_conn_age_is_whole_seconds_like_ngx_time() -> None:
    conn = make_conn(opened_at=T0 + 0.9)
    bound = compile_template("$ws_conn_age").bind(conn)
    assert bound.frame_line(1, 0, 0, CLIENT, T0 + 0.95) == "0"
    assert bound.frame_line(1, 0, 0, CLIENT, T0 + 1.1) == "1"  # ngx_time() - start
    assert bound.frame_line(1, 0, 0, CLIENT, T0 + 43200.5) == "43200"
    assert bound.frame_line(1, 0, 0, CLIENT, T0 - 5) == "0"  # clock stepped back


def test_time_variables_follow_now() -> None:
    bound = compile_template("$time_local|$msec").bind(CONN)
    assert bound.frame_line(1, 0, 0, CLIENT, T0) == "Wed, 25 Nov 2026 08:44:08 GMT|1795596248.000"
    assert bound.frame_line(1, 0, 0, CLIENT, T0 + 1.5) == (
        "Wed, 25 Nov 2026 08:44:09 GMT|1795596249.500"
    )


def test_http_header_matching() -> None:
    conn = make_conn(
        headers={
            "x-request-start": "t=1",
            "user_agent": "u",
            "Sec-WebSocket-Key": "k",
            "x-empty": "",
        },
    )
    assert frame("$http_x_request_start", conn) == "t=1"  # _ matches -
    assert frame("$http_X_Request_Start", conn) == "t=1"  # case-insensitive
    assert frame("$http_user_agent", conn) == "u"  # _ matches _ too
    assert frame("$http_sec_websocket_key", conn) == "k"  # header name case ignored
    assert frame("$http_x_empty", conn) == ""  # present but empty
    assert frame("$http_x_missing", conn) == UNKNOWN
    assert frame("$http_x_request", conn) == UNKNOWN  # whole names only
    assert event("$http_x_request_start", conn) == "t=1"


def test_values_that_cannot_be_known_print_unknown() -> None:
    conn = make_conn(upstream_addr="", request_id="")
    assert frame("$upstream_addr|$request_id", conn) == "???|???"


def test_remote_user_is_empty_when_none() -> None:
    conn = make_conn(remote_user="")
    assert frame("[$remote_user]", conn) == "[]"


def test_unknown_variable_stays_literal() -> None:
    """The module substitutes only the names it knows; the rest is text."""
    t = compile_template("$foo $host $uri ${status}%d")
    assert t.unknown_variables == ("$foo", "$host", "${status}")
    assert t.parts == ("$foo $host ", Variable("uri"), " ${status}%d")
    assert frame("$foo $host $uri ${status}%d") == "$foo $host /chat ${status}%d"
    assert frame("$ws_ x") == "$ws_ x"
    assert event("$ws_ $FOO") == "$ws_ $FOO"
    assert compile_template("$ws_ x").parts == ("$ws_ x",)


@pytest.mark.parametrize(
    ("written", "module"),
    [
        ("$ws_opcodex", "ws_opcode"),
        ("$request_idx", "request_id"),  # $request is followed by "_": skipped
        ("$remote_address", "remote_addr"),
        ("$uri_x", None),  # a "_" after the name: the module skipped it
        ("${urix}", None),  # "${" never matched a "$name" there
        ("$URIx", None),  # strstr is case-sensitive
        ("$status", None),
        ("$ws_", None),
    ],
)
def test_module_reading_of_unknown_names(written: str, module: str | None) -> None:
    assert module_reading(written) == module


def test_repeated_header_prints_the_last() -> None:
    """The module's http_header_var searches the header list from the end."""
    pairs = [("X-A", "first"), ("X_A", "second"), ("Other", "o"), ("x-a", "last")]
    conn = make_conn(headers=pairs)
    assert frame("$http_x_a|$http_other", conn) == "last|o"
    conn = make_conn(headers={"x-a": "first", "X_A": "last"})
    assert frame("$http_x_a", conn) == "last"


def test_event_line_has_no_frame_values_but_has_age() -> None:
    text = "$ws_opcode $ws_payload_size $ws_message_size $ws_packet_source $ws_conn_age $uri"
    assert event(text) == "??? ??? ??? ??? 75 /chat"
    assert compile_template("$ws_conn_age").bind(CONN).event_line(T0) == "0"


def test_no_truncation_and_capital_x_kept() -> None:
    uri = "/X" * 200
    conn = make_conn(request=f"GET {uri} HTTP/1.1")
    assert frame("XXX $uri $request X", conn) == f"XXX {uri} GET {uri} HTTP/1.1 X"


def test_percent_signs_are_literal_everywhere() -> None:
    conn = make_conn(request="GET /100%25?a=%d%s HTTP/1.1", headers={"x-p": "%(x)s %%"})
    assert frame("100% $request $http_x_p %d %s $ws_opcode %%", conn) == (
        "100% GET /100%25?a=%d%s HTTP/1.1 %(x)s %% %d %s 1 %%"
    )
    assert frame("100%% static %s", conn) == "100%% static %s"
    assert event("100% $request %% $ws_conn_age", conn) == "100% GET /100%25?a=%d%s HTTP/1.1 %% 75"


def test_bound_template_uses_the_given_clock() -> None:
    clock = TimeCache()
    compile_template("$time_local").bind(CONN, clock).frame_line(1, 0, 0, CLIENT, T0)
    assert clock.http_date(T0 + 0.5) == "Wed, 25 Nov 2026 08:44:08 GMT"


_names = st.sampled_from(
    [
        "ws_opcode",
        "ws_payload_size",
        "ws_message_size",
        "ws_packet_source",
        "ws_conn_age",
        "time_local",
        "time_iso8601",
        "msec",
        "request",
        "uri",
        "request_id",
        "remote_user",
        "remote_addr",
        "remote_port",
        "server_addr",
        "server_port",
        "upstream_addr",
        "remote_ip",
        "http_upgrade",
        "http_host",
        "http_nope",
        "bogus",
    ]
)
_pieces = st.one_of(
    st.text(alphabet="abX %{}$-_:.| ", max_size=6),
    _names.map(lambda n: f"${{{n}}}"),
    _names.map(lambda n: f"${n} "),
)


@given(
    st.lists(_pieces, max_size=12).map("".join),
    st.integers(0, 15),
    st.integers(0, 2**63),
    st.integers(0, 2**63),
    st.sampled_from([CLIENT, UPSTREAM]),
    st.floats(min_value=T0, max_value=T0 + 1e6),
)
def test_bound_lines_match_the_reference_renderer(
    text: str, op: int, payload: int, message: int, source: str, now: float
) -> None:
    t = compile_template(text)
    bound = t.bind(CONN)
    assert bound.frame_line(op, payload, message, source, now) == t.render(
        CONN, now, op, payload, message, source
    )
    assert bound.event_line(now) == t.render(CONN, now)


# --- which lines a tunnel writes ----------------------------------------------


def test_v1_defaults_when_ws_log_is_set() -> None:
    templates = WsSettings(log_path="/var/log/ws.log").effective_templates()
    fl = FrameLogger(templates, CONN)
    assert fl.wants_frames
    assert fl.open_line(T0) == "websocket connection opened"
    assert fl.lines_for_frames([(1, 5, True), (9, 0, True)], CLIENT, T0) == [
        "Wed, 25 Nov 2026 08:44:08 GMT: packet received from client",
        "Wed, 25 Nov 2026 08:44:08 GMT: packet received from client",
    ]
    assert fl.lines_for_frames([(1, 5, True)], UPSTREAM, T0) == [
        "Wed, 25 Nov 2026 08:44:08 GMT: packet received from upstream"
    ]
    assert fl.close_line(NOW) == "websocket connection closed"


def test_v1_logs_nothing_without_ws_log() -> None:
    fl = FrameLogger(WsSettings().effective_templates(), CONN)
    assert not fl.wants_frames
    assert fl.open_line(T0) is None and fl.close_line(T0) is None
    assert fl.lines_for_frames([(1, 5, True)], CLIENT, T0) == []


def test_v1_custom_frame_template_keeps_default_open_close() -> None:
    settings = WsSettings(
        log_path="/x.log",
        templates=WsLogTemplates(
            frame="$time_local: packet of type $ws_opcode received from $ws_packet_source, "
            "packet size is $ws_payload_size"
        ),
    )
    fl = FrameLogger(settings.effective_templates(), CONN)
    assert fl.lines_for_frames([(2, 4096, True)], UPSTREAM, T0) == [
        "Wed, 25 Nov 2026 08:44:08 GMT: packet of type 2 received from upstream, "
        "packet size is 4096"
    ]
    assert fl.open_line(T0) == "websocket connection opened"


CHAINSTACK = WsSettings(
    fork=Fork.CHAINSTACK,
    log_enabled=True,
    log_path="/ws.log",
    templates=WsLogTemplates(
        open="OPEN",
        client="CLIENT->SERVER: $ws_message_size ($http_upgrade)",
        server="SERVER->CLIENT: $ws_message_size ($http_upgrade)",
        close="CLOSE",
    ),
)


def test_chainstack_golden_output() -> None:
    """The fork's own end-to-end test: one 1311-byte text message echoed."""
    fl = FrameLogger(CHAINSTACK.effective_templates(), CONN)
    lines = [fl.open_line(T0)]
    lines += fl.lines_for_frames([(1, 1311, True)], CLIENT, T0 + 1)
    lines += fl.lines_for_frames([(1, 1311, True)], UPSTREAM, T0 + 1)
    lines.append(fl.close_line(T0 + 2))
    assert lines == [
        "OPEN",
        "CLIENT->SERVER: 1311 (websocket)",
        "SERVER->CLIENT: 1311 (websocket)",
        "CLOSE",
    ]


def test_chainstack_fragmented_message_with_ping_between() -> None:
    fl = FrameLogger(CHAINSTACK.effective_templates(), CONN)
    assert fl.wants_frames
    # text 100 + ping + cont 50 | cont 25 FIN, split over two reads
    assert fl.lines_for_frames([(1, 100, False), (9, 4, True), (0, 50, False)], CLIENT, T0) == []
    # the upstream's pong and its own message do not mix with the client's
    assert fl.lines_for_frames([(10, 4, True), (2, 7, True)], UPSTREAM, T0) == [
        "SERVER->CLIENT: 7 (websocket)"
    ]
    assert fl.lines_for_frames([(0, 25, True)], CLIENT, T0) == ["CLIENT->SERVER: 175 (websocket)"]
    # the next message starts from zero; a close frame is never a message line
    assert fl.lines_for_frames([(1, 3, True), (8, 2, True)], CLIENT, T0) == [
        "CLIENT->SERVER: 3 (websocket)"
    ]


def test_chainstack_message_line_carries_the_final_fragment() -> None:
    templates = WsLogTemplates(
        client="$ws_opcode $ws_payload_size $ws_message_size $ws_packet_source"
    )
    fl = FrameLogger(templates, CONN)
    assert fl.lines_for_frames([(2, 10, False), (0, 5, True)], CLIENT, T0) == ["0 5 15 client"]
    assert fl.lines_for_frames([(2, 10, True)], UPSTREAM, T0) == []  # no server template


def test_chainstack_disabled_logs_nothing() -> None:
    off = WsSettings(fork=Fork.CHAINSTACK, log_enabled=False, templates=CHAINSTACK.templates)
    fl = FrameLogger(off.effective_templates(), CONN)
    assert not fl.wants_frames and fl.open_line(T0) is None


def test_chainstack_has_no_default_templates() -> None:
    on = WsSettings(fork=Fork.CHAINSTACK, log_enabled=True)
    fl = FrameLogger(on.effective_templates(), CONN)
    assert not fl.wants_frames and fl.open_line(T0) is None and fl.close_line(T0) is None


def test_frame_template_wins_over_message_templates() -> None:
    templates = WsLogTemplates(
        frame="F $ws_opcode $ws_payload_size $ws_message_size $ws_packet_source",
        client="never",
        server="never",
    )
    fl = FrameLogger(templates, CONN)
    assert fl.lines_for_frames(
        [(1, 100, False), (9, 4, True), (0, 50, False), (0, 25, True)], CLIENT, T0
    ) == [
        "F 1 100 100 client",
        "F 9 4 4 client",  # a control frame is its own message
        "F 0 50 150 client",
        "F 0 25 175 client",
    ]


def test_source_must_be_client_or_upstream() -> None:
    fl = FrameLogger(WsSettings(log_path="/x").effective_templates(), CONN)
    with pytest.raises(ValueError):
        fl.lines_for_frames([(1, 1, True)], "server", T0)


def test_values_come_from_the_request_evaluator() -> None:
    """One evaluator: the ws log prints what ``RequestVariables.get`` gives
    (the module read these through ngx_http_get_variable())."""
    conn = make_conn(request="GET /a/../b%20c?x=1 HTTP/1.1")
    v = conn.variables
    names = ("request", "uri", "remote_addr", "remote_port", "server_addr", "server_port",
             "remote_user", "request_id", "upstream_addr")  # fmt: skip
    for name in names:
        assert frame(f"${name}", conn) == v.get(name)
    assert frame("$uri|$request", conn) == "/b c|GET /a/../b%20c?x=1 HTTP/1.1"
    # names the module did not know stay text, though the evaluator knows them
    assert frame("$server_name $host $status $args", conn) == "$server_name $host $status $args"
