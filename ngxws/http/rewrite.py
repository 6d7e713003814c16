"""nginx's rewrite phases, pure: ngx_http_rewrite_module's script (``rewrite``,
``set``, ``if``, ``break``, ``return``) at server and location level, the
location lookup between them and the post-rewrite re-find bounded as nginx
bounds it; no sockets, no clock, files only through an injected ``stat``.
Also the content type ngx_http_set_content_type() gives a ``return`` text."""

from __future__ import annotations

import stat as _stat
from collections.abc import Callable
from dataclasses import dataclass
from os import stat_result

from ngxws.config.model import Location, Return, Server
from ngxws.config.pcre import compile_pcre
from ngxws.config.rewrite import BreakStep, IfStep, ReturnStep, RewriteStep, SetStep, Step
from ngxws.http.request import RequestHead
from ngxws.http.upstream_request import RequestVariables, escape_uri
from ngxws.routing.locations import match_location

# ngx_http_core_module's NGX_HTTP_MAX_URI_CHANGES: the 11th change is a 500
MAX_URI_CHANGES = 10

# the files an ``if (-f ...)`` asks about: injected, so this module opens none
Stat = Callable[[str], "stat_result | None"]


def no_files(path: str) -> stat_result | None:
    """The ``Stat`` of a world without files."""
    return None


@dataclass(frozen=True)
class Routed:
    """Where nginx's phases up to the location rewrite phase lead:

    - ``ret``: a ``return`` (or a redirecting ``rewrite``) answers;
    - ``status``: nginx answers with its own page (404 no location, 500
      after too many URI changes, 301 the auto-redirect to ``uri/``);
    - else ``location`` runs its access and content phases (possibly an
      ``if`` block's location); ``valid_location`` is False after
      ``rewrite ... break`` changed the URI (proxy_pass then sends the whole
      URI, its own URI part ignored, as nginx's r->valid_location = 0).
    """

    location: Location | None = None
    ret: Return | None = None
    status: int = 0
    valid_location: bool = True
    redirect_url: str | None = None  # ret's URL, already rendered
    # run_location_script(): a rewrite without "break" changed the URI, so
    # the location is to be found again (ngx_http_core_post_rewrite_phase)
    uri_changed: bool = False


@dataclass
class _Script:
    """One run of a level's rewrite directives (ngx_http_script_engine_t)."""

    location: Location | None
    stop: str = ""  # "", "break", "last", "return"
    ret: Return | None = None
    redirect_url: str | None = None
    uri_changed: bool = False
    valid_location: bool = True


def route(
    server: Server, v: RequestVariables, stat: Stat = no_files, internal: bool = False, from_find: bool = False
) -> Routed:
    """nginx's server rewrite, find config, location rewrite and post
    rewrite phases for the request ``v.head`` (which rewrites replace);
    ``from_find``: from the find-config phase on (after a named location's
    rewrite changed the URI), the server's rewrites not run again."""
    if server.rewrites and not from_find:
        script = _Script(None)
        _run(server.rewrites, v, script, stat)
        if script.stop == "return":
            return Routed(ret=script.ret, redirect_url=script.redirect_url)
        internal = internal or script.uri_changed
    changes = MAX_URI_CHANGES + 1
    while True:
        head = v.head
        match = match_location(server.locations, head.path)
        if match is None:  # the server's own configuration
            return Routed(status=404) if server.fallback is None else Routed(location=server.fallback)
        loc = limited(match.location, head.method)
        if loc.internal and not internal:  # a client's own request: 404
            return Routed(location=loc, status=404)
        if match.redirect:
            return Routed(location=loc, status=301)
        if loc.modifier in ("~", "~*"):
            v.captures, v.named = match.captures, _named(loc, head.path)
        if not loc.rewrites:  # the common proxy location: nothing to run
            return Routed(location=loc)
        script = _Script(loc)
        _run(loc.rewrites, v, script, stat)
        if script.stop == "return":
            return Routed(location=script.location, ret=script.ret, redirect_url=script.redirect_url)
        if not script.uri_changed:  # ngx_http_core_post_rewrite_phase()
            return Routed(location=script.location, valid_location=script.valid_location)
        changes -= 1
        if changes == 0:  # "rewrite or internal redirection cycle"
            return Routed(location=script.location, status=500)
        internal = True


def limited(loc: Location, method: str) -> Location:
    """ngx_http_update_location_config(): a method ``limit_except`` does not
    name runs under the limit_except block's configuration (its access
    rules, inherited the rest; the location's rewrite directives are not
    its: they do not run)."""
    if loc.limit_except is None:
        return loc
    methods, inner = loc.limit_except
    return loc if method in methods else inner


