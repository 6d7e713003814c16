"""ws_log templates: compile once, bind per connection, render per frame.

Theory of operation
-------------------
A ``ws_log_format`` template is literal text with ``$name`` variables
(``${name}`` also works, to glue a variable to following letters).  Work is
done at the latest moment its inputs are known, and never again:

1. **Config time** -- ``compile_template(text)`` splits the text into
   literals and ``Variable``\\ s.  Cached: every connection of every server
   shares one ``Template`` per distinct text.
2. **Tunnel open** -- ``Template.bind(conn)`` renders everything that is
   constant for the connection (``$request``, ``$remote_addr``,
   ``$http_upgrade``, ...) into the literal text, leaving a ``%``-format
   string whose only slots are the per-frame values.  The result is a
   ``BoundTemplate``.
3. **Every frame** -- ``BoundTemplate.frame_line(opcode, payload, message,
   source, now)`` is ``fmt % (slot, slot)``: a generated function with the
   slot expressions inlined, so a line costs one tuple, at most one cached
   time lookup and one ``%`` (well under a microsecond).  The generated
   code depends only on which slots appear, not on the text, so there is
   one function per slot layout per process (like ``namedtuple`` and
   ``dataclasses``, the code is built from a fixed table of expressions;
   no template text ever reaches ``exec``).

``FrameLogger`` sits on top: given a server's effective templates it decides
which lines a batch of frames produces -- one per frame (the frame
template), or one per complete data message (the chainstack fork's
``client``/``server`` templates) -- and keeps the per-direction message
size.  Everything here is sans-I/O: lines are returned as ``str`` **without
the trailing newline**; ``logfile.LogFile.append`` adds it.

Variables
---------
What each variable prints is mirrored from the module (spec: module.md,
"Log templates").  The per-connection ones (``$request``, ``$remote_addr``,
``$http_NAME`` ...) come from the request's one evaluator
(``ngxws.http.upstream_request.RequestVariables``), as the module read them
with ngx_http_get_variable(); only its presentation (``???``, the last
``$http_NAME``) is added here.  Deliberate differences, each one line:

- names follow nginx's syntax (``[A-Za-z0-9_]+``, case-insensitive,
  ``${name}``); the module used ``strstr`` and so also matched prefixes
  (``$urix`` printed ``$uri`` then ``x``); here that is the unknown ``$urix``.
- no truncation to fixed widths, no deletion of capital ``X``.
- in open/close lines the frame-only variables (``$ws_opcode``,
  ``$ws_payload_size``, ``$ws_message_size``, ``$ws_packet_source``) print
  ``???``; ``$ws_conn_age`` is real (0 at open).
- a control frame in the middle of a fragmented message does not reset
  ``$ws_message_size`` (the chainstack fork zeroes it).

ngxws's own variables (``NGXWS_VARIABLES``; ``ngxws check`` marks them):
``$ws_conn_duration`` (ms since the 101, any line), ``$ws_opcode_name``
(frame lines) and the close-line ones (``CLOSE_ONLY``, from ``CloseInfo``;
``???`` in frame and open lines).  ``escape=`` (``logescape``) applies to
every variable's value, never to the template's text.

As in the module, which substitutes only the names it knows, an unknown
variable (``$ws_`` in ``"$ws_ x"``, ``$status``) stays literal text, and so
does a ``$`` not followed by a name or an unterminated ``${``; ``ngxws
check`` warns about each unknown name.  ``???`` is printed where the module
prints it (a ``$http_NAME`` header the request did not have, no
``$upstream_addr``/``$request_id``) and for the frame-only variables in
open/close lines (above).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from ngxws.client_certs import SSL_VARIABLES
from ngxws.config.model import WsLogTemplates
from ngxws.sinks import timefmt
from ngxws.sinks.logescape import escape
from ngxws.sinks.timefmt import TimeCache
from ngxws.ws.frames import CLineFormat

if TYPE_CHECKING:
    from ngxws.http.upstream_request import RequestVariables
    from ngxws.ws._speedups import LineFormat

__all__ = [
    "CLIENT",
    "C_SLOTS",
    "KNOWN_VARIABLES",
    "UNKNOWN",
    "UPSTREAM",
    "BoundTemplate",
    "ConnInfo",
    "log_text",
    "EventLineFn",
    "FrameLineFn",
    "FrameLogger",
    "Template",
    "Variable",
    "compile_template",
    "module_reading",
]

UNKNOWN = "???"  # the module's UNKNOWN_VAR: printed for a value that cannot be known
CLIENT = "client"  # $ws_packet_source values
UPSTREAM = "upstream"

# nginx variable syntax: ``$name`` or ``${name}``.
_VARIABLE_RE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")

# Variables whose value only exists for a frame: ``???`` in open/close lines.
_FRAME_ONLY = frozenset(
    {"ws_opcode", "ws_payload_size", "ws_message_size", "ws_packet_source", "ws_opcode_name"}
)

# ngxws's close-line variables (``CloseInfo``): ``???`` in frame and open lines.
CLOSE_ONLY = frozenset(
    {
        "ws_close_code",
        "ws_close_reason",
        "ws_close_initiator",
        "ws_frames_client",
        "ws_frames_upstream",
        "ws_payload_client",
        "ws_payload_upstream",
    }
)
# Close-line variables only a per-tunnel tally (close_details.Tally) can know
# (the close frames are every tracker's own: no tally needed for those).
TALLIED = CLOSE_ONLY - {"ws_close_initiator", "ws_close_code", "ws_close_reason"}

OPCODE_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

# Per-line slots and the expression that renders each in a generated line
# function.  Names available to the expressions: the frame_line parameters,
# ``opened`` (int(opened_at)), ``http_date``/``iso8601``/``msec`` (the
# worker's ``TimeCache`` methods) and ``int``.
_SLOT_EXPR: dict[str, str] = {
    "ws_opcode": "opcode",
    "ws_payload_size": "payload",
    "ws_message_size": "message",
    "ws_packet_source": "source",
    # The module prints ngx_time() - start, both whole seconds: mirror that
    # (not int(now - opened_at)); clamp at 0 should the clock step back.
    "ws_conn_age": "(int(now) - opened if now >= opened else 0)",
    # ngxws: milliseconds since the 101, at this line
    "ws_conn_duration": "(int((now - opened_at) * 1000) if now >= opened_at else 0)",
    "ws_opcode_name": "opnames.get(opcode) or str(opcode)",
    "time_local": "http_date(now)",
    "time_iso8601": "iso8601(now)",
    "msec": "msec(now)",
}
_SLOT_FORMAT: dict[str, str] = {
    "ws_opcode": "%d",
    "ws_payload_size": "%d",
    "ws_message_size": "%d",
    "ws_packet_source": "%s",
    "ws_conn_age": "%d",
    "ws_conn_duration": "%d",
    "ws_opcode_name": "%s",
    "time_local": "%s",
    "time_iso8601": "%s",
    "msec": "%s",
}

# Per-connection constants (besides ``$http_NAME``), rendered once at bind
# from the request's evaluator.
_CONN_VARIABLES = frozenset(
    {
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
    }
)

# the module prints ``???`` for these when there is none (no peer yet)
_UNKNOWN_WHEN_EMPTY = frozenset({"upstream_addr", "request_id"})

NGXWS_VARIABLES = frozenset({"ws_conn_duration", "ws_opcode_name"}) | CLOSE_ONLY | SSL_VARIABLES
"""ngxws's additions: a config using one does not run under nginx with the
module (``ngxws check`` says so).  ``$ssl_*``: nginx's values on a TLS
connection, ``???`` on a plain one."""

KNOWN_VARIABLES = frozenset(_SLOT_EXPR) | _CONN_VARIABLES | SSL_VARIABLES | CLOSE_ONLY
"""Every variable name a template may use, ``http_*`` aside."""
_MODULE_VARIABLES = KNOWN_VARIABLES - NGXWS_VARIABLES


def module_reading(written: str) -> str | None:
    """The known variable the module printed for an unknown variable as written.

    The module finds its names with a case-sensitive ``strstr`` and skips a
    match only when a ``_`` follows, so ``$ws_opcodex`` printed
    ``$ws_opcode`` then ``x``; ngxws reads whole names and leaves
    ``$ws_opcodex`` as text.  For ``ngxws check`` to say so; None when the
    module left it as text too (``${...}`` never matched there).
    """
    if not written.startswith("$") or written.startswith("${"):
        return None
    name = written[1:]
    best = None
    for known in _MODULE_VARIABLES:
        if name.startswith(known) and name[len(known)] != "_":
            if best is None or len(known) > len(best):
                best = known
    return best


@dataclass(frozen=True)
class Variable:
    """A ``$name`` occurrence; ``name`` is lower-cased (nginx variable names
    are case-insensitive)."""

    name: str

    @property
    def known(self) -> bool:
        return self.name in KNOWN_VARIABLES or self.name.startswith("http_")


@dataclass(frozen=True)
class ConnInfo:
    """What a tunnel knows about itself when it opens; constant afterwards.

    ``variables`` is the request's evaluator, the one ``proxy_pass``,
    ``add_header``, ``return``... read (``RequestVariables``): the module
    read ``$request``, ``$uri``, ``$remote_user``, ``$remote_addr``... with
    ngx_http_get_variable(), nginx's own evaluator, so the ws log does too,
    with ``variables.upstream_addr`` the peer the tunnel reached.
    ``opened_at`` is ``time.time()`` when the tunnel opened.
    """

    variables: RequestVariables
    opened_at: float


class _ConnValues:
    """Per-connection variables for one connection, as the module prints them:
    the evaluator's value with the module's presentation on top.

    Shared by the up-to-five templates a ``FrameLogger`` binds, so the
    header table is built once per connection, and only if a template
    asks for a header.
    """

    __slots__ = ("_headers", "_v")

    def __init__(self, conn: ConnInfo) -> None:
        self._v = conn.variables
        self._headers: dict[str, str] | None = None

    def get(self, name: str) -> str:
        v = self._v
        if name.startswith("http_"):
            if self._headers is None:
                # The module's http_header_var: case-insensitive, a ``_`` in
                # the variable matches a ``-`` (or ``_``) in the header name,
                # and the list searched from the end (the last occurrence;
                # nginx's $http_NAME takes the first).
                self._headers = {k.lower().replace("-", "_"): val for k, val in v.head.headers}
            value = self._headers.get(name[5:])
            return UNKNOWN if value is None else log_text(value)
        if name == "remote_ip":
            name = "remote_addr"  # the module's c->addr_text, which realip sets too
        elif name in SSL_VARIABLES and v.tls is None:
            return UNKNOWN
        value = v.get(name)
        if not value and name in _UNKNOWN_WHEN_EMPTY:
            return UNKNOWN
        return log_text(value)


FrameLineFn = Callable[[int, int, int, str, float], str]
"""``frame_line(opcode, payload_size, message_size, source, now) -> line``."""

EventLineFn = Callable[[float], str]
"""``event_line(now) -> line``."""

# _loglines.c's slot codes, in its order (SL_*)
C_SLOTS = (
    "ws_opcode", "ws_payload_size", "ws_message_size", "ws_opcode_name", "ws_packet_source",
    "ws_conn_age", "ws_conn_duration", "time_local", "time_iso8601", "msec",
)  # fmt: skip

_FRAME_PARAMS = "opcode, payload, message, source, now"
_EVENT_PARAMS = "now"

# (params, slot layout) -> factory(fmt, opened, http_date, iso8601, msec) -> line fn
_FACTORIES: dict[tuple[str, tuple[str, ...]], Callable[..., Callable[..., str]]] = {}


def _line_function(
    params: str, slots: tuple[str, ...], fmt: str, opened_at: float, clock: TimeCache
) -> Callable[..., str]:
    """A function ``(params) -> str`` that is ``fmt % (slot values)``.

    ``fmt`` must be a ``%``-format string with one ``%d``/``%s`` per slot
    (or, when ``slots`` is empty, the finished line itself, unescaped).
    """
    key = (params, slots)
    factory = _FACTORIES.get(key)
    if factory is None:
        body = f"fmt % ({', '.join(_SLOT_EXPR[s] for s in slots)},)" if slots else "fmt"
        source = (
            "def factory(fmt, opened, opened_at, http_date, iso8601, msec):\n"
            f"    def line({params}):\n"
            f"        return {body}\n"
            "    return line\n"
        )
        namespace: dict[str, Any] = {}
        exec(source, {"__builtins__": {}, "int": int, "str": str, "opnames": OPCODE_NAMES}, namespace)
        factory = cast(Callable[..., Callable[..., str]], namespace["factory"])
        _FACTORIES[key] = factory
    return factory(fmt, int(opened_at), opened_at, clock.http_date, clock.iso8601_local, clock.msec)


class BoundTemplate:
    """A template bound to one connection: per-frame slots only.

    ``frame_line(opcode, payload, message, source, now)`` and
    ``event_line(now)`` are plain function attributes (no method binding
    on the hot path).  Both return the line without a trailing newline.
    """

    __slots__ = (
        "_clock", "_close_pieces", "_escape", "_event_slots", "_frame_pieces", "_opened_at",
        "event_line", "frame_line", "template",
    )

    frame_line: FrameLineFn
    event_line: EventLineFn

    def __init__(
        self,
        template: Template,
        values: _ConnValues,
        opened_at: float,
        clock: TimeCache,
        escape_mode: str = "",
    ):
        """``escape_mode``: ``ws_log_format``'s ``escape=`` (``logescape``),
        applied to every variable's value; "" writes them as they are."""
        self.template = template
        self._opened_at = opened_at
        self._clock = clock
        self._escape = escape_mode
        frame_fmt: list[str] = []
        frame_slots: list[str] = []
        event_fmt: list[str] = []
        event_slots: list[str] = []
        # the close line's format, with CLOSE_ONLY names still to fill in
        close_pieces: list[str | Variable] = []
        # the frame line as text and slot names, for the C renderer (c_format)
        frame_pieces: list[str | Variable] = []
        for part in template.parts:
            if isinstance(part, str):
                text = part.replace("%", "%%")
                frame_fmt.append(text)
                event_fmt.append(text)
                close_pieces.append(text)
                frame_pieces.append(part)
            elif part.name in _SLOT_EXPR:
                frame_fmt.append(_SLOT_FORMAT[part.name])
                frame_slots.append(part.name)
                frame_pieces.append(part)
                if part.name in _FRAME_ONLY:
                    event_fmt.append(UNKNOWN)
                else:
                    event_fmt.append(_SLOT_FORMAT[part.name])
                    event_slots.append(part.name)
                close_pieces.append(event_fmt[-1])
            elif part.name in CLOSE_ONLY:
                frame_fmt.append(UNKNOWN)
                event_fmt.append(UNKNOWN)
                close_pieces.append(part)
                frame_pieces.append(UNKNOWN)
            else:
                value = escape(values.get(part.name), escape_mode)
                text = value.replace("%", "%%")
                frame_fmt.append(text)
                event_fmt.append(text)
                close_pieces.append(text)
                frame_pieces.append(value)
        self.frame_line = _line_function(
            _FRAME_PARAMS, tuple(frame_slots), _finish(frame_fmt, frame_slots), opened_at, clock
        )
        self.event_line = _line_function(
            _EVENT_PARAMS, tuple(event_slots), _finish(event_fmt, event_slots), opened_at, clock
        )
        self._event_slots = tuple(event_slots)
        self._close_pieces = close_pieces if any(isinstance(p, Variable) for p in close_pieces) else None
        self._frame_pieces = tuple(frame_pieces)

    def c_format(self, source: str, every: bool) -> LineFormat:
        """``frame_line`` for one direction as the C renderer's ``LineFormat``
        (``FrameTracker.log``): literal text encoded as the log file encodes
        it, the slots as ``C_SLOTS`` codes.  ``every``: a line per frame
        (the frame template), else per data message at its FIN."""
        pieces: list[bytes | int] = []
        text = ""
        for part in self._frame_pieces:
            if isinstance(part, str):
                text += part
                continue
            if text:
                pieces.append(text.encode("utf-8", "surrogateescape"))
                text = ""
            pieces.append(C_SLOTS.index(part.name))
        if text:
            pieces.append(text.encode("utf-8", "surrogateescape"))
        assert CLineFormat is not None
        clock = self._clock
        return CLineFormat(
            tuple(pieces), source.encode("ascii"), every, self._opened_at,
            clock.http_date, clock.iso8601_local, clock.msec,
        )  # fmt: skip

    @property
    def uses_close_details(self) -> bool:
        """Whether the template needs a per-tunnel tally (close code, totals)."""
        return any(isinstance(p, Variable) and p.name in TALLIED for p in self._close_pieces or ())

    def close_line(self, now: float, info: CloseInfo | None) -> str:
        """The line at the tunnel's end: ``event_line`` plus the close variables."""
        if self._close_pieces is None:
            return self.event_line(now)
        fmt = "".join(
            p if isinstance(p, str) else escape(_close_value(info, p.name), self._escape).replace("%", "%%")
            for p in self._close_pieces
        )
        if not self._event_slots:
            fmt = fmt.replace("%%", "%")  # used as-is (see _finish)
        return _line_function(_EVENT_PARAMS, self._event_slots, fmt, self._opened_at, self._clock)(now)


