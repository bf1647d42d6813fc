"""PostgreSQL backend: for workers on several machines sharing one queue.

Claims use ``FOR UPDATE SKIP LOCKED``; transitions lock the ancestors of the
tasks they touch first (``row_locks``, see states.py), so each level of a tree
settles exactly once. Enqueues send a
NOTIFY that idle workers LISTEN for, with the same slow poll as a fallback.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import psycopg

from hopper.app.backends.base import Claimed, NewTask
from hopper.app.backends.sql import CLAIM_RETURNING, INSERT, SqlBackend, insert_params
from hopper.app.migrate import apply_postgres_migrations

CHANNEL = "hopper_tasks"

# One queue's ready tasks in claim order (the partial index tasks_queue_ready
# after its leading ``queue = %s``), locked so concurrent claims skip them.
_PICK = ("SELECT id, priority, run_after FROM tasks"
         " WHERE status = 'queued' AND queue = %s AND run_after <= %s"
         " ORDER BY priority DESC, run_after, id LIMIT %s FOR UPDATE SKIP LOCKED")


@lru_cache(maxsize=64)
def _claim_sql(queues: int) -> str:
    """The claim of ``queues`` queues at once: each queue's best tasks, then the
    best of those across queues (rows locked but not taken stay queued)."""
    if queues == 1:
        picked = _PICK.replace("id, priority, run_after", "id", 1)
    else:
        # FOR UPDATE is not allowed on a UNION's own branches; in a subquery it is.
        union = " UNION ALL ".join(f"SELECT * FROM ({_PICK}) AS q{i}" for i in range(queues))
        picked = (f"SELECT id FROM ({union}) AS picked"
                  " ORDER BY priority DESC, run_after, id LIMIT %s")
    return ("UPDATE tasks SET status = 'running', worker = %s, lease_until = %s, started_at = %s,"
            f" attempts = attempts + 1 WHERE id IN ({picked}) {CLAIM_RETURNING}")

class PostgresBackend(SqlBackend):
    """The multi-machine backend."""

    placeholder = "%s"
    row_locks = True
    # A value PostgreSQL refuses: a NUL in text, an invalid byte sequence, a value too long.
    data_errors = (psycopg.DataError,)
    minute_sql = "FLOOR(finished_at / 60) * 60"
    row_lock = " FOR UPDATE"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def _conn(self) -> psycopg.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or local.conn.closed:
            local.conn = psycopg.connect(self.url, autocommit=True)
            local.pid = os.getpid()
        return local.conn

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection]:
        conn = self._conn()
        with conn.transaction():
            yield conn

    def migrate(self) -> list[str]:
        return apply_postgres_migrations(self._conn())

    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        now = time.time()
        with self._write() as conn:
            if any(t.unique_key is not None for t in tasks):
                results = [self._insert_one(conn, t, now) for t in tasks]
            else:
                cur = conn.cursor()
                cur.executemany(self._sql(INSERT + " RETURNING id"),
                                [insert_params(t, now) for t in tasks], returning=True)
                results = []
                while True:
                    results.append((cur.fetchone()[0], True))
                    if not cur.nextset():
                        break
            self._insert_tags(conn, tasks, results)
            if any(created for _, created in results):
                conn.execute(f"NOTIFY {CHANNEL}")  # delivered when this transaction commits
        return results

    def _claim(self, conn, worker_id: str, limit: int, lease_s: float,
               targets: list[tuple[str, int]]) -> list[Claimed]:
        now = time.time()
        params: list = [worker_id, now + lease_s, now]
        for name, n in targets:
            params += (name, now, n)
        if len(targets) > 1:
            params.append(limit)
        rows = conn.execute(_claim_sql(len(targets)), params).fetchall()
        rows.sort(key=lambda r: (-r[8], r[9], r[0]))
        return [Claimed(*row[:8]) for row in rows]

    def _wake_listeners(self, conn) -> None:
        conn.execute(f"NOTIFY {CHANNEL}")  # delivered when this transaction commits

    def listener(self) -> "NotifyListener":
        return NotifyListener(self.url)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the server cannot be reached (refused, down, restarting)."""
    return isinstance(exc, psycopg.OperationalError)


class NotifyListener:
    """An idle worker's wait for a NOTIFY (or the timeout)."""

    def __init__(self, url: str):
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """True if a notification arrived before ``timeout`` seconds passed."""
        return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        self._conn.close()
