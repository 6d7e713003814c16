"""Static content as nginx's static, index, try_files, autoindex, range and
not_modified modules serve it: pure decisions, no I/O.

The file system is reached only through an injected ``stat`` (a path ->
``FileInfo`` or an errno) and ``listdir``; the shell (``ngxws.proxy.static_send``)
opens the file and sends it.  Each function mirrors one nginx handler:

- ``map_uri_to_path``: ngx_http_map_uri_to_path() (``root``, ``alias`` with
  a prefix location, ``alias`` with captures in a regex location);
- ``try_files``: ngx_http_try_files_handler();
- ``content``: the content phase for a static location -- the static
  handler (file, 301 for a directory, 405), the index handler (internal
  redirect to the first index that exists), autoindex, and the core's 403
  for a directory without an index;
- ``file_answer``: the header filters on a 200 file: not_modified (304/412)
  then range (206/416, ``Accept-Ranges``);
- ``autoindex_html``: ngx_http_autoindex_html(), byte for byte.

The URI arrives normalised (``..`` resolved, ``%2e`` and NUL refused by
``ngxws.http.request.normalise_uri``), so a mapped path never leaves the
root; ``safe_path`` checks it again.  Symlinks are followed, as nginx's
default ``disable_symlinks off``.
"""

from __future__ import annotations

import calendar
import email.utils
import errno
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from ngxws.config.static import StaticConf
from ngxws.sinks.timefmt import http_date

__all__ = [
    "FileInfo",
    "Stat",
    "map_uri_to_path",
    "safe_path",
    "Serve",
    "Internal",
    "Named",
    "Status",
    "Redirect",
    "Listing",
    "Continue",
    "parse_ranges",
    "try_files",
    "content",
    "precompressed",
    "FileAnswer",
    "file_answer",
    "etag_of",
    "parse_http_time",
    "autoindex_html",
    "MAX_URI_CHANGES",
]

# NGX_HTTP_MAX_URI_CHANGES: internal redirects a request may take, then 500
MAX_URI_CHANGES = 10
NAME_LEN = 50  # NGX_HTTP_AUTOINDEX_NAME_LEN


@dataclass(frozen=True)
class FileInfo:
    """What nginx's open_file_info keeps: kind (``file``, ``dir``, ``other``),
    size, whole-second mtime, inode."""

    kind: str
    size: int
    mtime: int
    inode: int = 0


# a path -> its FileInfo, or the errno opening/stat'ing it failed with
Stat = Callable[[str], "FileInfo | int"]
Render = Callable[[str], str]


def safe_path(base: str, path: str) -> bool:
    """The mapped path stays below ``base`` (belt and braces: the URI is normalised)."""
    if "\x00" in path:
        return False
    rest = path[len(base) :] if path.startswith(base) else None
    return rest is not None and "/../" not in rest + "/" and not rest.startswith("..")


def map_uri_to_path(
    uri: str, conf: StaticConf, pattern: str, modifier: str, render: Render, add_uri_to_alias: bool = False
) -> str:
    """ngx_http_map_uri_to_path(): root + URI, or the alias in place of the
    location's prefix; an alias in a regex location is the whole path
    (unless try_files found a file there: then alias + URI)."""
    base = render(conf.root) if conf.root_vars else conf.root
    if not conf.alias or add_uri_to_alias:
        return base + uri
    if modifier in ("~", "~*") or conf.root_vars:
        return base  # alias with captures: the rendered value is the file
    if modifier == "@":
        return base + uri
    return base + uri[len(pattern) :]


# -- content phase outcomes ------------------------------------------------------


@dataclass(frozen=True)
class Serve:
    """Send this file (``info`` as stat'ed) with a 200."""

    path: str
    info: FileInfo


@dataclass(frozen=True)
class Internal:
    """An internal redirect: the location is looked up again for ``uri``."""

    uri: str
    args: str | None


@dataclass(frozen=True)
class Named:
    name: str


@dataclass(frozen=True)
class Status:
    """nginx answers this status itself (through error_page if one names it)."""

    code: int


@dataclass(frozen=True)
class Redirect:
    """The 301 adding a slash to a directory; ``location`` is relative (the
    header filter makes it absolute as ``absolute_redirect`` says)."""

    location: str


