"""Reading request input strictly: JSON bodies, ids, query parameters, fields.

The checks here stop bad input at the edge with a 400 instead of letting it
reach SQLite, where it would surface as a 500 (integers beyond 64 bits, lone
UTF-16 surrogates, NaN and infinity, nesting deep enough to exhaust the stack).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, overload

from flask import request

from hopper.app.web.errors import bad_request, not_found

INT64_MAX = 2**63 - 1
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_DIGITS = re.compile(r"[0-9]{1,19}")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_body() -> Any:
    """The request body parsed as JSON; 400 when it is not."""
    raw = request.get_data(cache=True)
    if not raw:
        raise bad_request("malformed JSON", "the request body is empty")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise bad_request("malformed JSON", "nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise bad_request("malformed JSON", str(exc)) from None
    check_json_value(value)
    return value


def check_json_value(value: Any, depth: int = 0) -> None:
    """Reject values the database or JSON output cannot carry (non-finite floats,
    lone surrogates, absurd nesting)."""
    if depth > 64:
        raise bad_request("malformed JSON", "nested more than 64 levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_request("invalid number", "numbers must be finite")
    if isinstance(value, str):
        check_text(value, "string")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, "key")
            check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)


def check_text(value: str, field: str) -> str:
    """A string that encodes as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"invalid {field}", "text must be valid Unicode") from None
    return value


def path_id(raw: str, what: str = "task") -> int:
    """An id from the URL path: 400 when not a positive integer, 404 when out of range."""
    if not raw.isascii() or not raw.isdigit():
        raise bad_request(f"invalid {what} id", f"{what} ids are positive integers, got {raw!r}")
    value = int(raw)
    if value < 1 or value > INT64_MAX:
        raise not_found(f"no {what} {raw}")
    return value


@overload
def query_int(name: str, default: int, low: int = 1, high: int = INT64_MAX) -> int: ...
@overload
def query_int(name: str, default: None = None, low: int = 1,
              high: int = INT64_MAX) -> int | None: ...
def query_int(name: str, default: int | None = None, low: int = 1,
              high: int = INT64_MAX) -> int | None:
    """An integer query parameter within ``low..high``; 400 otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise bad_request(f"invalid {name}", f"{name} must be an integer from {low} to {high}")
    return int(raw)


def query_limit() -> int:
    """``limit``: 1..MAX_LIMIT, DEFAULT_LIMIT when absent."""
    return query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def query_text(name: str, choices: tuple[str, ...] | None = None) -> str | None:
    """A text query parameter, optionally restricted to ``choices``."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    check_text(raw, name)
    if choices is not None and raw not in choices:
        raise bad_request(f"invalid {name}", f"{name} must be one of {', '.join(choices)}")
    return raw


def field_int(body: dict, key: str, low: int, high: int) -> int | None:
    """An optional integer field of a JSON object within ``low..high``."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"invalid {key}", f"{key} must be an integer from {low} to {high}")
    return value


def field_number(body: dict, key: str, low: float, high: float,
                 exclusive_low: bool = False) -> float | None:
    """An optional finite number field within the given bounds."""
    value = body.get(key)
    if value is None:
        return None
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and (value > low if exclusive_low else value >= low) and value <= high)
    if not ok:
        bound = "greater than" if exclusive_low else "at least"
        raise bad_request(f"invalid {key}", f"{key} must be a number {bound} {low:g} "
                                            f"and at most {high:g}")
    return value


def field_text(body: dict, key: str, max_len: int = 200) -> str | None:
    """An optional non-empty string field of at most ``max_len`` characters."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise bad_request(f"invalid {key}",
                          f"{key} must be a non-empty string of at most {max_len} characters")
    return check_text(value, key)
