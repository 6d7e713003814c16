"""nginx's time and size syntax, parsed the way nginx parses it.

Ports of ``ngx_parse_time()`` and ``ngx_parse_size()`` (src/core/ngx_parse.c)
so that every value nginx accepts is accepted here with the same meaning, and
junk nginx would refuse at ``nginx -t`` is refused here too.

Time: a number followed by a unit, several of them in decreasing order, each
unit at most once, optionally separated by spaces (``1h 30m``, ``1h30m``); a
trailing bare number counts as seconds.  Units: ``ms s m h d w M y``
(``M`` = 30 days, ``y`` = 365 days).  nginx has two flavours of it, and so
has ``parse_time``:

- ``TimeSlot.MSEC`` - directives stored in milliseconds (``proxy_read_timeout``,
  ``keepalive_timeout``...): ``ms`` allowed, ``M`` and ``y`` refused.
- ``TimeSlot.SEC`` - directives stored in seconds (``fail_timeout``...):
  ``M`` and ``y`` allowed, ``ms`` refused.
- ``TimeSlot.ANY`` (the default) - every unit; ``ws_conn_age`` uses it, since
  the spec lists both ``12h`` and ``500ms`` as valid there.

Size: a number with an optional ``k``/``K``, ``m``/``M`` or ``g``/``G`` suffix
(powers of 1024).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TimeSlot", "parse_time", "parse_size", "parse_flag", "atoi"]

# nginx works in ngx_int_t / size_t; on the 64-bit builds everyone runs that is
# this bound, and overflowing it is an error there, so it is one here.
_MAX_INT = 2**63 - 1

_SECOND_SCALE: dict[str, int] = {
    "y": 365 * 24 * 3600,
    "M": 30 * 24 * 3600,
    "w": 7 * 24 * 3600,
    "d": 24 * 3600,
    "h": 3600,
    "m": 60,
    "s": 1,
}
# Order of the steps in ngx_parse_time(); a unit may only follow a larger one.
_STEP = {"y": 1, "M": 2, "w": 3, "d": 4, "h": 5, "m": 6, "s": 7, "ms": 8, " ": 9}


class TimeSlot(str, Enum):
    """Which of nginx's time flavours a directive uses (see module docstring)."""

    MSEC = "msec"
    SEC = "sec"
    ANY = "any"


def _time_error(text: str, why: str) -> ValueError:
    return ValueError(f'invalid time "{text}": {why}')


def parse_time(text: str, slot: TimeSlot = TimeSlot.ANY) -> float:
    """Return the nginx time ``text`` in (possibly fractional) seconds.

    Raises ``ValueError`` naming the offending text on anything nginx's
    ``ngx_parse_time()`` would refuse in that slot.
    """
    # Work in milliseconds throughout, so "1s 500ms" is exact.
    total_ms = 0
    value = 0
    valid = False
    step = _STEP["M"] if slot is TimeSlot.MSEC else 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if "0" <= ch <= "9":
            value = value * 10 + (ord(ch) - 48)
            if value > _MAX_INT:
                raise _time_error(text, "value too large")
            valid = True
            i += 1
            continue
        i += 1
        if ch == "m" and i < n and text[i] == "s":
            if slot is TimeSlot.SEC:
                raise _time_error(text, '"ms" is not allowed for a value in seconds')
            unit = "ms"
            i += 1
            scale_ms = 1
        elif ch == " ":
            # nginx: a space right after digits ends a bare-seconds part,
            # which may not follow "s" or "ms".
            unit = " "
            scale_ms = 1000
            if step >= _STEP["s"]:
                raise _time_error(text, "unexpected space")
        elif ch in _SECOND_SCALE:
            unit = ch
            scale_ms = _SECOND_SCALE[ch] * 1000
        else:
            raise _time_error(text, f'unknown unit "{ch}"')
        if unit != " " and step >= _STEP[unit]:
            if slot is TimeSlot.MSEC and unit in ("y", "M"):
                raise _time_error(text, f'"{unit}" is not allowed for a value in milliseconds')
            raise _time_error(text, f'unit "{unit}" out of order or repeated')
        step = _STEP[unit]
        part = value * scale_ms
        if part > _MAX_INT or total_ms > _MAX_INT - part:
            raise _time_error(text, "value too large")
        total_ms += part
        value = 0
        while i < n and text[i] == " ":
            i += 1
    if not valid:
        raise _time_error(text, "no number")
    # A trailing bare number is seconds.
    total_ms += value * 1000
    if total_ms > _MAX_INT:
        raise _time_error(text, "value too large")
    return total_ms / 1000.0


def parse_size(text: str) -> int:
    """Return the nginx size ``text`` (``512``, ``8k``, ``1M``, ``2g``) in bytes.

    Mirrors ``ngx_parse_size()``: one optional suffix, digits only before it.
    """
    if not text:
        raise ValueError('invalid size "": empty')
    scale = 1
    digits = text
    suffix = text[-1]
    if suffix in "kK":
        scale, digits = 1024, text[:-1]
    elif suffix in "mM":
        scale, digits = 1024 * 1024, text[:-1]
    elif suffix in "gG":
        scale, digits = 1024 * 1024 * 1024, text[:-1]
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f'invalid size "{text}": expected digits with an optional k, m or g')
    size = int(digits) * scale
    if size > _MAX_INT:
        raise ValueError(f'invalid size "{text}": value too large')
    return size


def parse_flag(text: str) -> bool:
    """``on``/``off`` (any case, as ``ngx_conf_set_flag_slot`` compares)."""
    low = text.lower()
    if low == "on":
        return True
    if low == "off":
        return False
    raise ValueError(f'invalid flag "{text}": it must be "on" or "off"')


def atoi(text: str) -> int | None:
    """``ngx_atoi()``: plain decimal digits, else None."""
    if text and text.isascii() and text.isdigit():
        return int(text)
    return None