@dataclass(frozen=True)
class Listing:
    """autoindex of this directory."""

    path: str


@dataclass(frozen=True)
class Continue:
    """try_files found a file: go on with the content phase for ``uri``."""

    uri: str
    add_uri_to_alias: bool = False


Outcome = Serve | Internal | Named | Status | Redirect | Listing


def precompressed(
    mode: str, method: str, uri: str, path: str, accepted: Callable[[], bool], gzip_vary: bool, stat: Stat
) -> tuple[Serve | Status | None, bool, bool | None]:
    """ngx_http_gzip_static_handler(), which runs before the static module:
    ``path`` + ".gz" to send with ``Content-Encoding: gzip`` (a Serve of
    it), a Status, or None (declined: the static module goes on); whether
    r->gzip_vary is set (``Vary: Accept-Encoding`` under ``gzip_vary on``,
    whichever file goes out); and ngx_http_gzip_ok()'s answer if it was
    asked (None if not): nginx keeps it (r->gzip_tested) for the gzip
    filter, though no response header existed yet.  ``mode``: gzip_static's
    value; ``accepted``: ngx_http_gzip_ok() (asked for ``on`` only);
    ``gzip_vary``: the location's gzip_vary.  A .gz nginx cannot open for
    any reason but its absence is declined too (nginx logs it).  The .gz
    goes out whole, without Accept-Ranges: nginx 1.22, the oracle, sets no
    allow_ranges for it (1.23.4 does)."""
    if mode == "off" or method not in ("GET", "HEAD") or uri.endswith("/"):
        return None, False, None
    tested = accepted() if mode == "on" else None
    ok = tested is not False
    if not gzip_vary and not ok:
        return None, False, tested
    info = stat(path + ".gz")
    if isinstance(info, int):
        return None, False, tested
    vary = mode == "on"  # the .gz exists: the answer depends on Accept-Encoding
    if not ok or info.kind == "dir":
        return None, vary, tested
    if info.kind != "file":  # "... is not a regular file"
        return Status(404), vary, tested
    return Serve(path + ".gz", info), vary, tested


def _error_status(err: int) -> int:
    # ngx_http_static_handler(): not found, forbidden, else 500
    if err in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
        return 404
    if err in (errno.EACCES, errno.ELOOP, errno.EMLINK):
        return 403
    return 500


def try_files(
    uri: str, conf: StaticConf, pattern: str, modifier: str, render: Render, stat: Stat
) -> Continue | Internal | Named | Status:
    """ngx_http_try_files_handler(): the first entry that exists (a file,
    or a directory for an entry ending in ``/``) becomes the URI; else the
    last entry: ``=CODE``, ``@named`` or a URI (internal redirect)."""
    base = render(conf.root) if conf.root_vars else conf.root
    regex_alias = conf.alias and (modifier in ("~", "~*") or conf.root_vars)
    entries = conf.try_files
    for entry in entries[:-1]:
        name = render(entry)
        test_dir = name.endswith("/")
        if regex_alias:
            path = base + name  # alias == NGX_MAX_SIZE_T_VALUE: the alias is the root
        elif conf.alias and name.startswith(pattern):
            name = name[len(pattern) :]
            path = base + name
        else:
            path = base + name
        info = stat(path.rstrip("/") if test_dir and len(path) > 1 else path)
        if isinstance(info, int) or (info.kind == "dir") != test_dir:
            continue
        if not conf.alias:
            return Continue(name)
        if regex_alias:
            return Continue(name, add_uri_to_alias=True) if not test_dir else Continue(uri)
        return Continue(pattern + name)
    last = render(entries[-1])
    if last.startswith("="):
        code = last[1:]
        return Status(int(code)) if code.isdigit() else Status(500)
    if last.startswith("@"):
        return Named(last)
    target, sep, args = last.partition("?")
    return Internal(target, args if sep else None)


