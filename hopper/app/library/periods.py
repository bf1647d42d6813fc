"""Date filters of the library: a year, month, day or time as a range of ``taken_at``.

``taken_at`` is stored as ISO text (``YYYY-MM-DDTHH:MM:SS``, local wall-clock
time as cameras record it), so a bound is ISO text too and compares as text.
``taken_to=2021-03`` means up to the end of March 2021: the exclusive bound is
the start of the next period.
"""
from __future__ import annotations

import datetime as dt
import re

_PERIOD = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?)?)?")
_UNITS = ("year", "month", "day", "minute", "minute", "second")


class InvalidPeriod(ValueError):
    """Not a year, month, day or time in ISO form."""


def _parse(text: str) -> tuple[dt.datetime, str]:
    match = _PERIOD.fullmatch(text.strip())
    if not match:
        raise InvalidPeriod(f"{text!r} is not a date: use YYYY, YYYY-MM, YYYY-MM-DD "
                            "or YYYY-MM-DDTHH:MM[:SS]")
    parts = [int(p) if p else None for p in match.groups()]
    given = sum(p is not None for p in parts)
    year, month, day, hour, minute, second = (p if p is not None else d
                                              for p, d in zip(parts, (1, 1, 1, 0, 0, 0),
                                                              strict=True))
    try:
        start = dt.datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise InvalidPeriod(f"{text!r} is not a valid date: {exc}") from None
    return start, _UNITS[given - 1]


def period_start(text: str) -> str:
    """The first instant of the period, as ``taken_at`` text (inclusive bound)."""
    start, _ = _parse(text)
    return start.isoformat()


def period_end(text: str) -> str:
    """The first instant after the period, as ``taken_at`` text (exclusive bound)."""
    start, unit = _parse(text)
    if unit == "year":
        after = (start.year + 1, 1, 1)
        return "~" if after[0] > 9999 else dt.datetime(*after).isoformat()
    if unit == "month":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return "~" if year > 9999 else dt.datetime(year, month, 1).isoformat()
    step = {"day": dt.timedelta(days=1), "minute": dt.timedelta(minutes=1),
            "second": dt.timedelta(seconds=1)}[unit]
    try:
        return (start + step).isoformat()
    except OverflowError:
        return "~"  # sorts after every ISO date: no upper bound
