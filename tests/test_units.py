"""nginx time and size syntax (``ngxws.config.units``): table-driven vectors
taken from nginx's documentation and from what ``ngx_parse_time()`` /
``ngx_parse_size()`` accept and refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngxws.config.units import TimeSlot, parse_flag, parse_size, parse_time

ANY, SEC, MSEC = TimeSlot.ANY, TimeSlot.SEC, TimeSlot.MSEC

# (text, slot, seconds)
VALID_TIMES = [
    ("30s", ANY, 30.0),
    ("12h", ANY, 43200.0),
    ("1h 30m", ANY, 5400.0),
    ("1h30m", ANY, 5400.0),
    ("500ms", ANY, 0.5),
    ("1s 500ms", ANY, 1.5),
    ("60", ANY, 60.0),  # bare number: seconds
    ("0", ANY, 0.0),
    ("1m", ANY, 60.0),
    ("1d", ANY, 86400.0),
    ("1w", ANY, 604800.0),
    ("1M", ANY, 30 * 86400.0),
    ("1y", ANY, 365 * 86400.0),
    ("1y 1M 1w 1d 1h 1m 1s 1ms", ANY, 34_822_861.001),
    ("1h 30", ANY, 3630.0),  # a trailing bare number counts as seconds
    ("1h  30m  ", ANY, 5400.0),  # spaces after a unit are skipped
    ("1 2", ANY, 3.0),  # ngx_parse_time's odd "digits then space" rule
    # msec slot (proxy_read_timeout, keepalive_timeout, ...)
    ("60s", MSEC, 60.0),
    ("1500ms", MSEC, 1.5),
    ("3600", MSEC, 3600.0),
    ("1w", MSEC, 604800.0),
    # sec slot (fail_timeout, ...)
    ("10s", SEC, 10.0),
    ("1y", SEC, 365 * 86400.0),
]

# (text, slot)
INVALID_TIMES = [
    ("", ANY),
    ("abc", ANY),
    ("12x", ANY),
    ("s", ANY),
    ("-1s", ANY),
    ("1.5s", ANY),
    ("1m 1h", ANY),  # units must decrease
    ("1h 1h", ANY),  # each unit once
    ("1ms 1s", ANY),
    (" 1h", ANY),  # a leading space ends a bare part, then "h" is out of order
    ("1 h", ANY),
    ("1s 2 ", ANY),
    ("99999999999999999999s", ANY),
    ("1y", MSEC),  # ngx_parse_time(..., 0) starts at months
    ("1M", MSEC),
    ("500ms", SEC),  # ngx_parse_time(..., 1) refuses ms
]


@pytest.mark.parametrize(("text", "slot", "seconds"), VALID_TIMES)
def test_parse_time_valid(text: str, slot: TimeSlot, seconds: float) -> None:
    assert parse_time(text, slot) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "slot"), INVALID_TIMES)
def test_parse_time_invalid(text: str, slot: TimeSlot) -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_time(text, slot)


def test_parse_time_error_names_the_text() -> None:
    with pytest.raises(ValueError, match='"12x"'):
        parse_time("12x")


_UNITS = [("y", 365 * 86400), ("M", 30 * 86400), ("w", 7 * 86400), ("d", 86400),
          ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001)]  # fmt: skip


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=10_000)), min_size=8, max_size=8
    ),
    st.sampled_from(["", " "]),
)
def test_parse_time_sums_units_in_order(parts: list[tuple[bool, int]], sep: str) -> None:
    """Any subset of the units, largest first, each with a count, parses to
    the sum: the property ngx_parse_time() is built around."""
    chosen = [
        (count, unit, scale)
        for (keep, count), (unit, scale) in zip(parts, _UNITS, strict=True)
        if keep
    ]
    if not chosen:
        return
    text = sep.join(f"{count}{unit}" for count, unit, _ in chosen)
    expected = sum(count * scale for count, _, scale in chosen)
    assert parse_time(text) == pytest.approx(expected)


VALID_SIZES = [
    ("0", 0),
    ("512", 512),
    ("1k", 1024),
    ("1K", 1024),
    ("8m", 8 * 1024 * 1024),
    ("8M", 8 * 1024 * 1024),
    ("1g", 1024**3),
    ("1G", 1024**3),
]

INVALID_SIZES = ["", "k", "1x", "1.5m", "-1", "1 k", "1kb", "1t", "١٢"]


@pytest.mark.parametrize(("text", "size"), VALID_SIZES)
def test_parse_size_valid(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", INVALID_SIZES)
def test_parse_size_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "value"), [("on", True), ("off", False), ("ON", True), ("Off", False)]
)
def test_parse_flag(text: str, value: bool) -> None:
    assert parse_flag(text) is value


@pytest.mark.parametrize("text", ["yes", "1", "", "onn"])
def test_parse_flag_invalid(text: str) -> None:
    with pytest.raises(ValueError, match='it must be "on" or "off"'):
        parse_flag(text)
