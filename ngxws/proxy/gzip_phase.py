"""Where the client connection asks the gzip filter (``ngxws.http.gzip_filter``)
about an answer it writes from memory (``return``, nginx's own error pages),
and how such an answer is framed when compressed: chunked to an HTTP/1.1
client, close-delimited to an HTTP/1.0 one (ngx_http_chunked_header_filter
with the length cleared), a HEAD's head alone.  With ``gzip off`` nothing
is looked at."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ngxws.config.gzip import GzipConf
from ngxws.http.gzip_filter import GzipStream, decide
from ngxws.http.request import RequestHead

if TYPE_CHECKING:
    from ngxws.config.model import Location

__all__ = ["gzip_plan", "compressing", "finished"]


def gzip_plan(
    loc: Location | None,
    head: RequestHead,
    status: int,
    content_type: str | None,
    length: int,
    headers: Sequence[tuple[str, str]],
    keep: bool,
) -> tuple[bool, GzipConf | None, bool, bool]:
    """(vary, compress with, chunked, keep-alive) for an in-memory answer
    of ``length`` bytes with ``content_type`` and the list ``headers``."""
    if loc is None or not loc.gzip.enabled:
        return False, None, False, keep
    lead = [("Content-Type", content_type)] if content_type else []
    vary, conf = decide(loc.gzip, head, status, [*lead, *headers], length)
    if conf is None or head.method == "HEAD":
        return vary, conf, False, keep
    chunked = head.version == "1.1"
    return vary, conf, chunked, keep and chunked


def compressing(stream: GzipStream, write: Callable[[bytes], None], chunked: bool) -> Callable[[bytes], None]:
    """A body sink that compresses as the body comes (a proxied answer is
    never held whole), each piece of output one chunk when ``chunked``."""

    def sink(data: bytes) -> None:
        out = stream.compress(data)
        if out:
            write(b"%x\r\n%b\r\n" % (len(out), out) if chunked else out)

    return sink


def finished(stream: GzipStream, chunked: bool) -> bytes:
    """The end of a compressed body: deflate's last bytes and the trailer
    (and the last chunk)."""
    out = stream.finish()
    return b"%x\r\n%b\r\n0\r\n\r\n" % (len(out), out) if chunked else out
