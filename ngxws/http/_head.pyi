"""Type stub for the optional C extension built from ``_head.c``
(``ngxws.http.fast_head.py_scan_head`` in C)."""

def scan_head(
    buf: bytes, pos: int, /
) -> tuple[str, str, bool, list[tuple[str, str]], dict[str, str], int] | None: ...
