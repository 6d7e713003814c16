"""``proxy_redirect``: the Location (and Refresh ``url=``) of a proxied
answer rewritten, as ngx_http_proxy_rewrite_redirect() does (pure).

Rules are tried in order; the first that matches rewrites and ends it:
- a plain rule (``proxy_redirect http://b:8080/two/ /one/``, and the
  implicit ``default``): its pattern, variables rendered, must begin the
  value (case-sensitive, ngx_rstrncmp); that prefix is replaced;
- a regex rule (``~`` / ``~*``): searched in the value; on a match the
  whole value is replaced by the replacement, its ``$1``... the match's.
``None`` when no rule matched: the header is passed as it came (and nginx
does not complete a relative one then).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ngxws.config.redirects import CookieFlags, RedirectRule

__all__ = ["rewrite_cookie", "rewrite_redirect", "refresh_url_at"]


def rewrite_redirect(
    rules: Sequence[RedirectRule],
    value: str,
    render: Callable[[str, tuple[str, ...]], str],
    prefix: int = 0,
) -> str | None:
    """``value`` rewritten by the first rule that matches from ``prefix`` on
    (``render(template, captures)``: the request's variables, ``$1``... the
    regex's), else None."""
    rest = value[prefix:]
    for rule in rules:
        if rule.regex is not None:
            m = rule.regex.search(rest)
            if m is None:
                continue
            captures = tuple(g or "" for g in m.groups())
            return value[:prefix] + render(rule.replacement, captures)
        pattern = render(rule.pattern, ())
        if rule.domain:
            at = prefix + 1 if rest.startswith(".") else prefix
            if value[at:].lower() != pattern.lower():
                continue
            return value[:at] + render(rule.replacement, ())
        if not rest.startswith(pattern):
            continue
        return value[:prefix] + render(rule.replacement, ()) + rest[len(pattern):]
    return None


def rewrite_cookie(
    value: str,
    domains: Sequence[RedirectRule],
    paths: Sequence[RedirectRule],
    render: Callable[[str, tuple[str, ...]], str],
    flags: Sequence[CookieFlags] = (),
) -> str | None:
    """A Set-Cookie value with its ``domain=`` and ``path=`` attributes
    rewritten and its flags edited by the first ``proxy_cookie_flags`` line
    naming it (ngx_http_proxy_rewrite_cookie): None when nothing applied;
    else the cookie as nginx writes it back (attributes joined by "; ",
    blanks around names and values dropped, removed flags left out)."""
    attrs: list[tuple[str | None, str | None]] = list(_parse_cookie(value))
    if attrs[0][1] is None:  # no name=value: not a cookie nginx rewrites
        return None
    changed = False
    for i in range(1, len(attrs)):
        key, val = attrs[i]
        if val is None or key is None:
            continue
        rules = domains if key.lower() == "domain" else paths if key.lower() == "path" else ()
        new = rewrite_redirect(rules, val, render) if rules else None
        if new is not None:
            attrs[i] = (key, new)
            changed = True
    if flags:
        wanted = _flags_for(str(attrs[0][0]), flags, render)
        if wanted:  # ngx_http_proxy_edit_cookie_flags(): the cookie is written anew
            _edit_flags(attrs, wanted)
            changed = True
    if not changed:
        return None
    return "; ".join(key if val is None else f"{key}={val}" for key, val in attrs if key is not None)


# proxy_cookie_flags' flag words (ngx_http_proxy_cookie_flags_masks) and
# the bit each sets
_FLAG_WORDS = frozenset(
    {"secure", "nosecure", "httponly", "nohttponly", "samesite=strict", "samesite=lax", "samesite=none", "nosamesite"}
)


def _flags_for(
    name: str, lines: Sequence[CookieFlags], render: Callable[[str, tuple[str, ...]], str]
) -> set[str]:
    """ngx_http_proxy_rewrite_cookie_flags(): the flag words of the first
    line whose cookie matches ``name`` (a regex searched, caseless; else
    equal in any case), rendered; an empty or unknown word is skipped."""
    for line in lines:
        if line.regex is not None:
            if line.regex.search(name) is None:
                continue
        elif render(line.cookie, ()).lower() != name.lower():
            continue
        return {w for w in (render(word, ()).lower() for word in line.flags) if w in _FLAG_WORDS}
    return set()


_SAMESITE = (("samesite=strict", "Strict"), ("samesite=lax", "Lax"), ("samesite=none", "None"))


def _edit_flags(attrs: list[tuple[str | None, str | None]], flags: set[str]) -> None:
    """ngx_http_proxy_edit_cookie_flags(), bit for bit: each Secure/HttpOnly
    the cookie has is kept by the first "on" word (which is then used up)
    and otherwise dropped by an "off" one; each SameSite is set to the
    first of strict/lax/none asked (used up; rewritten as ``SameSite=Lax``
    unless it said that in any case) or dropped by ``nosamesite``; the "on"
    words left are appended: Secure, HttpOnly, then SameSite."""
    for i in range(1, len(attrs)):
        key = attrs[i][0]
        low = key.lower() if key is not None else ""
        if low in ("secure", "httponly"):
            if low in flags:
                flags.discard(low)
            elif "no" + low in flags:
                attrs[i] = (None, None)
        elif low == "samesite":
            for word, spelled in _SAMESITE:
                if word in flags:
                    flags.discard(word)
                    if (attrs[i][1] or "").lower() != spelled.lower():
                        attrs[i] = ("SameSite", spelled)
                    break
            else:
                if "nosamesite" in flags:
                    attrs[i] = (None, None)
    if "secure" in flags:
        attrs.append(("Secure", None))
    if "httponly" in flags:
        attrs.append(("HttpOnly", None))
    for word, spelled in _SAMESITE:
        if word in flags:
            attrs.append(("SameSite", spelled))
            break

def _parse_cookie(value: str) -> list[tuple[str, str | None]]:
    """ngx_http_proxy_parse_cookie(): ``name[=value]`` pieces split at ";"."""
    out: list[tuple[str, str | None]] = []
    for piece in value.split(";"):
        name, eq, val = piece.partition("=")
        out.append((name.strip(" "), val.strip(" ") if eq else None))
    return out


def refresh_url_at(value: str) -> int | None:
    """Where a Refresh header's URL begins (after ``url=``, any case), else None."""
    at = value.lower().find("url=")
    return None if at < 0 else at + 4
