"""The settings keys Hopper knows, and the refusal of any other.

A misspelt key (``worker: 4``, ``retention.succeded: 7d``) would otherwise be
ignored silently and its default used; refusing it, with the closest known key
as a suggestion, makes the mistake visible at start and on a live change.

``KNOWN`` mirrors the settings file: a set lists a mapping's keys, a nested
dict a section, ``ANY_NAME`` a mapping whose keys are the user's own names
(queue names) with the given keys under each, and a one-element list a list
whose mappings have the given keys (schedule entries).
"""
from __future__ import annotations

import difflib
from typing import Any

ANY_NAME = "*"

# The keys the scheduler reads; a new schedule option is added here with its code.
SCHEDULE_KEYS = frozenset({"name", "cron", "every", "args"})
# The keys of a ``watch:`` entry (folder triggers).
WATCH_KEYS = frozenset({"path", "task", "patterns", "ignore", "queue", "settle_time", "polling",
                        "recursive", "on_moved", "on_deleted"})

KNOWN: dict[str, Any] = {
    "database": None,
    "durability": None,
    "workers": None,
    "eager": None,
    "lease": None,
    "shutdown_grace": None,
    "server": {"bind": None, "threads": None, "allowed_hosts": None},
    "auth": {"token": None},
    "retention": {"succeeded": None, "failed": None},
    "tasks": {"modules": None, "flask_app": None},
    "queues": {ANY_NAME: {"concurrency": None}},
    "schedules": [SCHEDULE_KEYS],
    "watch": [WATCH_KEYS],
    "rate_limits": {ANY_NAME: None},
}


class UnknownKey(ValueError):
    """A settings key Hopper does not know; the message names it and suggests one."""


def check(raw: dict, extra: dict | None = None) -> None:
    """Raise UnknownKey for the first key in ``raw`` that is not a known setting;
    ``extra`` adds sections (plugins' own)."""
    _check_mapping(raw, {**KNOWN, **(extra or {})}, "")


def _check_mapping(raw: dict, known: dict, prefix: str) -> None:
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if ANY_NAME in known:
            inner = known[ANY_NAME]
        elif key in known:
            inner = known[key]
        else:
            raise UnknownKey(_message(dotted, str(key), known, prefix))
        _check_value(value, inner, dotted)


def _check_value(value: Any, inner: Any, dotted: str) -> None:
    # Wrong types (a list where a mapping belongs) are left to validation, which
    # says what it expected; here only the names are checked.
    if isinstance(inner, dict) and isinstance(value, dict):
        _check_mapping(value, inner, dotted + ".")
    elif isinstance(inner, list) and isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                keys = {k: None for k in inner[0]}
                _check_mapping(item, keys, f"{dotted}[{index}].")


def _message(dotted: str, key: str, known: dict, prefix: str) -> str:
    names = [str(k) for k in known if k != ANY_NAME]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    listed = ", ".join(sorted(names))
    return f"unknown setting '{dotted}'{hint}; known keys here: {listed}"
