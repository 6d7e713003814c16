"""nginx.conf -> ``Config``: crossplane's parse, nginx's checks, the typed model.

The pipeline, top to bottom:

1. **crossplane** lexes and parses the main file and every ``include`` (it
   checks stock directives' contexts and argument counts; it does not know
   the module's ``ws_*`` directives and lets them through).
2. **Tree** (``reading.py``) turns its JSON into ``Node``s with includes
   inlined, in the order nginx reads them, each numbered by that reading
   position.
3. **Reader** (``reader.py``; value setters in ``setters.py``, address
   grammar in ``addresses.py``) walks the nodes in that order and does
   what nginx does *while* parsing: the module's directive table (``directives.WS_DIRECTIVES``),
   value checks (ports, times, sizes, ``proxy_pass`` URLs, duplicates...), and
   it records every directive ngxws ignores.
4. **Builder** (``build.py``) does what nginx does *after* parsing: inheritance
   (http -> server -> location), upstream links, duplicate locations,
   certificates, default servers, ``no "events" section``.

nginx stops at the first error it meets, so ngxws reports the first one in
nginx's reading order: crossplane reports its errors per file (the main
file, then includes), so each is placed back in that order by its file:line
before being compared with the first error step 3 finds.

Errors read like nginx's own (same wording, same file:line), because people
grep for them: ``unknown directive "ws_lgo" in /etc/nginx/nginx.conf:12``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

import crossplane

from ngxws.config.build import Builder
from ngxws.config.enforcement import refusal
from ngxws.config.model import Config
from ngxws.config.reader import Reader
from ngxws.config.reading import (
    ConfigError,
    ReadingError,
    Tree,
    crossplane_errors,
    open_failed,
    plain_error,
)
from ngxws.config.setters import SETTERS

__all__ = ["ConfigError", "load_config"]

# Kept under their old names for tests/test_config.py, which checks that
# every HONOURED directive has a handler or a setter.
_Reader = Reader
_LEVEL_DIRECTIVES = frozenset(SETTERS)


def load_config(
    path: str, prefix: str | None = None, allow_unenforced: Iterable[str] | None = ()
) -> Config:
    """Read ``path`` (and its includes) into a ``Config``; raise ``ConfigError``
    with nginx's message for anything ``nginx -t`` would refuse.

    Then, ngxws's own refusal: the first directive that restricts access in
    nginx but that ngxws does not enforce (``Handling.UNENFORCED_ACCESS``)
    and that ``allow_unenforced`` does not name.  None skips that check
    (``ngxws -s`` only reads the pid path).

    ``prefix`` is ``-p``: relative ``pid``, ``error_log`` and ``ws_log``
    paths resolve against it; when it is None, against the conf file's
    directory.  Relative ``include``, ``ssl_certificate*``,
    ``auth_basic_user_file`` and ``proxy_ssl_*`` file paths resolve against
    the conf file's directory, as nginx does.

    Deliberate difference: a relative ``path`` is taken from the working
    directory even when a prefix is given (nginx would look under the
    prefix), as every other command-line tool does.
    """
    conf_path = os.path.normpath(os.path.abspath(path))
    prefix_dir = os.path.abspath(prefix) if prefix is not None else os.path.dirname(conf_path)
    try:
        with open(conf_path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(open_failed(conf_path, exc)) from None

    payload = crossplane.parse(
        conf_path,
        onerror=lambda exc: exc,  # keep the exception: it carries errno / line
        catch_errors=True,
        strict=False,  # ws_* and third-party directives are judged here
        combine=False,
        check_ctx=True,
        check_args=True,
    )
    tree = Tree(payload)
    parse_errors = crossplane_errors(payload, tree)
    first_parse_error = min(
        parse_errors, key=lambda e: (e.order, e.rank, e.line or 0), default=None
    )

    reader = Reader(conf_path, prefix_dir)
    try:
        reader.read(tree.roots)
    except ReadingError as exc:
        if first_parse_error is not None and first_parse_error.order < exc.order:
            raise plain_error(first_parse_error) from None
        raise plain_error(exc) from None
    except Exception:
        # A tree crossplane already found broken can surprise the reader;
        # nginx would have stopped at crossplane's error anyway.
        if first_parse_error is not None:
            raise plain_error(first_parse_error) from None
        raise
    if first_parse_error is not None:
        raise plain_error(first_parse_error)
    config = Builder(reader).build()
    if allow_unenforced is None:
        return config
    allowed = frozenset(allow_unenforced)
    for item in config.unenforced:
        if item.name not in allowed:
            message, hint = refusal(item)
            raise ConfigError(message, item.source.file, item.source.line, hint=hint)
    return replace(config, allow_unenforced=allowed)
