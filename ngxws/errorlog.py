"""ngxws's own messages (startup, config errors, upstream failures, worker
deaths), nginx style.

nginx writes ``2026/11/25 10:00:00 [error] 1234#0: message`` to the file
named by ``error_log`` (stderr when none); operators' tooling greps that
shape, so ngxws uses it too, through the standard ``logging`` module.  The
number before ``#0`` is the pid of the process that wrote the line, so the
master's lines and each worker's can be told apart, as in nginx.

Every process (master and workers) opens the file itself in append mode; a
record is one ``write(2)``, so lines from different processes never
interleave.  ``reopen_error_log()`` is the logrotate half (SIGUSR1).
"""

from __future__ import annotations

import logging
import sys

# nginx has eight levels; logging has five.  The three missing ones get
# their own numbers so that `error_log FILE notice` and `... alert` filter
# exactly as nginx does.
NOTICE = 25
ALERT = 55
EMERG = 60

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "crit": logging.CRITICAL,
    "alert": ALERT,
    "emerg": EMERG,
}

_NAMES = {number: name for name, number in LEVELS.items()}

LOGGER_NAME = "ngxws"

# Targets nginx accepts that ngxws cannot write to: lines go to stderr.
_STDERR_TARGETS = ("syslog:", "memory:")


class _NginxFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt="%Y/%m/%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        level = _NAMES.get(record.levelno)
        if level is None:
            level = "error" if record.levelno >= logging.ERROR else "notice"
        return f"{self.formatTime(record, self.datefmt)} [{level}] {record.process}#0: {record.getMessage()}"


class _ErrorLog:
    """What the current process was told to log to, so it can reopen it."""

    path: str | None = None
    level: str = "error"


_current = _ErrorLog()


def _handler_for(path: str | None) -> logging.Handler:
    handler: logging.Handler
    if path is None or path in ("stderr", "/dev/stderr") or path.startswith(_STDERR_TARGETS):
        handler = logging.StreamHandler(sys.stderr)
    elif path in ("stdout", "/dev/stdout"):
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(_NginxFormatter())
    return handler


def check_error_log(path: str | None) -> None:
    """Raise ``OSError`` if ``path`` cannot be opened for appending (as
    nginx refuses to start or reload then)."""
    _handler_for(path).close()


def setup_error_log(path: str | None, level: str = "error") -> None:
    """Point the ``ngxws`` logger at ``path`` (append) or stderr.

    The new file is opened before the old handler is dropped: if it cannot
    be, ``OSError`` is raised and the old destination stays in use.
    """
    handler = _handler_for(path)
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(LEVELS.get(level, logging.ERROR))
    logger.propagate = False
    _current.path = path
    _current.level = level


def reopen_error_log() -> None:
    """Reopen the error log file by name (SIGUSR1 after logrotate renamed it)."""
    try:
        setup_error_log(_current.path, _current.level)
    except OSError as exc:
        logging.getLogger(LOGGER_NAME).log(
            ALERT, f'reopen() "{_current.path}" failed ({exc.errno}: {exc.strerror})'
        )