@dataclass(frozen=True)
class CloseInfo:
    """What a tunnel knows at its end, for the close line's ngxws variables.

    ``initiator``: who closed first (``accounting.breakdown.CLOSERS``);
    ``close_client``/``close_upstream``: (code, reason) of the first close
    frame each side sent (``proxy.close_details.close_text``); for a close
    ngxws sends itself (4001, 1001) that code and reason.  Totals are None when no
    tally ran (the template does not use them).
    """

    initiator: str
    close_client: tuple[int, str] | None = None
    close_upstream: tuple[int, str] | None = None
    sent: tuple[int, str] | None = None  # the close frame ngxws sent the client
    frames_client: int | None = None
    frames_upstream: int | None = None
    payload_client: int | None = None
    payload_upstream: int | None = None

    def close(self) -> tuple[int, str] | None:
        """The close that ended the tunnel: the initiator's."""
        if self.initiator == "client":
            return self.close_client
        if self.initiator == "upstream":
            return self.close_upstream
        return self.sent


def _close_value(info: CloseInfo | None, name: str) -> str:
    if info is None:
        return UNKNOWN
    if name == "ws_close_initiator":
        return info.initiator
    if name in ("ws_close_code", "ws_close_reason"):
        close = info.close()
        if close is None:
            return UNKNOWN
        return str(close[0]) if name == "ws_close_code" else close[1]
    value = getattr(info, name[3:])
    return UNKNOWN if value is None else str(value)


