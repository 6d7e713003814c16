"""The time strings nginx (and the module) put into log lines.

Pure formatters: each takes a POSIX timestamp (``time.time()``) and returns
the string; none of them reads a clock, so tests pass fixed instants and the
caller decides where "now" comes from (the event loop's cached time).

nginx does not format the time per log line: ``ngx_time_update()`` renders
``ngx_cached_http_time``, ``ngx_cached_http_log_iso8601`` and friends once
per second and every variable reads the cached string.  ``TimeCache`` does
the same, because a ws log line is written per frame (about a million a
second in nginx) and ``time.gmtime`` + formatting costs more than the rest
of the line.

Weekday and month names come from fixed tables, never from ``strftime``:
nginx's names do not depend on the locale, so ours must not either.
"""

from __future__ import annotations

import time

__all__ = ["TimeCache", "http_date", "iso8601_local", "msec"]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # tm_wday: Monday is 0
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(t: float) -> str:
    """``Wed, 25 Nov 2026 08:44:08 GMT``: nginx's ``ngx_cached_http_time``.

    This is what the module prints for ``$time_local`` (it reads the cached
    HTTP date, not nginx's own ``$time_local``); always GMT, whatever TZ is.
    """
    tm = time.gmtime(int(t))
    return (
        f"{_WEEKDAYS[tm.tm_wday]}, {tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year:04d} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} GMT"
    )


def iso8601_local(t: float) -> str:
    """``2026-11-25T08:44:08+00:00``: nginx's ``$time_iso8601``.

    Local time (as ``localtime(3)`` sees TZ) with the UTC offset as
    ``+hh:mm``, the format of ``ngx_cached_http_log_iso8601``.
    """
    tm = time.localtime(int(t))
    off = tm.tm_gmtoff // 60  # whole minutes, as nginx keeps ``gmtoff``
    sign = "-" if off < 0 else "+"
    off = abs(off)
    return (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
        f"T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}{sign}{off // 60:02d}:{off % 60:02d}"
    )


def msec(t: float) -> str:
    """``1764060248.123``: nginx's ``$msec``, seconds with milliseconds.

    nginx truncates the microseconds of ``gettimeofday`` to milliseconds.
    A float timestamp near 1.7e9 is only good to ~0.2 us, so ``t * 1000``
    can land just below a whole millisecond (``...122.9999``); rounding to
    the microsecond first recovers the value the clock actually gave.
    """
    us = round(t * 1_000_000)
    return f"{us // 1_000_000}.{us // 1000 % 1000:03d}"


class TimeCache:
    """Per-second cache of the formatted times, like nginx's cached times.

    ``http_date`` and ``iso8601_local`` recompute their string only when
    ``int(now)`` differs from the second they last rendered, ``msec`` only
    when the millisecond changes; otherwise each is one comparison.  One
    instance is meant to be shared by every log line of a worker.  Holds no
    clock: the caller passes ``now``.
    """

    __slots__ = ("_http", "_http_sec", "_iso", "_iso_sec", "_msec", "_msec_ms")

    def __init__(self) -> None:
        self._http_sec = -1
        self._http = ""
        self._iso_sec = -1
        self._iso = ""
        self._msec_ms = -1
        self._msec = ""

    def http_date(self, now: float) -> str:
        """``http_date(now)``, rendered at most once per second."""
        sec = int(now)
        if sec != self._http_sec:
            self._http = http_date(sec)
            self._http_sec = sec
        return self._http

    def iso8601_local(self, now: float) -> str:
        """``iso8601_local(now)``, rendered at most once per second."""
        sec = int(now)
        if sec != self._iso_sec:
            self._iso = iso8601_local(sec)
            self._iso_sec = sec
        return self._iso

    def msec(self, now: float) -> str:
        """``msec(now)``, rendered at most once per millisecond."""
        ms = round(now * 1_000_000) // 1000  # same rounding as msec()
        if ms != self._msec_ms:
            self._msec = f"{ms // 1000}.{ms % 1000:03d}"
            self._msec_ms = ms
        return self._msec


_NOW = TimeCache()


def http_date_now() -> str:
    """The ``Date:`` header value for a response written now, rendered at most
    once per second (nginx's cached time)."""
    return _NOW.http_date(time.time())
