"""ngx_http_rewrite_module's directives as data: ``rewrite``, ``set``,
``break``, ``return`` and ``if``, kept in config order as one list of steps
per server and per location (nginx compiles them into one script per level,
ngx_http_rewrite_loc_conf_t.codes, and runs it in order).

An ``if`` in a location is nginx's nested, nameless location: its body's
rewrite directives run inline (nginx compiles them into the parent's code
array) and, when its condition holds, the request's configuration becomes
the ``if`` block's own (``IfStep.location``, built like a nested location,
inheriting from the enclosing one).  An ``if`` in a server has no location
of its own (ngx_http_rewrite_if(): ``if_code->loc_conf = NULL``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ngxws.config.model import Return, Source
from ngxws.config.pcre import compile_pcre

if TYPE_CHECKING:
    from ngxws.config.model import Location

# flags of ``rewrite regex replacement [flag]`` (ngx_http_rewrite())
REWRITE_FLAGS = ("last", "break", "redirect", "permanent")
# ngx_http_rewrite_if_condition()'s operators
IF_OPERATORS = ("=", "!=", "~", "~*", "!~", "!~*")
FILE_TESTS = ("-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x")
REWRITE_STEP_DIRECTIVES = frozenset({"rewrite", "set", "break"})


@dataclass(frozen=True)
class RewriteStep:
    """``rewrite regex replacement [flag]``.

    ``redirect`` is the status of a redirecting rewrite (302 for ``redirect``
    or a replacement starting with ``http://``, ``https://`` or ``$scheme``;
    301 for ``permanent``), 0 for an internal one.  ``add_args``: the
    request's arguments are kept (no trailing ``?``), ``has_args``: the
    replacement carries arguments of its own."""

    regex: str
    replacement: str
    flag: str | None
    redirect: int
    add_args: bool
    has_args: bool
    source: Source | None = None


@dataclass(frozen=True)
class SetStep:
    """``set $name value``."""

    name: str
    value: str


@dataclass(frozen=True)
class BreakStep:
    """``break``: stop the rewrite directives of this level."""


@dataclass(frozen=True)
class ReturnStep:
    """``return`` where it stands among the other rewrite directives."""

    return_: Return


@dataclass(frozen=True)
class IfStep:
    """``if (condition) { ... }``: ``condition`` holds the words between
    the parentheses; ``steps`` the body's rewrite directives; ``location``
    the block's own configuration (None for a server-level ``if``)."""

    condition: tuple[str, ...]
    steps: tuple[Step, ...]
    location: Location | None = None
    source: Source | None = None


Step: TypeAlias = RewriteStep | SetStep | BreakStep | ReturnStep | IfStep


def rewrite_step(args: Sequence[str], source: Source) -> RewriteStep | str:
    """``rewrite``'s arguments -> its step, or nginx's error text."""
    regex, replacement = args[0], args[1]
    flag = args[2] if len(args) > 2 else None
    if not replacement:
        return "empty replacement"
    if flag is not None and flag not in REWRITE_FLAGS:
        return f'invalid parameter "{flag}"'
    problem = regex_error(regex)
    if problem is not None:
        return problem
    redirect = {"redirect": 302, "permanent": 301}.get(flag or "", 0)
    if redirect == 0 and replacement.startswith(("http://", "https://", "$scheme")):
        redirect = 302
    add_args = True
    if replacement.endswith("?"):
        replacement, add_args = replacement[:-1], False
    return RewriteStep(
        regex, replacement, flag, redirect, add_args, "?" in replacement, source
    )


def set_step(args: Sequence[str]) -> SetStep | str:
    """``set``'s arguments -> its step, or nginx's error text."""
    name = args[0]
    if not name.startswith("$") or len(name) == 1:
        return f'invalid variable name "{name}"'
    return SetStep(name[1:], args[1])


def if_condition_error(args: Sequence[str]) -> str | None:
    """ngx_http_rewrite_if_condition()'s complaints, None when valid."""
    if not args:
        return 'invalid condition "if"'
    first = args[0]
    if len(args) == 1:
        if first.startswith("$"):  # nginx has no "!$v"
            return None
        return f'invalid condition "{first}"'
    if len(args) == 2 and first in FILE_TESTS:
        return None
    if len(args) == 3 and first.startswith("$") and args[1] in IF_OPERATORS:
        if "~" in args[1]:
            return regex_error(args[2])
        return None
    if len(args) >= 2 and first.startswith("$"):
        return f'unexpected "{args[1]}" in condition'
    return f'invalid condition "{first}"'


def regex_error(regex: str) -> str | None:
    """nginx's words for a regex PCRE2 refuses (the usual cases), None when valid."""
    try:
        compile_pcre(regex)
    except re.error as exc:
        why = "missing closing parenthesis" if "missing )" in str(exc) else exc.msg
        return f'pcre2_compile() failed: {why} in "{regex}"'
    return None


@dataclass(frozen=True)
class RawIf:
    """An ``if`` as the loader reads it: ``block`` is the loader's own
    location block for the body (built into ``IfStep.location`` later)."""

    condition: tuple[str, ...]
    block: Any
    source: Source
    server_level: bool


def read_step(node: Any, steps: list[Any], error: Callable[[str], Exception]) -> None:
    """Append the step of a ``rewrite``, ``set`` or ``break`` directive
    (``node``: the loader's directive node) or raise nginx's error."""
    if node.name == "break":
        steps.append(BreakStep())
        return
    step = rewrite_step(node.args, node.source) if node.name == "rewrite" else set_step(node.args)
    if isinstance(step, str):
        raise error(step)
    steps.append(step)


def build_steps(raw: Sequence[Any], build_if: Callable[[Any], Location]) -> tuple[Step, ...]:
    """The loader's steps -> the model's; ``build_if`` builds a location-level
    ``if`` body as a nested location (whose own ``rewrites`` are its body)."""
    steps: list[Step] = []
    for step in raw:
        if not isinstance(step, RawIf):
            steps.append(step)
        elif step.server_level:
            steps.append(IfStep(step.condition, build_steps(step.block.steps, build_if), None, step.source))
        else:
            location = build_if(step.block)
            steps.append(IfStep(step.condition, location.rewrites, location, step.source))
    return tuple(steps)


def scripted(steps: tuple[Step, ...]) -> bool:
    """Whether a level's rewrite directives depend on the request (anything
    but a plain ``return``): the body waits until they ran."""
    return any(not isinstance(step, ReturnStep) for step in steps)
