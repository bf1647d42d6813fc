"""SQLite backend: WAL mode, one writer at a time.

Every write is a short ``BEGIN IMMEDIATE`` transaction, so two processes never
interleave a read-then-write and a claim is atomic without row locks.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from app.backends.base import Claimed, NewTask
from app.backends.sql import INSERT, SqlBackend, insert_params
from app.migrate import apply_sqlite_migrations
from app.settings import sqlite_path

# The ORDER BY matches the partial index tasks_ready exactly: O(log n) per claim.
_CLAIM = """
UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,
       attempts = attempts + 1
 WHERE id IN (SELECT id FROM tasks WHERE status = 'queued' AND run_after <= ?
              ORDER BY priority DESC, run_after, id LIMIT ?)
RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, priority, run_after
"""


class SqliteBackend(SqlBackend):
    """The embedded default backend."""

    def __init__(self, url: str, durability: str = "full"):
        self.url = url
        self.path = sqlite_path(url)
        self.synchronous = "FULL" if durability == "full" else "NORMAL"
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # never share a connection across fork
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _run_many(self, conn, statement: str, rows: list[tuple]) -> None:
        conn.executemany(statement, rows)

    def migrate(self) -> list[str]:
        return apply_sqlite_migrations(self._conn())

    def backup(self, target: Path) -> None:
        """A consistent online copy of the database file."""
        dest = sqlite3.connect(target)
        try:
            self._conn().backup(dest)
        finally:
            dest.close()

    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        now = time.time()
        with self._write() as conn:
            if any(t.unique_key is not None for t in tasks):
                return [self._insert_one(conn, t, now) for t in tasks]
            # One writer at a time: the rows of one executemany get consecutive ids.
            conn.executemany(INSERT, [insert_params(t, now) for t in tasks])
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            return [(last - len(tasks) + 1 + i, True) for i in range(len(tasks))]

    def _claim(self, conn, worker_id: str, limit: int, lease_s: float) -> list[Claimed]:
        now = time.time()  # after recording outcomes: a continuation enqueued just now is due
        rows = conn.execute(_CLAIM, (worker_id, now + lease_s, now, now, limit)).fetchall()
        # RETURNING yields rows in table order; run them in claim order.
        rows.sort(key=lambda r: (-r[7], r[8], r[0]))
        return [Claimed(*row[:7]) for row in rows]
