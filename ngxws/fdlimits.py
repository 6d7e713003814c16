"""Running out of file descriptors, as nginx does.

- ``worker_rlimit_nofile N``: each worker sets RLIMIT_NOFILE to N (soft and
  hard), as ``ngx_worker_process_init`` does; if it cannot, it logs nginx's
  alert and runs with the limit it has.
- ``socket()`` for an upstream failing with EMFILE/ENFILE: nginx logs
  ``[alert] socket() failed (24: Too many open files) while connecting to
  upstream`` and finalizes the request with 500 (``ngx_event_connect_peer``
  returns NGX_ERROR, not NGX_DECLINED: no next peer is tried).
- ``accept()`` failing with EMFILE/ENFILE: nginx logs ``[crit] accept4()
  failed (24: Too many open files)``, stops accepting and tries again
  ``accept_mutex_delay`` (500 ms) later.  See ``listeners.AcceptPause``.
"""

from __future__ import annotations

import errno
import logging
import os
import resource

from ngxws.errorlog import ALERT

__all__ = ["ACCEPT_RETRY", "FD_EXHAUSTED", "apply_rlimit_nofile", "errno_text", "fd_exhausted"]

log = logging.getLogger("ngxws")

FD_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})
ACCEPT_RETRY = 0.5
"""After accept() ran out of descriptors, accepting resumes this much later
(nginx's default ``accept_mutex_delay``)."""


def fd_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` is "too many open files" (per process or system-wide)."""
    return isinstance(exc, OSError) and exc.errno in FD_EXHAUSTED


def errno_text(exc: OSError) -> str:
    """nginx's ``(24: Too many open files)``."""
    code = exc.errno or 0
    return f"({code}: {exc.strerror or os.strerror(code)})"


def apply_rlimit_nofile(limit: int | None) -> None:
    """Set RLIMIT_NOFILE to ``limit`` (soft and hard) in this worker; log
    nginx's alert when that is refused (raising the hard limit needs
    CAP_SYS_RESOURCE)."""
    if limit is None:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    except (OSError, ValueError) as exc:
        code = getattr(exc, "errno", None) or errno.EPERM
        log.log(
            ALERT,
            f"setrlimit(RLIMIT_NOFILE, {limit}) failed ({code}: {os.strerror(code)})",
        )
