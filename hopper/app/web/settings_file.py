"""Changing live keys in settings.yaml on disk, atomically.

Round-trip: pyyaml drops comments, so the file is edited as text when it can
be. A top-level ``workers: N`` line is rewritten in place by a regular
expression, keeping its trailing comment, every other line and every other
key byte for byte; ``queues.NAME.concurrency`` is changed in (or added to) the
``queues:`` block the same way (``settings_queues``). The edited text must
parse to exactly the old settings plus the change; when it does not (a layout
the text edit does not know, or a missing ``workers`` key), the file is parsed
and dumped again with the change. That fallback loses comments and the
response says so (``comments_preserved: false``).

The new text is validated as a whole before it is written, then written to a
temporary file in the same folder, fsynced and renamed over the old file, so
the daemon's watcher never reads a half-written file.
"""
from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hopper.app import settings as settings_mod
from hopper.app.web.settings_queues import merged_queues, with_queue_limits

_WORKERS_VALUE = re.compile(r"^workers:[ \t]*(?P<value>[^\s#]+)", re.MULTILINE)
_lock = threading.Lock()  # one writer per process; flock below covers other processes


@dataclass
class Written:
    """What a PATCH wrote to disk."""

    path: Path
    changes: dict
    comments_preserved: bool
    settings: settings_mod.Settings


def with_workers(text: str, workers: int) -> tuple[str, bool]:
    """The settings text with ``workers`` set; True when comments survived."""
    matches = list(_WORKERS_VALUE.finditer(text))
    if len(matches) == 1:
        match = matches[0]
        return text[:match.start("value")] + str(workers) + text[match.end("value"):], True
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise settings_mod.SettingsError("expected a mapping of keys at the top level")
    raw["workers"] = workers
    return yaml.safe_dump(raw, sort_keys=False), False


def write_workers(path: Path, workers: int) -> Written:
    """Set ``workers`` in the settings file at ``path``; SettingsError if the
    resulting file would not load (the file is then left untouched)."""
    return write_live(path, workers=workers)


def write_live(path: Path, workers: int | None = None,
               queue_limits: dict[str, int] | None = None) -> Written:
    """Set ``workers`` and/or ``queues.NAME.concurrency`` in the settings file at
    ``path`` in one atomic write; SettingsError if the resulting file would not
    load (the file is then left untouched)."""
    path = Path(path)
    queue_limits = queue_limits or {}
    with _lock, open(path.with_name(f".{path.name}.lock"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        # No file yet (built-in defaults): the first change writes one where the daemon looks.
        text = path.read_text() if path.exists() else ""
        expected = _mapping(text)
        if workers is not None:
            expected["workers"] = workers
        if queue_limits:
            expected["queues"] = merged_queues(expected.get("queues"), queue_limits)
        new_text, preserved = text, True
        if workers is not None:
            new_text, preserved = with_workers(new_text, workers)
        edited: str | None = new_text
        if queue_limits and preserved:
            edited = with_queue_limits(new_text, queue_limits)
        if not preserved or edited is None or _mapping(edited) != expected:
            new_text, preserved = yaml.safe_dump(expected, sort_keys=False), False
        else:
            new_text = edited
        new_settings = settings_mod.validate(_mapping(new_text), path)
        _replace(path, new_text)
    changes: dict[str, Any] = {k: v for k, v in (("workers", workers), ) if v is not None}
    if queue_limits:
        changes["queues"] = {name: {"concurrency": n} for name, n in queue_limits.items()}
    return Written(path, changes, preserved, new_settings)


def _mapping(text: str) -> dict:
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise settings_mod.SettingsError("expected a mapping of keys at the top level")
    return raw


def _replace(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the folder is synced.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