def _named(loc: Location, uri: str) -> dict[str, str]:
    # the location regex's (?<name>...) captures (match_location keeps $1.. only)
    if "(?<" not in loc.pattern and "(?P<" not in loc.pattern:
        return {}
    m = compile_pcre(loc.pattern, loc.modifier == "~*").search(uri)
    return {k: g or "" for k, g in m.groupdict().items()} if m is not None else {}


def run_location_script(loc: Location, v: RequestVariables, stat: Stat = no_files) -> Routed:
    """A location's rewrite directives alone (named locations of
    ``error_page``, auth subrequests): no re-find."""
    script = _Script(loc)
    _run(loc.rewrites, v, script, stat)
    if script.stop == "return":
        return Routed(location=script.location, ret=script.ret, redirect_url=script.redirect_url)
    return Routed(location=script.location, valid_location=script.valid_location, uri_changed=script.uri_changed)


def _run(steps: tuple[Step, ...], v: RequestVariables, script: _Script, stat: Stat) -> None:
    for step in steps:
        if isinstance(step, SetStep):
            v.variables[step.name] = v.render(step.value)
        elif isinstance(step, RewriteStep):
            _rewrite(step, v, script)
        elif isinstance(step, ReturnStep):
            script.stop, script.ret = "return", step.return_
        elif isinstance(step, BreakStep):
            # ngx_http_script_break_code(): stops, and the URI change is kept
            # without finding the location again
            script.stop, script.uri_changed = "break", False
        elif isinstance(step, IfStep):
            if if_condition(step.condition, v, stat):
                if step.location is not None:  # the if block's configuration wins
                    script.location = step.location
                _run(step.steps, v, script, stat)
        if script.stop:
            return


def _rewrite(step: RewriteStep, v: RequestVariables, script: _Script) -> None:
    """ngx_http_script_regex_start_code()/end_code() for one ``rewrite``."""
    head = v.head
    m = compile_pcre(step.regex).search(head.path)
    if m is None:
        return
    v.captures = tuple(g or "" for g in m.groups())
    v.named = {k: g or "" for k, g in m.groupdict().items()}
    rendered = v.render(step.replacement)
    args = head.args or ""
    if step.redirect:
        url = rendered
        if step.add_args and args:
            url += ("&" if step.has_args else "?") + args
        script.stop, script.redirect_url = "return", url
        script.ret = Return(step.redirect, url)
        return
    uri, sep, new_args = rendered.partition("?")
    if sep:
        if step.add_args and args:
            new_args += "&" + args
        query: str | None = new_args
    else:
        query = head.args if step.add_args else None
    if not uri:  # "the rewritten URI has a zero length"
        script.stop, script.ret = "return", Return(500)
        return
    v.head = rewritten_head(head, uri, query)
    if step.flag == "break":
        script.stop, script.uri_changed, script.valid_location = "break", False, False
    else:
        script.uri_changed = True
        if step.flag == "last":
            script.stop = "last"


def rewritten_head(head: RequestHead, uri: str, args: str | None) -> RequestHead:
    """The request after a rewrite: a new $uri and $args; $request_uri
    stays the client's (nginx never changes r->unparsed_uri)."""
    target = escape_uri(uri) + (f"?{args}" if args else "")
    new = RequestHead(
        method=head.method,
        target=target,
        version=head.version,
        headers=head.headers,
        keep_alive=head.keep_alive,
        client_uri=head.client_uri if head.client_uri is not None else head.request_uri,
    )
    new.path, new.args, new.uri_host = uri, args if args else None, head.uri_host
    return new


def if_condition(cond: tuple[str, ...], v: RequestVariables, stat: Stat = no_files) -> bool:
    """ngx_http_rewrite's conditions: ``$v`` (neither empty nor "0"),
    ``= != ~ ~* !~ !~*`` (a regex match sets ``$1``..), and the file
    tests ``-f -d -e -x`` (and their ``!``), asked of ``stat``."""
    if len(cond) == 1:
        word = cond[0]
        negate = word.startswith("!")
        value = v.render(word.lstrip("!"))
        truth = value not in ("", "0")
        return truth != negate
    if len(cond) == 2:
        op, path = cond
        st = stat(v.render(path))
        negate = op.startswith("!")
        kind = op.lstrip("!")
        if st is None:
            found = False
        elif kind == "-f":
            found = _stat.S_ISREG(st.st_mode)
        elif kind == "-d":
            found = _stat.S_ISDIR(st.st_mode)
        elif kind == "-x":
            found = bool(st.st_mode & _stat.S_IXUSR)
        else:
            found = True
        return found != negate
    left, op, right = cond
    value = v.render(left)
    if op in ("=", "!="):
        return (value == v.render(right)) == (op == "=")
    rx = compile_pcre(right, op.endswith("*"))
    m = rx.search(value)
    if m is not None and not op.startswith("!"):
        v.captures = tuple(g or "" for g in m.groups())
        v.named = {k: g or "" for k, g in m.groupdict().items()}
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
