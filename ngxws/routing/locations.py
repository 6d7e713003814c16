"""nginx's location lookup (ngx_http_core_find_location), without I/O.

The order, as nginx documents and implements it:

1. At one level, ``=`` locations whose pattern equals the URI win at once.
2. Otherwise the longest matching prefix (plain or ``^~``) is remembered and
   its nested locations are searched the same way, recursively.
3. Unless that prefix was ``^~``, the regex locations of this level
   (``~`` case-sensitive, ``~*`` case-insensitive) are tried in config
   order; the first match wins (its nested locations are searched in turn).
   A regex match found inside the nested search wins before this level's
   regexes are looked at.
4. Failing a regex, the remembered prefix is used.

Extra: for a URI equal to a prefix location's pattern without its trailing
slash (``/ws`` vs ``location /ws/ { proxy_pass ...; }``) nginx answers 301 to
the slashed URI; ``match_location`` reports that as ``redirect``.
Named locations (``@name``) never match a URI.
"""

from __future__ import annotations

from dataclasses import dataclass

from ngxws.config.model import Location
from ngxws.config.pcre import compile_pcre


@dataclass(frozen=True)
class LocationMatch:
    """The result: the location, regex captures (``$1``..), and whether nginx
    would answer with its auto-redirect (301 to ``uri + "/"``)."""

    location: Location
    captures: tuple[str, ...] = ()
    redirect: bool = False


def _auto_redirects(loc: Location) -> bool:
    return loc.pattern.endswith("/") and loc.proxy_pass is not None


def _find(
    level: tuple[Location, ...], uri: str
) -> tuple[LocationMatch | None, bool]:
    """Search one level; return (match, final) where final means no regex of
    an enclosing level may override it."""
    best: Location | None = None
    redirect_to: Location | None = None
    for loc in level:
        m = loc.modifier
        if m == "=":
            if uri == loc.pattern:
                return LocationMatch(loc), True
        elif m in ("", "^~"):
            p = loc.pattern
            if uri.startswith(p):
                if best is None or len(p) > len(best.pattern):
                    best = loc
            elif _auto_redirects(loc) and uri + "/" == p:
                redirect_to = loc

    # nginx's static tree answers NGX_DONE (redirect) before any regex, unless
    # a location names the URI itself.
    if redirect_to is not None and (best is None or best.pattern != uri):
        return LocationMatch(redirect_to, redirect=True), True

    noregex = best is not None and best.modifier == "^~"
    found: LocationMatch | None = LocationMatch(best) if best is not None else None
    if best is not None and best.locations:
        nested, final = _find(best.locations, uri)
        if nested is not None:
            if final:
                return nested, True
            found = nested

    if not noregex:
        for loc in level:
            if loc.modifier in ("~", "~*"):
                rm = compile_pcre(loc.pattern, loc.modifier == "~*").search(uri)
                if rm is not None:
                    here = LocationMatch(loc, tuple(g or "" for g in rm.groups()))
                    if loc.locations:
                        nested, _ = _find(loc.locations, uri)
                        if nested is not None:
                            return nested, True
                    return here, True
    return found, False


# match_location's recent answers (a function of the config and the URI;
# a websocket endpoint sees the same few URIs again and again)
_MATCHES: dict[tuple[int, str], tuple[tuple[Location, ...], LocationMatch | None]] = {}
_MATCHES_LIMIT = 2048


def match_location(locations: tuple[Location, ...], uri: str) -> LocationMatch | None:
    """The location nginx would pick for the normalised ``uri``, or None (404)."""
    key = (id(locations), uri)
    hit = _MATCHES.get(key)
    if hit is not None and hit[0] is locations:
        return hit[1]
    match, _ = _find(locations, uri)
    if len(uri) <= 256:  # bounded memory: at most the limit times this
        if len(_MATCHES) >= _MATCHES_LIMIT:
            _MATCHES.clear()
        _MATCHES[key] = (locations, match)
    return match


def find_named(locations: tuple[Location, ...], name: str) -> Location | None:
    """``@name`` locations, used by ``error_page ... @name``."""
    for loc in locations:
        if loc.modifier == "@" and loc.pattern == name:
            return loc
    return None
