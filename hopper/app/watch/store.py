"""The durable side of folder triggers: ``watch_files`` (what each entry has
started) and ``watch_quiet`` (paths tasks move or write themselves), migration 0012.

Every call is one short statement or transaction on the backend's connection, so
the watcher never holds a write lock while it walks a folder.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from hopper.app.backends.protocols import Tables


@dataclass(frozen=True)
class Recorded:
    """A file an entry has started: its size and mtime then."""

    size: int
    mtime_ns: int


class WatchStore:
    """Reads and writes the watch tables through the backend's :class:`Tables` protocol."""

    def __init__(self, backend: Tables):
        self.backend = backend

    # -- watch_files -------------------------------------------------------------
    def recorded(self, entry: str) -> dict[str, Recorded]:
        """Every file ``entry`` has started, by relative path."""
        rows = self.backend.fetch("SELECT path, size, mtime_ns FROM watch_files WHERE entry = ?",
                                  (entry,))
        return {path: Recorded(size, mtime_ns) for path, size, mtime_ns in rows}

    def get(self, entry: str, path: str) -> Recorded | None:
        """The record of one file, or None."""
        rows = self.backend.fetch("SELECT size, mtime_ns FROM watch_files"
                                  " WHERE entry = ? AND path = ?", (entry, path))
        return Recorded(*rows[0]) if rows else None

    def record(self, entry: str, rows: list[tuple[str, int, int, int | None]]) -> None:
        """Record ``(path, size, mtime_ns, task_id)`` rows as started (replacing older ones)."""
        if not rows:
            return
        now = time.time()
        b = self.backend
        with b.transaction() as conn:
            b.run_many(conn, "INSERT INTO watch_files (entry, path, size, mtime_ns, task_id,"
                              " started_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (entry, path)"
                              " DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
                              " task_id = excluded.task_id, started_at = excluded.started_at",
                        [(entry, p, s, m, t, now) for p, s, m, t in rows])

    def rename(self, entry: str, src: str, dst: str) -> list[str]:
        """A move seen live: ``src`` (a file, or a folder and everything below it) is now
        ``dst``. The relative paths of the recorded files that moved, as they were."""
        b = self.backend
        prefix = src + "/"
        moved = [p for (p,) in b.fetch(
            "SELECT path FROM watch_files WHERE entry = ? AND (path = ? OR substr(path, 1, ?) = ?)",
            (entry, src, len(prefix), prefix))]
        if not moved:
            return []
        with b.transaction() as conn:
            for old in moved:
                new = dst + old[len(src):]
                b.run(conn, "DELETE FROM watch_files WHERE entry = ? AND path = ?", (entry, new))
                b.run(conn, "UPDATE watch_files SET path = ? WHERE entry = ? AND path = ?",
                       (new, entry, old))
        return moved

    def forget(self, entry: str, path: str) -> list[str]:
        """Drop the records of ``path`` (a file or a folder's files); those dropped."""
        b = self.backend
        prefix = path + "/"
        gone = [p for (p,) in b.fetch(
            "SELECT path FROM watch_files WHERE entry = ? AND (path = ? OR substr(path, 1, ?) = ?)",
            (entry, path, len(prefix), prefix))]
        if gone:
            with b.transaction() as conn:
                b.run_many(conn, "DELETE FROM watch_files WHERE entry = ? AND path = ?",
                            [(entry, p) for p in gone])
        return gone

    # -- watch_quiet -------------------------------------------------------------
    def hush(self, paths: list[str], until: float) -> None:
        """Mark absolute ``paths`` quiet until ``until`` (a later mark wins)."""
        b = self.backend
        with b.transaction() as conn:
            b.run_many(conn, "INSERT INTO watch_quiet (path, until) VALUES (?, ?)"
                              " ON CONFLICT (path) DO UPDATE SET until = excluded.until"
                              " WHERE watch_quiet.until < excluded.until",
                        [(p, until) for p in paths])

    def quiet_among(self, paths: list[str], now: float | None = None) -> set[str]:
        """Those of ``paths`` (absolute) a task has marked quiet, or that lie below a
        quiet folder."""
        if not paths:
            return set()
        now = time.time() if now is None else now
        rows = self.backend.fetch("SELECT path FROM watch_quiet WHERE until > ?", (now,))
        marks = [r[0] for r in rows]
        return {p for p in paths if any(p == m or p.startswith(m.rstrip("/") + "/")
                                        for m in marks)}

    def extend(self, paths: list[str], until: float) -> None:
        """Push back the end of the marks of ``paths`` still unused (a used one is not
        made again: the event it was for has been silenced)."""
        b = self.backend
        with b.transaction() as conn:
            b.run_many(conn, "UPDATE watch_quiet SET until = ? WHERE path = ? AND until < ?",
                       [(until, p, until) for p in paths])

    def unhush(self, paths: list[str]) -> None:
        """The watcher has acted on these quiet paths: their marks are used up, so the
        next event on them (a user's own move a moment later) is an event again."""
        if not paths:
            return
        b = self.backend
        with b.transaction() as conn:
            b.run_many(conn, "DELETE FROM watch_quiet WHERE path = ?", [(p,) for p in paths])

    def prune_quiet(self, now: float | None = None) -> None:
        """Forget expired quiet marks."""
        now = time.time() if now is None else now
        b = self.backend
        with b.transaction() as conn:
            b.run(conn, "DELETE FROM watch_quiet WHERE until <= ?", (now,))
