"""Outcomes cleaned or cut to what every engine stores.

PostgreSQL refuses a NUL byte in text; a huge result would bloat every read of
the task. Such values are still recorded, cleaned or cut with a note saying so,
never dropped (a finished attempt must not run again because its outcome could
not be written). The limits live in ``app/defaults.py``.
"""
from __future__ import annotations

import json

from hopper.app import defaults
from hopper.app.backends.base import Outcome


def storable_error(error: str | None) -> str | None:
    """An error text every engine stores: NUL bytes shown as ``\\x00``, and a very
    long text cut in the middle with a note (the head and the tail are what matter)."""
    if error is None:
        return None
    # Lone surrogates (undecodable file names) cannot be encoded: shown as \udcXX.
    error = error.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    limit = defaults.MAX_ERROR_CHARS
    if len(error) > limit:
        cut = len(error) - limit
        error = (f"{error[:limit // 2]}\n[... {cut} characters cut: the error was longer than"
                 f" {limit} characters ...]\n{error[-limit // 2:]}")
    return error


def storable_result(result: str | None) -> str | None:
    """A result's JSON text as stored: a NUL escaped, and a result larger than
    MAX_RESULT_BYTES replaced by a JSON note saying so (with its start)."""
    if result is None:
        return None
    if "\x00" in result:
        result = result.replace("\x00", "\\u0000")  # only ever inside a JSON string
    if len(result) <= defaults.MAX_RESULT_BYTES // 4:
        return result  # at most 4 bytes a character: small enough without encoding it
    size = len(result.encode("utf-8", "surrogatepass"))
    if size <= defaults.MAX_RESULT_BYTES:
        return result
    return json.dumps({
        "truncated": True,
        "note": f"the result was {size} bytes of JSON, more than the {defaults.MAX_RESULT_BYTES}"
                " bytes stored; it was cut",
        "head": result[:1000].encode("utf-8", "backslashreplace").decode("utf-8"),
    })


def storable(outcome: Outcome) -> Outcome:
    """The outcome with its error and result cleaned or cut to what the database stores."""
    outcome.error = storable_error(outcome.error)
    outcome.result = storable_result(outcome.result)
    return outcome
