"""The settings page's plain-words view of the library and retention settings
(``30 days``, ``5 s``), rather than the seconds they are stored as."""
from __future__ import annotations

from hopper.app.settings import Settings

_UNITS = ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s"))


def duration_words(seconds: float | None) -> str:
    """``2592000`` → ``30 days``; ``5`` → ``5 s``; ``5400`` → ``1 h 30 min``;
    ``0.5`` → ``0.5 s``."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds:g} s"
    parts, rest = [], int(round(seconds))
    for size, one, many in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return " ".join(parts[:2]) or "0 s"


def _switch(value) -> str:
    return "on" if value else "off"


def library_rows(s: Settings) -> list[tuple[str, str, str]]:
    """(setting, value in words, what it does) for every library setting.

    The library's fields come from its plugin's parsed ``library:`` section, read
    through ``Settings`` like the core's (``library_polling``, ``library_ignore``)."""
    ignore = s.library_ignore
    return [
        ("library.inbox", str(s.inbox), "the folder whose files are ingested"),
        ("library.root", str(s.library_root), "where ingested files are organized"),
        ("library.quarantine", str(s.quarantine), "files that cannot be ingested, with a reason"),
        ("library.layout", s.layout, "the path of a file under the root"),
        ("library.settle_time", duration_words(s.settle_time),
         "a file unchanged this long (and closed by its writer) is ingested"),
        ("library.polling", _switch(s.library_polling),
         "on: look for changes by scanning (network shares); off: the kernel tells"),
        ("library.rescan_interval", duration_words(s.rescan_interval),
         "how often the whole inbox is scanned for files missed meanwhile"),
        ("library.ignore", ", ".join(ignore) if ignore else "the built-in ignores only",
         "patterns (gitignore-style) left untouched in the inbox"),
        ("retention.succeeded", duration_words(s.retention_succeeded),
         "succeeded tasks are kept this long"),
        ("retention.failed", duration_words(s.retention_failed), "failed tasks are kept this long"),
    ]
