"""Responses ngxws writes itself, shaped like nginx's.

nginx's built-in error pages are small HTML documents with a fixed layout;
clients and monitoring sometimes match on them, so ngxws keeps the layout
(with its own name where nginx prints its version).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from http import HTTPStatus

from ngxws import __version__
from ngxws.config.gzip import GzipConf
from ngxws.http.gzip_filter import compressed_headers, gzip_body
from ngxws.sinks.timefmt import http_date, http_date_now

SERVER = f"ngxws/{__version__}"

# nginx's own reason phrases where they differ from Python's table.
_REASONS = {
    302: "Moved Temporarily",
    405: "Not Allowed",
    408: "Request Time-out",
    504: "Gateway Time-out",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    494: "Request Header Or Cookie Too Large",
    495: "SSL Certificate Error",
    496: "SSL Certificate Required",
    497: "HTTP Request Sent to HTTPS Port",
    499: "Client Closed Request",
    503: "Service Temporarily Unavailable",  # limit_req/limit_conn's default answer
    418: "I'm a teapot",
}


# Statuses nginx has a built-in page for (ngx_http_error_pages); any other
# error status is sent with an empty body and no Content-Type.
_PAGED = frozenset(
    {301, 302, 303, 307, 308}
    | set(range(400, 407))
    | set(range(408, 417))
    | {421, 429, 494, 495, 496, 497, 500, 501, 502, 503, 504, 505, 507}
)


def has_page(status: int) -> bool:
    return status in _PAGED


def reason(status: int) -> str:
    if status in _REASONS:
        return _REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# An interim answer (ngx_http_send_continue / the 100-continue handler):
# nginx writes the status line alone, no Server, Date or other header.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def response_head(
    first_line: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    connection: str | None = None,
    now: float | None = None,
    fixed: int | None = None,
    own: bool = True,
    vary: bool = False,
) -> bytes:
    """Every response head ngxws writes, in ngx_http_header_filter()'s
    order: the status line, ``Server``, ``Date``, the headers it writes
    from its own slots (Content-Type, Content-Length, Last-Modified, a
    Location it completed, Transfer-Encoding), ``Connection:
    <connection>`` when given, ``Vary: Accept-Encoding`` when ``vary``
    (r->gzip_vary under ``gzip_vary on``), then the rest of ``headers`` (its list:
    add_header's, an upstream's, ETag ...) in the order given.  ``fixed``:
    how many leading ``headers`` are slot headers; None: the leading run
    named Content-Type, Content-Length, Last-Modified or Transfer-Encoding.
    A head with its Connection header elsewhere (the 101s) passes it in
    ``headers`` and ``connection=None``.  ``own`` False: an upstream's
    Server or Date is among ``headers`` (proxy_pass_header): nginx writes
    that one, where it stands, instead of its own."""
    listed = list(headers)
    if fixed is None:
        fixed = 0
        while fixed < len(listed) and listed[fixed][0].lower() in _SLOTS:
            fixed += 1
    lines = [first_line]
    names: Container[str] = () if own else {name.lower() for name, _ in listed}
    if "server" not in names:
        lines.append(f"Server: {SERVER}")
    if "date" not in names:
        lines.append(f"Date: {http_date_now() if now is None else http_date(now)}")
    # plain loops, no generators: a third less time per head (every answer pays it)
    for name, value in listed[:fixed]:
        lines.append(f"{name}: {value}")
    if connection is not None:
        lines.append(f"Connection: {connection}")
    if vary:
        lines.append("Vary: Accept-Encoding")
    for name, value in listed[fixed:]:
        lines.append(f"{name}: {value}")
    lines.append("\r\n")  # the join's last CRLF and this one end the head
    return "\r\n".join(lines).encode("latin-1")


# the headers ngx_http_header_filter() writes from r->headers_out's own
# fields, before Connection (a completed Location too: the caller says so)
_SLOTS = frozenset({"content-type", "content-length", "last-modified", "transfer-encoding"})


def status_line(status: int) -> str:
    r = reason(status)
    return f"HTTP/1.1 {status} {r}" if r else f"HTTP/1.1 {status}"


# nginx's 400s with a page of their own (ngx_http_error_495_page, _496_page):
# the status line says 400, the title names the cause.
_AS_400 = {
    495: "The SSL certificate error",
    496: "No required SSL certificate was sent",
}


def error_body(status: int) -> bytes:
    """The HTML nginx sends for an error status (ngx_http_special_response)."""
    cause = _AS_400.get(status)
    if cause is not None:
        return (
            f"<html>\r\n<head><title>400 {cause}</title></head>\r\n<body>\r\n"
            f"<center><h1>400 Bad Request</h1></center>\r\n<center>{cause}</center>\r\n"
            f"<hr><center>ngxws</center>\r\n</body>\r\n</html>\r\n"
        ).encode()
    title = f"{status} {reason(status)}".rstrip()
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n"
        f"<hr><center>ngxws</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def build_response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str | None = "text/html",
    keep_alive: bool = True,
    extra_headers: list[tuple[str, str]] | None = None,
    head_only: bool = False,
    now: float | None = None,
    length: int | None = None,
    fixed: int | None = None,
    vary: bool = False,
    gzip: GzipConf | None = None,
    chunked: bool = False,
) -> bytes:
    """A complete response with Content-Length framing (``length``: the
    length declared when the body goes out apart, -1 for no Content-Length;
    ``fixed``: how many of ``extra_headers`` go before Connection, see
    ``response_head``).  ``gzip``: the body compressed (see
    ``ngxws.http.gzip_filter``), ``chunked`` framed so (else it ends with
    the connection, the caller closes); ``vary``: gzip_vary's line."""
    headers: list[tuple[str, str]] = []
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if length is None:
        headers.append(("Content-Length", str(len(body))))
    elif length >= 0:
        headers.append(("Content-Length", str(length)))
    own = len(headers)
    headers.extend(extra_headers or ())
    slots = None if fixed is None else own + fixed
    if gzip is not None:
        body, headers, slots = _gzipped(gzip, body, headers, slots, chunked and not head_only)
    head = response_head(
        status_line(status), headers, connection="keep-alive" if keep_alive else "close", now=now,
        fixed=slots, vary=vary,
    )  # fmt: skip
    return head if head_only else head + body


