"""The content phase of a location without ``proxy_pass``: static files.

Thin wiring between the client connection and ``ngxws.http.static`` (the
decisions) and ``ngxws.proxy.static_send`` (the bytes): it carries out
what the pure core decided -- an internal redirect (index, try_files'
last URI) re-matches the location as nginx's ngx_http_internal_redirect(),
bounded by NGX_HTTP_MAX_URI_CHANGES; a named location runs from its
rewrite phase; a status goes through the client's error path (so
``error_page`` applies); a file goes out with sendfile.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from ngxws.config.gzip import GzipConf
from ngxws.http.gzip_filter import GzipStream, accepted, compressed_headers, decide
from ngxws.http.headers_filter import labelled
from ngxws.http.request import BadRequest, RequestHead
from ngxws.http.responses import build_response
from ngxws.http.rewrite import content_type_for, limited
from ngxws.http.static import (
    MAX_URI_CHANGES,
    Continue,
    FileAnswer,
    FileInfo,
    Internal,
    Listing,
    Named,
    Redirect,
    Serve,
    Status,
    autoindex_html,
    content,
    file_answer,
    map_uri_to_path,
    precompressed,
    try_files,
)
from ngxws.proxy.header_phase import filtered, redirect_location
from ngxws.proxy.static_send import SMALL_FILE, read_small, send_compressed, send_file, stat_path
from ngxws.routing.locations import find_named, match_location

if TYPE_CHECKING:
    from ngxws.config.model import Location, Server
    from ngxws.proxy.context import RequestIO
    from ngxws.proxy.pending import Pending

__all__ = ["serve_static"]

_URI_SAFE = "/:@!$&'()*+,;=-._~"

# multipart/byteranges boundaries: nginx numbers them from its temp-file
# counter (ngx_next_temp_number), 1 for the first of a fresh server
_BOUNDARIES = itertools.count(1)
_RANGE_HEADERS = ("Accept-Ranges", "Content-Range")
# what ngx_http_header_filter writes before Connection (Transfer-Encoding goes after them)
_SLOT_NAMES = ("content-type", "content-length", "last-modified")


async def serve_static(
    client: RequestIO,
    pending: Pending,
    server: Server,
    loc: Location,
    captures: tuple[str, ...],
    keep: bool,
) -> bool:
    head = pending.head
    assert head is not None
    conf = loc.static
    v = client.variables(head, server, captures)
    uri, add_uri_to_alias = head.path, False
    if conf.try_files:
        tried = try_files(uri, conf, loc.pattern, loc.modifier, v.render, stat_path)
        if isinstance(tried, Continue):
            uri, add_uri_to_alias = tried.uri, tried.add_uri_to_alias
        else:
            return await _carry_out(client, pending, server, loc, tried, keep)
    path = map_uri_to_path(uri, conf, loc.pattern, loc.modifier, v.render, add_uri_to_alias)
    vary, tested = False, None  # what gzip_static leaves on the request: r->gzip_vary, r->gzip_tested
    if loc.gzip.static != "off":  # its handler runs before the static module's
        found, vary, tested = precompressed(loc.gzip.static, head.method, uri, path,
                                            lambda: accepted(loc.gzip, head, ()), loc.gzip.vary, stat_path)  # fmt: skip
        if isinstance(found, Serve):
            ctype = content_type_for(uri, loc.types, loc.default_type)
            return await _send(client, pending, server, loc, found.path, found.info, ctype, keep,
                               static_vary=vary, tested=tested, encoded=True)  # fmt: skip
        if found is not None:
            return await _carry_out(client, pending, server, loc, found, keep)
    outcome = content(head.method, uri, head.args, path, conf, stat_path)
    if isinstance(outcome, Serve):
        ctype = content_type_for(uri, loc.types, loc.default_type)
        return await _send(client, pending, server, loc, outcome.path, outcome.info, ctype, keep,
                           static_vary=vary, tested=tested)  # fmt: skip
    if isinstance(outcome, Listing):
        return _listing(client, head, uri, outcome.path, conf.autoindex_exact_size, conf.autoindex_localtime, keep,
                        lambda h: filtered(client, loc, server, head, 200, h), loc.gzip)
    if isinstance(outcome, Redirect):
        client.write(_redirect(client, head, server, loc, outcome.location, keep, filtered(client, loc, server, head, 301, [])))
        return keep
    return await _carry_out(client, pending, server, loc, outcome, keep)


async def _carry_out(
    client: RequestIO,
    pending: Pending,
    server: Server,
    loc: Location,
    outcome: Internal | Named | Status,
    keep: bool,
) -> bool:
    if isinstance(outcome, Status):
        return await client.answer_error(outcome.code, pending, server, loc, keep)
    if isinstance(outcome, Named):
        named = find_named(server.locations, outcome.name)
        if named is None:
            return await client.answer_error(500, pending, server, None, keep)
        assert pending.head is not None
        return await client.run_location(pending, server, limited(named, pending.head.method), (), keep)
    return await internal_redirect(client, pending, server, outcome.uri, outcome.args, keep)


async def internal_redirect(
    client: RequestIO, pending: Pending, server: Server, uri: str, args: str | None, keep: bool
) -> bool:
    """ngx_http_internal_redirect(): the same request with a new URI, its
    location found again; more than MAX_URI_CHANGES is a 500."""
    from ngxws.proxy.pending import Pending as PendingRequest

    head = pending.head
    assert head is not None
    changes = pending.uri_changes + 1
    if changes > MAX_URI_CHANGES:
        return await client.answer_error(500, pending, server, None, keep)
    target = quote(uri.encode("utf-8", "surrogateescape"), safe=_URI_SAFE)
    try:
        redirected = RequestHead(
            method=head.method,
            target=target + (f"?{args}" if args is not None else ""),
            version=head.version,
            headers=head.headers,
            keep_alive=head.keep_alive,
            client_uri=head.client_uri or head.request_uri,
        )
    except BadRequest:
        return await client.answer_error(500, pending, server, None, keep)
    redirected.path = uri
    inner = PendingRequest(redirected)
    inner.upgrade = pending.upgrade
    inner.redirects = pending.redirects
    inner.error_page_done = pending.error_page_done
    inner.status_override = pending.status_override
    inner.limits = pending.limits
    inner.body = pending.body
    inner.uri_changes = changes
    match = match_location(server.locations, uri)
    if match is None:  # the server's own configuration
        if server.fallback is None:
            return await client.answer_error(404, inner, server, None, keep)
        return await client.run_location(inner, server, server.fallback, (), keep)
    return await client.run_location(inner, server, match.location, match.captures, keep)


def _redirect(client: RequestIO, head: RequestHead, server: Server, loc: Location, location: str, keep: bool,
              extra: list[tuple[str, str]]) -> bytes:  # fmt: skip
    from ngxws.http.responses import redirect_response

    url = redirect_location(client, head, server, loc, location)
    return redirect_response(301, url, keep_alive=keep, extra_headers=extra, completed=url != location)


async def _send(
    client: RequestIO,
    pending: Pending,
    server: Server,
    loc: Location,
    path: str,
    info: FileInfo,
    ctype: str,
    keep: bool,
    *,
    static_vary: bool = False,
    tested: bool | None = None,
    encoded: bool = False,
) -> bool:
    """The file's answer; ``encoded``: gzip_static's .gz (Content-Encoding
    pushed after its ETag, the gzip filter passing it by); ``static_vary``,
    ``tested``: what gzip_static left (``precompressed``)."""
    head = pending.head
    assert head is not None
    accel = pending.accel  # an X-Accel-Redirect's copied head (proxy/x_accel.py)
    if accel is not None and accel.content_type is not None:
        ctype = accel.content_type  # ngx_http_set_content_type() keeps r->headers_out's
    answer = file_answer(
        info, ctype, replace(loc.static, max_ranges=0) if encoded else loc.static, head.headers,
        head.version != "0.9",
        # a part names the type the charset filter labelled (it runs before the range filter)
        part_type=labelled(loc.headers, 200, ctype), boundary=_BOUNDARIES.__next__,
    )  # fmt: skip
    if encoded:
        answer = _encoded(answer)
    vary, gz = static_vary and loc.gzip.vary, None
    if loc.gzip.enabled and not encoded and not pending.status_override and answer.status in (200, 206, 416):
        # the gzip filter sees the file's 200 before the range filter: a
        # compressed answer is the whole file (its allow_ranges cleared)
        whole = answer if answer.status == 200 else file_answer(info, ctype, loc.static, _no_range(head.headers))
        filter_vary, gz = _gzip(client, head, server, loc, whole.status, whole.headers, info.size, tested)
        vary = vary or filter_vary
        if gz is not None:
            answer = whole
    if answer.status in (412, 416):
        # the range filter answers 416 after the headers filter saw the file's 200
        # (the precondition check, 412, runs before it)
        # (the range filter adds its Content-Range after the headers filter's lines)
        seen = [*filtered(client, loc, server, head, 200, []), *answer.headers] if answer.status == 416 else answer.headers
        if vary:  # r->gzip_vary stays set for the 416: its line leads the list, right after Connection
            seen = [("Vary", "Accept-Encoding"), *seen]
        return await client.answer_error(answer.status, pending, server, loc, keep, seen or None)
    status = pending.status_override or answer.status
    if status != answer.status:  # error_page to a file: the error's code, the whole file
        answer = file_answer(info, ctype, loc.static, [], True)
        if encoded:
            answer = _encoded(answer)
        # the header filter drops Last-Modified on a non-200, range adds nothing; the ETag stays
        headers = [h for h in answer.headers if h[0] not in ("Accept-Ranges", "Last-Modified")]
        answer = type(answer)(status, headers, 0, info.size)
        if loc.gzip.enabled and not encoded:
            filter_vary, gz = _gzip(client, head, server, loc, status, headers, info.size, tested)
            vary = vary or filter_vary
    head_only = head.method == "HEAD" or answer.status == 304
    listed = answer.headers
    if accel is not None:  # r->headers_out's list held them before the file's ETag
        at = next((i for i, h in enumerate(listed) if h[0].lower() not in _SLOT_NAMES), len(listed))
        listed = [*listed[:at], *accel.headers, *listed[at:]]
    headers = filtered(client, loc, server, head, answer.status, listed)
    chunked = False
    if gz is not None:  # Content-Encoding after add_header's lines; chunked (or close) after the slots
        headers = compressed_headers(headers)
        if head.method != "HEAD":
            chunked = head.version == "1.1"
            keep = keep and chunked
            if chunked:
                slot = next((i for i, h in enumerate(headers) if h[0].lower() not in _SLOT_NAMES), len(headers))
                headers.insert(slot, ("Transfer-Encoding", "chunked"))
    # the range filter runs after the headers filter: its Accept-Ranges /
    # Content-Range come after add_header's lines
    # (an Accept-Ranges an X-Accel-Redirect copied stays where it was)
    copied = {id(h) for h in accel.headers} if accel is not None else set()
    last = [h for h in headers if h[0] in _RANGE_HEADERS and id(h) not in copied]
    headers = [h for h in headers if h[0] not in _RANGE_HEADERS or id(h) in copied] + last
    answer_head = build_response(answer.status, content_type=None, keep_alive=keep, head_only=True,
                                 extra_headers=headers, length=-1, vary=vary)  # fmt: skip
    if not head_only and gz is None and not answer.parts and 0 < answer.length <= SMALL_FILE and client.transport:
        body = read_small(path, answer.offset, answer.length)  # with its head, one write
        client.write(answer_head + body if body else answer_head)
        return keep and body is not None and len(body) == answer.length
    client.write(answer_head)
    if head_only or client.transport is None:
        return keep
    if gz is not None:  # no sendfile: the file goes through deflate
        stream = GzipStream(gz, info.size)
        return await send_compressed(client.transport, client.write_gate, path, info.size, stream, chunked) and keep
    if answer.parts:  # multipart/byteranges: each range behind its boundary header
        for prefix, offset, length in answer.parts:
            client.write(prefix)
            if not await send_file(client.transport, client.write_gate, path, offset, length):
                return False
        client.write(answer.tail)
        return keep
    if answer.length == 0:
        return keep
    ok = await send_file(client.transport, client.write_gate, path, answer.offset, answer.length)
    return keep and ok


def _encoded(answer: FileAnswer) -> FileAnswer:
    """gzip_static's ``Content-Encoding: gzip``, pushed onto r->headers_out's
    list after the file's ETag (ngx_http_set_etag pushed it first), on its
    200; a 304 drops it (ngx_http_not_modified_header_filter), a 412 is an
    error page.  nginx 1.22 serves no range of a .gz (allow_ranges came in
    1.23.4), so the file's answer is made with the range filter off."""
    if answer.status != 200:
        return answer
    headers = list(answer.headers)
    at = max((i + 1 for i, h in enumerate(headers) if h[0] in ("ETag", "Last-Modified")), default=len(headers))
    headers.insert(at, ("Content-Encoding", "gzip"))
    return replace(answer, headers=headers)


