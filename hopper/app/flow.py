"""Flow control values: rate strings, concurrency keys and their checks.

The rules themselves (who may be claimed now) live in the database, in the
claim's transaction (``backends/flow_sql.py``, ``flow_rates.py``); this module turns what a
user wrote (``"10/s"``, ``"user:{user_id}"``) into checked values.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
MAX_KEY_LENGTH = 200          # characters of a concurrency or rate key
MAX_CONCURRENCY = 1_000_000   # a limit above this is a typo, not a limit
MAX_RATE = 1_000_000          # claims per period
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")


@dataclass(frozen=True)
class Rate:
    """At most ``amount`` claims per ``period_s`` seconds."""

    amount: int
    period_s: float

    def __str__(self) -> str:
        unit = {v: k for k, v in PERIODS.items()}[self.period_s]
        return f"{self.amount}/{unit}"


def parse_rate(value: object) -> Rate:
    """``"10/s"``, ``"300/m"`` or ``"5000/h"`` as a Rate; ValueError says what is wrong."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"a rate is N/s, N/m or N/h (e.g. \"10/s\"), got {value!r}")
    amount = int(match.group(1))
    if not 1 <= amount <= MAX_RATE:
        raise ValueError(f"a rate allows 1 to {MAX_RATE} claims per period, got {value!r}")
    return Rate(amount, PERIODS[match.group(2)])


def check_key(value: object, what: str) -> str:
    """A concurrency or rate key: a non-empty string of at most MAX_KEY_LENGTH characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_LENGTH:
        raise ValueError(f"{what} must be a non-empty string of at most {MAX_KEY_LENGTH}"
                         f" characters, got {value!r}")
    return value


def check_concurrency(value: object) -> int:
    """A concurrency limit: a whole number from 1 to MAX_CONCURRENCY."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY},"
                         f" got {value!r}")
    return value


def check_template(template: str) -> str:
    """A ``@task(concurrency_key=...)`` template: named fields only (``{user_id}``)."""
    check_key(template, "concurrency_key")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"concurrency_key {template!r} is not a valid format string: {exc}") from None
    if any(not f or f.isdigit() for f in fields):
        raise ValueError(f"concurrency_key {template!r}: name the task's args, e.g. {{user_id}}")
    return template


def format_key(template: str, args: dict, what: str = "concurrency_key") -> str:
    """The key of one task: ``template`` filled from its ``args``."""
    try:
        key = template.format_map(args)
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ValueError(f"{what} {template!r} cannot be filled from the task's args"
                         f" ({type(exc).__name__}: {exc})") from None
    return check_key(key, what)


def parse_rate_limits(value: object) -> dict[str, Rate]:
    """The ``rate_limits`` setting: a mapping of key to rate string."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"rate_limits must be a mapping of key to rate, got {value!r}")
    out = {}
    for key, rate in value.items():
        try:
            out[check_key(key, "a rate_limits key")] = parse_rate(rate)
        except ValueError as exc:
            raise ValueError(f"rate_limits.{key}: {exc}") from None
    return out


def flow_fields(task: Any, spec: Any, concurrency_key: object, concurrency: object,
                rate_key: object) -> None:
    """Set the flow-control fields of a new task (a ``NewTask``) from the enqueue's
    options, else from its registered ``spec``: keys given at enqueue are used as
    they are, the spec's are format strings filled from the args."""
    if concurrency_key is not None:
        ckey = check_key(concurrency_key, "concurrency_key")
    elif spec.concurrency_key is not None:
        ckey = format_key(spec.concurrency_key, task.args)
    else:
        ckey = None
    if rate_key is not None:
        rkey = check_key(rate_key, "rate_key")
    elif spec.rate_key is not None:
        rkey = format_key(spec.rate_key, task.args, "rate_key")
    else:
        rkey = None
    limit = concurrency if concurrency is not None else spec.concurrency
    if limit is not None:
        check_concurrency(limit)
        if ckey is None:
            raise ValueError("concurrency needs a concurrency_key to count tasks under")
    # A keyed task has both keys set ('' for the unused one): the claim's indexes
    # tell keyed from ordinary tasks by concurrency_key alone.
    task.concurrency_key = ckey or ""
    task.concurrency_limit = (limit or 1) if ckey else None
    task.rate_key = rkey or ""
