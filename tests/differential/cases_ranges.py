"""Several ranges in one request (ngx_http_range_filter_module): the 206
multipart/byteranges answer, byte for byte -- each part's boundary header
with the part's Content-Type (labelled by ``charset``, as the charset filter
runs first) and Content-Range, the closing boundary, Content-Length -- and
when nginx declines and sends the whole file instead: ranges adding up to
more than the file, more ranges than ``max_ranges``; ``max_ranges 0`` (no
ranges, no Accept-Ranges).  nginx 1.22 (the oracle) serves any number of
small ranges as parts; later versions decline many small ones.

The boundary is nginx's temp-file counter, 1 for the first multipart
answer of a fresh server: this group's cases run in order on both servers
and make no temp files, so the numbers agree and the bodies are compared
as they are.
"""

from __future__ import annotations

from cases import case
from cases import group as add_group
from oracle import Group, req

FIELDS = frozenset({"etag", "last-modified", "content-range", "accept-ranges"})

DOCROOT: dict[str, bytes] = {
    "a.txt": b"0123456789abcdef",
    "img.png": bytes(range(256)),
    "blob": b"x" * 100,
    "k20.bin": bytes(i % 251 for i in range(20_000)),
}

add_group(Group("ranges", docroot=DOCROOT, http="""
    server {
        listen 127.0.0.1:@L0@;
        include /etc/nginx/mime.types;
        default_type application/octet-stream;
        root @ROOT@;
        location / { }
        location /cs/ { alias @ROOT@/; charset utf-8; }
        location /max1/ { alias @ROOT@/; max_ranges 1; }
        location /max0/ { alias @ROOT@/; max_ranges 0; }
        location /max300/ { alias @ROOT@/; max_ranges 300; }
        location /notype/ { alias @ROOT@/; types { } default_type ""; }
    }
"""))

ETAG = '"65937d25-10"'  # oracle.write_docroot's fixed mtime, 16 bytes
TINY = ",".join(f"{i}-{i}" for i in range(0, 400, 2))  # 200 one-byte ranges


def rc(id: str, path: str, rng: str, expect: int, method: str = "GET", extra: str = "") -> None:
    data = req(method, path, headers=f"Range: {rng}\r\n{extra}")
    # the bodies byte for byte, but not a server's own error page (its name)
    case(f"ranges: {id}", "ranges", data, expect=(expect,), fields=FIELDS, body=expect != 416)


rc("two ranges: multipart/byteranges", "/a.txt", "bytes=0-1,4-5", 206)
rc("three ranges with a suffix", "/a.txt", "bytes=0-1,4-5,-3", 206)
rc("open-ended and overlapping ranges within the size", "/a.txt", "bytes=10-,0-2,1-3", 206)
rc("ranges adding up to more than the file: whole file", "/a.txt", "bytes=0-9,2-12", 200)
rc("an unsatisfiable range among satisfiable ones is dropped", "/a.txt", "bytes=0-1,100-200", 206)
rc("only unsatisfiable ranges: 416", "/a.txt", "bytes=100-200,300-", 416)
rc("a binary type's parts", "/img.png", "bytes=0-15,250-", 206)
rc("parts name the charset the filter labelled", "/cs/a.txt", "bytes=0-0,15-15", 206)
rc("no Content-Type: parts without one", "/notype/blob", "bytes=0-0,99-99", 206)
rc("HEAD: the multipart head only", "/a.txt", "bytes=0-1,4-5", 206, method="HEAD")
rc("If-Range with the ETag", "/a.txt", "bytes=0-1,4-5", 206, extra=f"If-Range: {ETAG}\r\n")
rc("If-Range with another ETag: whole file", "/a.txt", "bytes=0-1,4-5", 200, extra='If-Range: "x"\r\n')
rc("200 one-byte ranges: 200 parts", "/k20.bin", f"bytes={TINY}", 206)
rc("200 ranges, max_ranges 300", "/max300/k20.bin", f"bytes={TINY}", 206)
rc("more ranges than max_ranges: whole file", "/max1/a.txt", "bytes=0-1,4-5", 200)
rc("max_ranges 1 still serves one range", "/max1/a.txt", "bytes=4-5", 206)
rc("max_ranges 0: no range, no Accept-Ranges", "/max0/a.txt", "bytes=4-5", 200)
rc("max_ranges 0, no Range header", "/max0/a.txt", "bytes=x", 200)
