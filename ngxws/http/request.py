"""An HTTP/1.x request head, as nginx sees it after parsing.

The bytes are parsed by httptools (llhttp, the parser Node.js uses) in
``proxy.client``; this module holds what is derived from the head without
I/O: the normalised URI nginx matches locations on, header look-up, and
the websocket-upgrade test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote


class BadRequest(Exception):
    """The head is unusable; ``status`` is what nginx would answer."""

    def __init__(self, status: int = 400, reason: str = "") -> None:
        super().__init__(reason or str(status))
        self.status = status


def normalise_uri(path: str) -> str:
    """nginx's URI normalisation: %XX decoded, ``//`` merged, ``.``/``..`` resolved.

    A ``..`` that climbs above the root is a 400 in nginx.
    """
    if not path.startswith("/"):
        raise BadRequest(400, "URI does not start with /")
    decoded = unquote(path, errors="surrogateescape") if "%" in path else path
    if "\x00" in decoded:
        raise BadRequest(400, "NUL in URI")
    if "//" not in decoded and "/." not in decoded:
        return decoded
    out: list[str] = []
    parts = decoded.split("/")
    for i, seg in enumerate(parts[1:], start=1):
        last = i == len(parts) - 1
        if seg == "" and not last:
            continue  # merge_slashes on
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if not out:
                raise BadRequest(400, "URI above root")
            out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    return "/" + "/".join(out)


@dataclass
class RequestHead:
    """One parsed request head.  ``headers`` keep their order and spelling:
    they are forwarded to the upstream as they came."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    keep_alive: bool
    path: str = ""
    args: str | None = None
    _index: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        raw_path, sep, query = self.target.partition("?")
        if raw_path.startswith(("http://", "https://")):
            # absolute-form: nginx takes the path part (and the host from it)
            after_scheme = raw_path.split("://", 1)[1]
            slash = after_scheme.find("/")
            raw_path = after_scheme[slash:] if slash >= 0 else "/"
        self.path = normalise_uri(raw_path)
        self.args = query if sep else None
        for name, value in self.headers:
            key = name.lower()
            # nginx keeps the first occurrence for single-value lookups
            self._index.setdefault(key, value)

    def header(self, name: str) -> str | None:
        """Case-insensitive header value (first occurrence)."""
        return self._index.get(name.lower())

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} HTTP/{self.version}"

    @property
    def request_uri(self) -> str:
        return self.target

    @property
    def host(self) -> str | None:
        return self._index.get("host")

    @property
    def is_websocket_upgrade(self) -> bool:
        """nginx tunnels when the client sent ``Upgrade`` and the upstream said 101;
        the module's limit applies to websocket upgrades."""
        up = self._index.get("upgrade")
        return up is not None and up.strip().lower() == "websocket"

    @property
    def header_map(self) -> dict[str, str]:
        """Lower-cased name -> first value; what ``$http_NAME`` reads."""
        return self._index
