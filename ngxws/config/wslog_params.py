"""ngxws's additions to the module's ``ws_log`` / ``ws_log_format``, read at
config load: ``escape=`` (nginx's ``log_format`` parameter), ``ws_log
syslog:...`` (as nginx's ``access_log``), and the variables only ngxws has.

Each one is marked "ngxws-only" in ``ngxws check``: a config that uses them
no longer runs as intended under nginx with the module (it refuses three
``ws_log_format`` arguments, writes ``syslog:...`` as a file name, and
prints an unknown variable as text).
"""

from __future__ import annotations

from typing import Protocol

from ngxws.sinks.logescape import MODES
from ngxws.sinks.wslog import NGXWS_VARIABLES, compile_template


class _Node(Protocol):
    def error(self, message: str) -> Exception: ...


def ngxws_only_notice(what: str) -> str:
    return f"ngxws-only: {what} (not understood by nginx with the module)"


def split_escape(node: _Node, args: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(escape mode or "", the module's own arguments) of a ws_log_format."""
    if args and args[0].startswith("escape="):
        mode = args[0][7:]
        if mode not in MODES:
            raise node.error(f'unknown log format escaping "{mode}"')
        rest = args[1:]
        if not rest:
            raise node.error('invalid number of arguments in "ws_log_format" directive')
        return mode, rest
    if len(args) > 2:
        raise node.error('invalid number of arguments in "ws_log_format" directive')
    return "", args


def ngxws_only_in_format(mode: str, template: str) -> list[str]:
    """``ngxws check`` lines for what only ngxws understands in one ws_log_format."""
    out = [ngxws_only_notice(f"ws_log_format escape={mode}")] if mode else []
    seen = []
    for name in compile_template(template).variables:
        if name in NGXWS_VARIABLES and name not in seen and not name.startswith("ssl_"):
            seen.append(name)
            out.append(ngxws_only_notice(f"variable ${name} in ws_log_format"))
    return out


def check_syslog_target(node: _Node, target: str) -> None:
    """nginx's ngx_syslog_process_conf errors, for ``ws_log syslog:...``."""
    from ngxws.sinks.syslog import SyslogError, parse_syslog

    try:
        parse_syslog(target)
    except SyslogError as exc:
        raise node.error(str(exc)) from None