def _gzipped(
    conf: GzipConf, body: bytes, headers: list[tuple[str, str]], slots: int | None, chunked: bool
) -> tuple[bytes, list[tuple[str, str]], int]:
    """The compressed body and its head: Content-Length cleared (and
    Transfer-Encoding in its slot when ``chunked``), see ``compressed_headers``."""
    if slots is None:
        slots = 0
        while slots < len(headers) and headers[slots][0].lower() in _SLOTS:
            slots += 1
    slots -= sum(1 for name, _ in headers[:slots] if name.lower() == "content-length")
    out = compressed_headers(headers)
    data = gzip_body(conf, body)
    if chunked:
        out.insert(slots, ("Transfer-Encoding", "chunked"))
        slots += 1
        data = b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data)
    return data, out, slots


def error_response(
    status: int,
    *,
    keep_alive: bool = False,
    extra_headers: list[tuple[str, str]] | None = None,
    head_only: bool = False,
    charset: str | None = None,
    fixed: int | None = None,
    vary: bool = False,
    gzip: GzipConf | None = None,
    chunked: bool = False,
) -> bytes:
    """nginx's answer for an error status, body included (``charset``: the
    label the charset filter adds to its text/html; ``vary``, ``gzip``,
    ``chunked``: see ``build_response``)."""
    paged = status in _PAGED
    return build_response(
        400 if status in _AS_400 else status,
        error_body(status) if paged else b"",
        content_type=error_type(status, charset),
        keep_alive=keep_alive,
        extra_headers=extra_headers,
        head_only=head_only,
        fixed=fixed,
        vary=vary,
        gzip=gzip,
        chunked=chunked,
    )


def error_type(status: int, charset: str | None = None) -> str | None:
    """The Content-Type of nginx's page for ``status`` (None: no page)."""
    if status not in _PAGED:
        return None
    return f"text/html; charset={charset}" if charset else "text/html"


def redirect_response(
    status: int,
    location: str,
    *,
    keep_alive: bool = True,
    extra_headers: list[tuple[str, str]] | None = None,
    charset: str | None = None,
    completed: bool = False,
    at: int = 0,
) -> bytes:
    """301/302 with ``Location``, as nginx's auto-redirect and ``return 301
    URL``.  ``completed``: the Location was a path the header filter made
    absolute -- written in its own slot, before Connection; else it is a
    line of the list, ``at`` that index of ``extra_headers`` (after the
    lines that were there when it was pushed, before the headers filter's)."""
    extra = list(extra_headers or ())
    if completed:
        headers, fixed = [("Location", location), *extra], 1
    else:
        headers, fixed = [*extra[:at], ("Location", location), *extra[at:]], 0
    return error_response(status, keep_alive=keep_alive, extra_headers=headers, charset=charset, fixed=fixed)
