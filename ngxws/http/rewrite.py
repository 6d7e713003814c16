"""The rewrite phase ngxws runs (ngx_http_rewrite_module's ``if`` and
``return``), for requests and for auth subrequests alike, and the content
type ngx_http_set_content_type() gives a ``return`` text."""

from __future__ import annotations

from ngxws.config.model import IfReturn, Return
from ngxws.http.upstream_request import RequestVariables
from ngxws.routing.locations import compile_pcre


def run_rewrite(ifs: tuple[IfReturn, ...], ret: Return | None, v: RequestVariables) -> Return | None:
    """The rewrite phase ngxws runs: ``if (...) { return }`` blocks and
    ``return`` in config order (nginx stops at the first return that runs)."""
    for rule in ifs:
        if if_condition(rule.condition, v):
            return rule.return_
    return ret


def if_condition(cond: tuple[str, ...], v: RequestVariables) -> bool:
    """ngx_http_rewrite's conditions on variables: ``$v`` (neither empty nor
    "0"), ``= != ~ ~* !~ !~*``; a regex match sets ``$1``.. for the block."""
    if len(cond) == 1:
        word = cond[0]
        negate = word.startswith("!")
        value = v.render(word.lstrip("!"))
        truth = value not in ("", "0")
        return truth != negate
    left, op, right = cond
    value = v.render(left)
    if op in ("=", "!="):
        return (value == v.render(right)) == (op == "=")
    rx = compile_pcre(right, op.endswith("*"))
    m = rx.search(value)
    if m is not None and not op.startswith("!"):
        v.captures = tuple(g or "" for g in m.groups())
    return (m is not None) != op.startswith("!")


def content_type_for(path: str, types: tuple[tuple[str, str], ...], default: str) -> str:
    """ngx_http_set_content_type(): by the URI's extension, else default_type."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot < 0:
        return default
    ext = name[dot + 1 :].lower()
    for e, t in types:
        if e == ext:
            return t
    return default