def _finish(fmt: list[str], slots: list[str]) -> str:
    """Join a format; without slots it is used as-is, so undo the escaping."""
    text = "".join(fmt)
    return text if slots else text.replace("%%", "%")


@dataclass(frozen=True)
class Template:
    """A compiled ``ws_log_format`` template: literals and variables in order."""

    text: str
    parts: tuple[str | Variable, ...]
    unknown: tuple[str, ...] = ()  # unknown variables as written, left in ``parts`` as text

    @property
    def variables(self) -> tuple[str, ...]:
        """Variable names in order of appearance (lower-cased)."""
        return tuple(p.name for p in self.parts if isinstance(p, Variable))

    @property
    def unknown_variables(self) -> tuple[str, ...]:
        """Unknown variables as written (``$foo``, ``${foo}``): printed as literal text."""
        return self.unknown

    def bind(self, conn: ConnInfo, clock: TimeCache | None = None) -> BoundTemplate:
        """Pre-render ``conn``'s constants; see ``BoundTemplate``.

        ``clock`` is the worker's shared ``TimeCache`` (a process-wide one
        by default).
        """
        return BoundTemplate(self, _ConnValues(conn), conn.opened_at, clock or _SHARED_CLOCK)

    def render(
        self,
        conn: ConnInfo,
        now: float,
        opcode: int | None = None,
        payload: int | None = None,
        message: int | None = None,
        source: str | None = None,
    ) -> str:
        """The obvious, slow rendering: the reference ``bind`` must agree with.

        A frame value left ``None`` prints ``???`` (as in open/close lines).
        """
        frame: dict[str, int | str | None] = {
            "ws_opcode": opcode,
            "ws_payload_size": payload,
            "ws_message_size": message,
            "ws_packet_source": source,
        }
        values = _ConnValues(conn)
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name = part.name
            if name in frame:
                value = frame[name]
                out.append(UNKNOWN if value is None else str(value))
            elif name == "ws_conn_age":
                out.append(str(max(int(now) - int(conn.opened_at), 0)))
            elif name == "ws_conn_duration":
                out.append(str(max(int((now - conn.opened_at) * 1000), 0)))
            elif name == "ws_opcode_name":
                out.append(UNKNOWN if opcode is None else OPCODE_NAMES.get(opcode) or str(opcode))
            elif name in CLOSE_ONLY:
                out.append(UNKNOWN)
            elif name == "time_local":
                out.append(timefmt.http_date(now))
            elif name == "time_iso8601":
                out.append(timefmt.iso8601_local(now))
            elif name == "msec":
                out.append(timefmt.msec(now))
            else:
                out.append(values.get(name))
        return "".join(out)