def _no_range(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [h for h in headers if h[0].lower() not in ("range", "if-range")]


def _gzip(
    client: RequestIO, head: RequestHead, server: Server, loc: Location, status: int,
    headers: list[tuple[str, str]], size: int, tested: bool | None = None,
) -> tuple[bool, GzipConf | None]:
    """The gzip filter's verdict on the file's answer (ngx_http_gzip_ok()
    sees the headers the headers filter left: expires, add_header; unless
    gzip_static asked it first: ``tested``)."""
    listed = filtered(client, loc, server, head, status, headers)
    # a file's Last-Modified is r->headers_out's time, not a list element
    # (gzip_proxied no_last_modified does not see it); an add_header one is
    at = next((i for i, h in enumerate(listed) if h[0] == "Last-Modified"), None)
    return decide(loc.gzip, head, status, listed if at is None else listed[:at] + listed[at + 1 :], size, tested=tested)


def _listing(
    client: RequestIO, head: RequestHead, uri: str, path: str, exact: bool, localtime: bool, keep: bool,
    headers_filter: Callable[[list[tuple[str, str]]], list[tuple[str, str]]], gzip: GzipConf,
) -> bool:
    entries: list[tuple[str, FileInfo]] = []
    try:
        names = os.listdir(path)
    except OSError:
        names = []
    for name in names[:100_000]:  # bounded, whatever the directory holds
        info = stat_path(os.path.join(path, name))
        if isinstance(info, FileInfo):
            entries.append((name, info))
        elif info not in (2, 40):  # ENOENT, ELOOP: a broken link is left out, as nginx
            entries.append((name, FileInfo("other", 0, 0)))
    body = autoindex_html(uri, entries, exact_size=exact, localtime=localtime, gmtoff=-time.timezone)
    headers = [("Content-Type", "text/html")]
    if head.method == "HEAD":  # ngx_http_chunked_header_filter() leaves HEAD alone
        pass
    elif head.version == "1.1":
        headers.append(("Transfer-Encoding", "chunked"))
        framed = (b"%x\r\n" % len(body)) + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    else:
        framed, keep = body, False
    listed, vary = headers_filter(headers), False
    if gzip.enabled:  # the page's length is unknown to the gzip filter: no minimum, the full window
        vary, gz = decide(gzip, head, 200, listed, -1)
        if gz is not None:
            listed = compressed_headers(listed)
            stream = GzipStream(gz, -1)
            body = stream.compress(body) + stream.finish()
            framed = (b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)) if head.version == "1.1" else body
    data = build_response(200, content_type=None, keep_alive=keep, head_only=True, extra_headers=listed, length=-1, vary=vary)
    client.write(data if head.method == "HEAD" else data + framed)
    return keep
