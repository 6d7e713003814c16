"""ngxws's own messages (startup, upstream failures, worker deaths), nginx style.

nginx writes ``2026/11/25 10:00:00 [error] 1234#0: message`` to the file
named by ``error_log`` (stderr when none); operators' tooling greps that
shape, so ngxws uses it too, through the standard ``logging`` module.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "crit": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emerg": logging.CRITICAL,
}


class _NginxFormatter(logging.Formatter):
    _NAMES = {
        logging.DEBUG: "debug",
        logging.INFO: "notice",
        logging.WARNING: "warn",
        logging.ERROR: "error",
        logging.CRITICAL: "crit",
    }

    def __init__(self) -> None:
        super().__init__(datefmt="%Y/%m/%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        level = self._NAMES.get(record.levelno, "error")
        return f"{self.formatTime(record, self.datefmt)} [{level}] {record.process}#0: {record.getMessage()}"


def setup_error_log(path: str | None, level: str = "error") -> None:
    """Point the ``ngxws`` logger at ``path`` (append) or stderr."""
    logger = logging.getLogger("ngxws")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    handler: logging.Handler
    if path is None or path in ("stderr", "/dev/stderr"):
        handler = logging.StreamHandler(sys.stderr)
    elif path in ("stdout", "/dev/stdout"):
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(_NginxFormatter())
    logger.addHandler(handler)
    logger.setLevel(LEVELS.get(level, logging.ERROR))
    logger.propagate = False