def content(
    method: str,
    uri: str,
    args: str | None,
    path: str,
    conf: StaticConf,
    stat: Stat,
    *,
    index_base: str | None = None,
) -> Outcome:
    """The content phase of a location without proxy_pass: ``path`` is
    ``uri`` mapped to the file system."""
    if method not in ("GET", "HEAD", "POST"):
        return Status(405)
    if not uri.endswith("/"):
        info = stat(path)
        if isinstance(info, int):
            return Status(_error_status(info))
        if info.kind == "dir":
            return Redirect(uri + "/" + (f"?{args}" if args is not None else ""))
        if info.kind != "file":
            return Status(404)
        if method == "POST":
            return Status(405)
        return Serve(path, info)
    # ngx_http_index_handler(): the first index that exists, as an internal redirect
    dir_tested = False
    for name in conf.index:
        if name.startswith("/"):
            return Internal(name, args)
        info = stat(path + name)
        if isinstance(info, int):
            if info in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.EACCES):
                return Status(403 if info == errno.EACCES else 404)
            if not dir_tested:
                d = stat(path.rstrip("/") or "/")
                if isinstance(d, int):
                    return Status(_error_status(d))
                if d.kind != "dir":
                    return Status(500)
                dir_tested = True
            if info == errno.ENOENT:
                continue
            return Status(500)
        return Internal(uri + name, args)
    if conf.autoindex and method in ("GET", "HEAD"):
        d = stat(path.rstrip("/") or "/")
        if isinstance(d, int):
            return Status(_error_status(d))
        return Listing(path)
    # ngx_http_core_content_phase(): "directory index of ... is forbidden"
    return Status(403)


# -- the 200's header filters ------------------------------------------------------------


def etag_of(info: FileInfo) -> str:
    """ngx_http_set_etag(): ``"mtime-size"`` in hex."""
    return f'"{info.mtime:x}-{info.size:x}"'


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_http_time(text: str) -> int | None:
    """ngx_parse_http_time(): RFC 1123, RFC 850 and asctime dates; None if not one."""
    parsed = email.utils.parsedate_tz(text.strip())
    if parsed is None:
        return None
    try:
        return calendar.timegm(parsed[:6] + (0, 0, 0)) - (parsed[9] or 0)
    except (OverflowError, ValueError):
        return None


def _match_etag(header: str, etag: str | None, weak: bool) -> bool:
    """ngx_http_test_if_match()."""
    if header.strip() == "*":
        return True
    if etag is None:
        return False
    if weak and etag.startswith('W/"'):
        etag = etag[2:]
    for item in header.split(","):
        item = item.strip(" ")
        if weak and item.startswith('W/"'):
            item = item[2:]
        if item == etag:
            return True
    return False