_SHARED_CLOCK = TimeCache()


@lru_cache(maxsize=1024)
def compile_template(text: str) -> Template:
    """Split ``text`` into literals and variables.

    Never fails: whatever the module accepted must keep working, so text
    that is not a known variable (an unknown name, a lone ``$``, an
    unterminated ``${``) stays literal, as the module leaves it.  Cached,
    since every connection of a server compiles the same texts and
    ``Template`` is immutable.
    """
    parts: list[str | Variable] = []
    unknown: list[str] = []
    literal = ""
    pos = 0
    for m in _VARIABLE_RE.finditer(text):
        literal += text[pos : m.start()]
        pos = m.end()
        var = Variable((m.group(1) or m.group(2)).lower())
        if not var.known:
            unknown.append(m.group(0))
            literal += m.group(0)
            continue
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(var)
    literal += text[pos:]
    if literal:
        parts.append(literal)
    return Template(text, tuple(parts), tuple(unknown))


class FrameLogger:
    """Which lines a tunnel writes, given a server's effective templates.

    ``templates`` is ``WsSettings.effective_templates()`` (defaults already
    applied, all-``None`` when the server logs nothing).  The frame template
    writes one line per frame, both directions.  Without it, the chainstack
    fork's ``client`` (client -> upstream) and ``server`` (upstream ->
    client) templates write one line per complete data message, on its FIN
    fragment; control frames never produce a message line and do not break
    the fragmented message around them.  When the frame template is set it
    wins for every frame and the message templates are unused (as in the
    fork).

    ``$ws_message_size`` is the running total of the current data message's
    payloads, this frame included (so the whole message at FIN); for a
    control frame it is that frame's own payload.  ``$ws_opcode`` and
    ``$ws_payload_size`` in a message line are those of the final fragment,
    as in the fork.
    """

    __slots__ = ("_client", "_close", "_frame", "_msg_client", "_msg_upstream", "_open", "_server")

    def __init__(
        self, templates: WsLogTemplates, conn: ConnInfo, clock: TimeCache | None = None
    ) -> None:
        values = _ConnValues(conn)
        clk = clock or _SHARED_CLOCK
        escapes = dict(templates.escapes)

        def bind(text: str | None, kind: str) -> BoundTemplate | None:
            if text is None:
                return None
            return BoundTemplate(compile_template(text), values, conn.opened_at, clk, escapes.get(kind, ""))

        self._frame = bind(templates.frame, "frame")
        # The frame template wins: don't even bind the message ones.
        self._client = bind(templates.client, "client") if self._frame is None else None
        self._server = bind(templates.server, "server") if self._frame is None else None
        self._open = bind(templates.open, "open")
        self._close = bind(templates.close, "close")
        self._msg_client = 0
        self._msg_upstream = 0

    def line_format(self, source: str) -> LineFormat | None:
        """``lines_for_frames`` of one direction for ``FrameTracker.log``:
        the frame template's line for every frame, else this direction's
        message template's at a data message's FIN; None: no line either
        way (the C renderer must be there: ``CLineFormat``)."""
        if self._frame is not None:
            return self._frame.c_format(source, True)
        message_t = self._client if source == CLIENT else self._server
        return None if message_t is None else message_t.c_format(source, False)

    @property
    def wants_frames(self) -> bool:
        """Whether any frame can produce a line (else skip ``lines_for_frames``)."""
        return self._frame is not None or self._client is not None or self._server is not None

    def open_line(self, now: float) -> str | None:
        """The line for the tunnel opening, or None when no open template."""
        return None if self._open is None else self._open.event_line(now)

    @property
    def wants_close_details(self) -> bool:
        """Whether the close line needs the tunnel's own tally (``close_details``)."""
        return self._close is not None and self._close.uses_close_details

    def close_line(self, now: float, info: CloseInfo | None = None) -> str | None:
        """The line for the tunnel closing, or None when no close template."""
        return None if self._close is None else self._close.close_line(now, info)

    def lines_for_frames(
        self, frames: list[tuple[int, int, bool]], source: str, now: float
    ) -> list[str]:
        """Lines for complete frames seen in one direction, in order.

        ``frames`` are ``(opcode, payload_length, fin)`` as the frame
        tracker reports them; ``source`` is ``CLIENT`` or ``UPSTREAM``.
        """
        if source == CLIENT:
            size = self._msg_client
            message_t = self._client
        elif source == UPSTREAM:
            size = self._msg_upstream
            message_t = self._server
        else:
            raise ValueError(f"source must be {CLIENT!r} or {UPSTREAM!r}, not {source!r}")
        frame_line = None if self._frame is None else self._frame.frame_line
        message_line = None if message_t is None else message_t.frame_line
        out: list[str] = []
        for opcode, payload, fin in frames:
            if opcode >= 8:  # control frame: its own message, data message untouched
                if frame_line is not None:
                    out.append(frame_line(opcode, payload, payload, source, now))
                continue
            size = size + payload if opcode == 0 else payload
            if frame_line is not None:
                out.append(frame_line(opcode, payload, size, source, now))
            elif fin and message_line is not None:
                out.append(message_line(opcode, payload, size, source, now))
            if fin:
                size = 0
        if source == CLIENT:
            self._msg_client = size
        else:
            self._msg_upstream = size
        return out


def log_text(value: str) -> str:
    """Heads are decoded as latin-1 (bytes kept 1:1 for forwarding); log files
    are written as UTF-8 with surrogateescape, so re-decode to get the very
    bytes the client sent into the log."""
    if value.isascii():
        return value
    return value.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")
