"""``watch:`` entries of settings.yaml, checked one by one.

A bad entry (a missing key, a bad pattern) is reported with its reason and
does not stop the other entries, nor the settings file from loading: entries
are live, and a typo in one must not take the daemon's other folders down.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopper.app.settings import Settings, SettingsError, check_queue_name, parse_duration
from hopper.app.watch.ignores import IgnoreRules, check_patterns

DEFAULT_SETTLE_S = 5.0


@dataclass(frozen=True)
class WatchEntry:
    """One folder trigger. ``error`` is set (and the rest may be partial) when the
    entry cannot be used as written."""

    path: Path
    task: str
    patterns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    queue: str | None = None
    settle_time: float = DEFAULT_SETTLE_S
    polling: bool = False
    recursive: bool = True
    on_moved: str | None = None
    on_deleted: str | None = None
    unique_prefix: str | None = None   # None: "watch:<task>"
    source: str = "settings"           # "settings" or the name of the plugin that added it
    error: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The entry's identity in the durable record: its task and its folder."""
        return f"{self.task}@{self.path}"

    def rules(self) -> IgnoreRules:
        """The built-in ignores plus this entry's own."""
        return IgnoreRules(self.path, self.ignore)

    def wants(self, rel: str) -> bool:
        """True when a file at ``rel`` matches ``patterns`` (by name or by path)."""
        if not self.patterns:
            return True
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in self.patterns)

    def describe(self) -> dict:
        """The entry as the API shows it."""
        return {"path": str(self.path), "task": self.task, "patterns": list(self.patterns),
                "ignore": list(self.ignore), "queue": self.queue, "settle_time": self.settle_time,
                "polling": self.polling, "recursive": self.recursive,
                "on_moved": self.on_moved, "on_deleted": self.on_deleted, "source": self.source}


def _name(value: Any, key: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{key}: expected a task name")
    return value


def parse_entry(raw: Any, base: Path, index: int, source: str = "settings") -> WatchEntry:
    """One entry; on a problem, an entry carrying ``error`` (never an exception)."""
    key = f"watch[{index}]"
    if not isinstance(raw, dict):
        return WatchEntry(path=base, task="?", source=source,
                          error=f"{key}: expected a mapping with path and task")
    path_text = raw.get("path")
    path = Path(str(path_text)) if path_text else base
    path = path if path.is_absolute() else (base / path).resolve()
    task: str = raw["task"] if isinstance(raw.get("task"), str) else "?"
    try:
        if not isinstance(path_text, str) or not path_text:
            raise SettingsError(f"{key}.path: expected a folder")
        _name(raw.get("task"), f"{key}.task", required=True)
        patterns = raw.get("patterns")
        if patterns is not None and (not isinstance(patterns, list) or not all(
                isinstance(p, str) and p for p in patterns)):
            raise SettingsError(f"{key}.patterns: expected a list of globs such as '*.nsp'")
        try:
            ignore = check_patterns(raw.get("ignore"), f"{key}.ignore")
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        queue = raw.get("queue")
        if queue is not None:
            check_queue_name(queue, f"{key}.queue")
        for flag in ("polling", "recursive"):
            if flag in raw and not isinstance(raw[flag], bool):
                raise SettingsError(f"{key}.{flag}: expected true or false")
        return WatchEntry(
            path=path, task=task, patterns=tuple(patterns or ()), ignore=ignore, queue=queue,
            settle_time=parse_duration(raw.get("settle_time", DEFAULT_SETTLE_S),
                                       f"{key}.settle_time"),
            polling=bool(raw.get("polling", False)), recursive=bool(raw.get("recursive", True)),
            on_moved=_name(raw.get("on_moved"), f"{key}.on_moved"),
            on_deleted=_name(raw.get("on_deleted"), f"{key}.on_deleted"),
            unique_prefix=raw.get("unique_prefix"), source=source)
    except SettingsError as exc:
        return WatchEntry(path=path, task=task, source=source, error=str(exc))


def entries_from(settings: Settings) -> list[WatchEntry]:
    """The ``watch:`` entries of ``settings`` (a non-list value is one bad entry)."""
    raw = settings.raw.get("watch")
    base = settings.path.parent
    if raw is None:
        return []
    if not isinstance(raw, list):
        return [WatchEntry(path=base, task="?", error="watch: expected a list of entries")]
    return [parse_entry(item, base, i) for i, item in enumerate(raw)]