@dataclass(frozen=True)
class FileAnswer:
    """The status and headers of a file answer, and the part of the file
    to send (``length`` 0: nothing, as for a 304).  Several ranges
    (multipart/byteranges): ``parts`` of (boundary header, offset, length)
    and the closing ``tail``, instead of ``offset``/``length``."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    offset: int = 0
    length: int = 0
    parts: tuple[tuple[bytes, int, int], ...] = ()
    tail: bytes = b""


def file_answer(
    info: FileInfo,
    content_type: str,
    conf: StaticConf,
    request_headers: Sequence[tuple[str, str]],
    http10_or_later: bool = True,
    *,
    part_type: str | None = None,
    boundary: Callable[[], int] = lambda: 1,
) -> FileAnswer:
    """A 200 for the whole file through not_modified then range: 304, 412,
    206 (one range, or several as multipart/byteranges), 416, or the 200
    with ``Accept-Ranges``.  ``part_type``: the Content-Type each part of a
    multipart answer names (the charset filter's, labelled); ``boundary``:
    the next boundary number (nginx's ngx_next_temp_number), taken only
    for a multipart answer."""
    h: dict[str, str] = {}
    for name, value in request_headers:
        h.setdefault(name.lower(), value)
    etag = etag_of(info) if conf.etag else None
    base: list[tuple[str, str]] = [("Content-Type", content_type)]
    validators: list[tuple[str, str]] = [("Last-Modified", http_date(info.mtime))]
    if etag is not None:
        validators.append(("ETag", etag))
    # ngx_http_not_modified_header_filter()
    ius = h.get("if-unmodified-since")
    if ius is not None:
        t = parse_http_time(ius)
        if t is None or info.mtime > t:
            return FileAnswer(412)
    im = h.get("if-match")
    if im is not None and not _match_etag(im, etag, False):
        return FileAnswer(412)
    ims, inm = h.get("if-modified-since"), h.get("if-none-match")
    if ims is not None or inm is not None:
        modified = False
        if ims is not None and conf.if_modified_since != "off":
            t = parse_http_time(ims)
            if conf.if_modified_since == "exact":
                modified = t != info.mtime
            else:
                modified = t is None or t < info.mtime
        elif ims is not None:
            modified = True
        if not modified and inm is not None and not _match_etag(inm, etag, True):
            modified = True
        if not modified:
            return FileAnswer(304, validators)
    whole = FileAnswer(
        200,
        [*base, ("Content-Length", str(info.size)), *validators, ("Accept-Ranges", "bytes")],
        0,
        info.size,
    )
    if conf.max_ranges == 0:  # the range filter is off: no Accept-Ranges either
        return FileAnswer(200, [*base, ("Content-Length", str(info.size)), *validators], 0, info.size)
    rng = h.get("range")
    if not http10_or_later or rng is None or len(rng) < 7 or rng[:6].lower() != "bytes=":
        return whole
    if_range = h.get("if-range")
    if if_range is not None:
        if len(if_range) >= 2 and if_range.endswith('"'):
            if etag is None or if_range != etag:
                return whole
        elif parse_http_time(if_range) != info.mtime:
            return whole
    parsed = parse_ranges(rng[6:], info.size, conf.max_ranges)
    if isinstance(parsed, str):
        return FileAnswer(416, [("Content-Range", f"bytes */{info.size}")])
    if parsed is None:
        return whole
    if len(parsed) > 1:
        return _multipart(info.size, parsed, part_type if part_type is not None else content_type,
                          boundary(), validators)  # fmt: skip
    start, end = parsed[0]
    return FileAnswer(
        206,
        [*base, ("Content-Length", str(end - start)), *validators,
         ("Content-Range", f"bytes {start}-{end - 1}/{info.size}")],
        start,
        end - start,
    )


def _multipart(
    size: int, ranges: list[tuple[int, int]], part_type: str, number: int, validators: list[tuple[str, str]]
) -> FileAnswer:
    """ngx_http_range_multipart_header(): each range behind its boundary
    header, the boundary nginx's 20-digit ``%0muA`` of the number."""
    boundary = f"{number:020d}"
    typed = f"Content-Type: {part_type}\r\n" if part_type else ""
    head = f"\r\n--{boundary}\r\n{typed}Content-Range: bytes "
    parts = tuple(
        ((head + f"{start}-{end - 1}/{size}\r\n\r\n").encode("latin-1"), start, end - start)
        for start, end in ranges
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(prefix) + count for prefix, _, count in parts) + len(tail)
    return FileAnswer(
        206,
        [("Content-Type", f"multipart/byteranges; boundary={boundary}"), ("Content-Length", str(length)),
         *validators],
        parts=parts,
        tail=tail,
    )  # fmt: skip


_MAX_OFF = 2**63 - 1


def parse_ranges(spec: str, size: int, max_ranges: int | None = None) -> list[tuple[int, int]] | str | None:
    """ngx_http_range_parse() of nginx 1.22: the ranges as [start, end),
    ``"416"`` when none is satisfiable or the header is malformed, None
    when nginx declines (sends the whole file): more ranges than
    ``max_ranges``, or several adding up to more than the file.  (Later
    nginx also declines many small ranges -- 256 bytes each plus the sum
    over the file's size plus 4 KiB -- when ``max_ranges`` is not set.)"""
    p, n = 0, len(spec)
    out: list[tuple[int, int]] = []
    total = 0
    left = max_ranges if max_ranges is not None else 2**31 - 1

    def skip(i: int) -> int:
        while i < n and spec[i] == " ":
            i += 1
        return i

    def number(i: int) -> tuple[int, int] | None:
        if i >= n or not "0" <= spec[i] <= "9":
            return None
        v = 0
        while i < n and "0" <= spec[i] <= "9":
            v = v * 10 + ord(spec[i]) - 48
            if v > _MAX_OFF:
                return None
            i += 1
        return v, i

    while True:
        p = skip(p)
        suffix = False
        if p < n and spec[p] != "-":
            got = number(p)
            if got is None:
                return "416"
            start, p = got
            p = skip(p)
            if p >= n or spec[p] != "-":
                return "416"
            p = skip(p + 1)
            if p >= n or spec[p] == ",":
                end = size
                if start < end:
                    out.append((start, end))
                    total += end - start
                    if left == 0:
                        return None
                    left -= 1
                elif start == 0:
                    return None
                if p >= n:
                    break
                p += 1
                continue
        else:
            start, suffix, p = 0, True, p + 1
        got = number(p)
        if got is None:
            return "416"
        end, p = got
        p = skip(p)
        if p < n and spec[p] != ",":
            return "416"
        if suffix:
            start = size - end if end < size else 0
            end = size - 1
        end = size if end >= size else end + 1
        if start < end:
            out.append((start, end))
            total += end - start
            if left == 0:
                return None
            left -= 1
        elif start == 0:
            return None
        if p >= n:
            break
        p += 1
    if not out:
        return "416"
    if len(out) > 1 and total > size:
        return None
    return out


# -- autoindex -------------------------------------------------------------------------


def _escape_html(text: str) -> str:
    # ngx_escape_html(): only < > & and "
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT) leaves these as they are
_URI_COMPONENT_SAFE = "-._~"


def autoindex_html(
    uri: str,
    entries: Sequence[tuple[str, FileInfo]],
    *,
    exact_size: bool = True,
    localtime: bool = False,
    gmtoff: int | None = None,
) -> bytes:
    """ngx_http_autoindex_html(): the listing; ``entries`` as read from the
    directory (names starting with ``.`` are left out, directories first,
    then by byte order)."""
    shown = sorted(
        ((name, info) for name, info in entries if not name.startswith(".")),
        key=lambda e: (e[1].kind != "dir", e[0].encode("utf-8", "surrogateescape")),
    )
    offset = 0
    if localtime:
        offset = gmtoff if gmtoff is not None else -time.timezone
    title = _escape_html(uri.encode("utf-8", "surrogateescape").decode("latin-1"))
    out = [f"<html>\r\n<head><title>Index of {title}</title></head>\r\n<body>\r\n<h1>Index of {title}</h1>"
           '<hr><pre><a href="../">../</a>\r\n']
    for name, info in shown:
        is_dir = info.kind == "dir"
        raw = name.encode("utf-8", "surrogateescape")
        href = quote(raw, safe=_URI_COMPONENT_SAFE)
        text = raw.decode("latin-1")  # no charset: nginx counts bytes
        line = f'<a href="{href}{"/" if is_dir else ""}">'
        length = len(text)
        if length > NAME_LEN:
            line += _escape_html(text[: NAME_LEN - 3]) + "..&gt;</a>"
        else:
            shown_name = _escape_html(text)
            if is_dir and NAME_LEN - length > 0:
                shown_name += "/"
                length += 1
            line += shown_name + "</a>" + " " * max(NAME_LEN - length, 0)
        tm = time.gmtime(info.mtime + offset)
        line += f" {tm.tm_mday:02d}-{_MONTHS[tm.tm_mon - 1]}-{tm.tm_year} {tm.tm_hour:02d}:{tm.tm_min:02d} "
        if exact_size:
            line += "                  -" if is_dir else f"{info.size:19d}"
        else:
            line += "      -" if is_dir else _human_size(info.size)
        out.append(line + "\r\n")
    out.append("</pre><hr></body>\r\n</html>\r\n")
    return "".join(out).encode("latin-1")


def _human_size(length: int) -> str:
    for unit, scale in ((1024**3, "G"), (1024**2, "M")):
        if length > unit - 1:
            size = length // unit + (1 if length % unit > unit // 2 - 1 else 0)
            return f"{size:6d}{scale}"
    if length > 9999:
        return f"{length // 1024 + (1 if length % 1024 > 511 else 0):6d}K"
    return f" {length:6d}"
