"""Access checks nginx would make that the config makes through directives
ngxws does not run, found after loading (the per-directive ones are in
``directives.UNENFORCED_ACCESS`` rules).

``set`` is not implemented: a variable it would give a value stays empty.
That is harmless for most uses, but not when an ``if (...) { return ...; }``
that ngxws does run tests the variable -- the common "access flag" recipe::

    set $allowed 0;
    if ($remote_addr = 10.0.0.1) { set $allowed 1; }
    if ($allowed = 0) { return 403; }

-- where the condition would then see a different value than in nginx, and
a return meant to refuse may never run.  Such a ``set`` fails closed like
the access directives ngxws does not enforce.

Content handlers ngxws cannot run (``uwsgi_pass``...,
``directives.UNSERVED_HANDLERS``) go through the same refusal, worded as
what they are: not access control, but locations nginx would serve.
"""

from __future__ import annotations

from ngxws.config.directives import UNSERVED_HANDLERS
from ngxws.config.model import Ignored

__all__ = ["refusal", "unenforced_state"]


def refusal(item: Ignored) -> tuple[str, str]:
    """The ``[emerg]`` text (before its file:line) and the hint after it,
    for a directive refused unless ``--allow-unenforced`` names it."""
    if item.name in UNSERVED_HANDLERS:
        message = f'"{item.name}" is not supported by ngxws ({item.reason})'
        return message, f"--allow-unenforced {item.name} to run anyway (its location answers 502)"
    message = f'"{item.name}" is access control ngxws does not enforce ({item.reason})'
    return message, f"--allow-unenforced {item.name} to run anyway"


def unenforced_state(item: Ignored) -> str:
    """What an allowed item is at run time, for the start warnings."""
    if item.name in UNSERVED_HANDLERS:
        return f"NOT served ({item.reason}; its location answers 502)"
    return f"NOT enforced ({item.reason})"
