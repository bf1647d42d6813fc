"""SQLite backend: WAL mode, one writer at a time, plain SQL.

Every write is a short ``BEGIN IMMEDIATE`` transaction, so two processes never
interleave a read-then-write and a claim is atomic without row locks.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from app.backends.base import (
    FINISHED, TASK_COLUMNS, UNFINISHED, Backend, Claimed, NewTask, Outcome, TaskConflict,
    WorkerRow, task_dict,
)
from app.migrate import apply_migrations
from app.settings import sqlite_path

BUSY_TIMEOUT_MS = 30000   # how long any statement waits for a lock before giving up
_FAST_BUSY_S = 0.2        # how long _begin_immediate polls the write lock itself

_COLS = ", ".join(TASK_COLUMNS)
_UNFINISHED_SQL = "('queued', 'running', 'waiting')"

_INSERT = (
    "INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts, timeout,"
    " unique_key, parent_id, continuation, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_UNIQUE = _INSERT + (
    " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL"
    f" AND status IN {_UNFINISHED_SQL} DO NOTHING RETURNING id"
)
_CLAIM = f"""
UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,
       attempts = attempts + 1
 WHERE id IN (SELECT id FROM tasks INDEXED BY tasks_ready
              WHERE status = 'queued' AND run_after <= ?
              ORDER BY priority DESC, run_after, id LIMIT ?)
RETURNING id, name, args, attempts, max_attempts, timeout, parent_id
"""
_READY = ("SELECT 1 FROM tasks INDEXED BY tasks_ready"
          " WHERE status = 'queued' AND run_after <= ? LIMIT 1")
_SUCCEED = f"""
UPDATE tasks SET status = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id)
                          THEN 'waiting' ELSE 'succeeded' END,
       result = ?, started_at = ?, finished_at = ?, lease_until = NULL
 WHERE id = ? AND status = 'running' AND worker = ?
RETURNING status, parent_id
"""
# Many successes in one statement: ``{rows}`` is ``(?,?,?,?)`` repeated, one per
# outcome (id, result, started_at, finished_at).
_SUCCEED_MANY = """
UPDATE tasks SET status = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id)
                          THEN 'waiting' ELSE 'succeeded' END,
       result = v.column2, started_at = v.column3, finished_at = v.column4, lease_until = NULL
  FROM (VALUES {rows}) AS v
 WHERE tasks.id = v.column1 AND tasks.status = 'running' AND tasks.worker = ?
RETURNING id, status, parent_id
"""
_FAIL = """
UPDATE tasks SET status = CASE WHEN attempts < max_attempts AND ? IS NOT NULL
                          THEN 'queued' ELSE 'failed' END,
       run_after = COALESCE(?, run_after), error = ?, started_at = COALESCE(?, started_at),
       finished_at = CASE WHEN attempts < max_attempts AND ? IS NOT NULL THEN NULL ELSE ? END,
       lease_until = NULL
 WHERE id = ? AND status = 'running' AND worker = ?
RETURNING status, parent_id
"""
_SETTLE_PARENT = f"""
UPDATE tasks SET status = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id
                                            AND c.status IN ('failed', 'cancelled'))
                          THEN 'failed' ELSE 'succeeded' END,
       error = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id
                                 AND c.status IN ('failed', 'cancelled'))
                    THEN 'one or more children failed or were cancelled' ELSE error END,
       finished_at = ?
 WHERE id = ? AND status = 'waiting'
   AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id
                   AND c.status IN {_UNFINISHED_SQL})
RETURNING status, parent_id, continuation, queue
"""


class SqliteBackend(Backend):
    """The embedded default backend."""

    def __init__(self, url: str, durability: str = "full"):
        self.url = url
        self.path = sqlite_path(url)
        self.synchronous = "FULL" if durability == "full" else "NORMAL"
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # -- connections -------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=OFF")
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        _begin_immediate(conn)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def migrate(self) -> list[str]:
        return apply_migrations(self._conn(), "sqlite")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()

    def ping(self) -> None:
        self._conn().execute("SELECT 1 FROM tasks LIMIT 1").fetchall()

    def backup(self, target: Path) -> None:
        """A consistent online copy of the database file."""
        dest = sqlite3.connect(target)
        try:
            self._conn().backup(dest)
        finally:
            dest.close()

    # -- producing ---------------------------------------------------------
    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        now = time.time()
        plain = all(t.unique_key is None for t in tasks)
        if plain and len(tasks) == 1:
            # One plain INSERT in autocommit is its own (durable) transaction: no
            # BEGIN/COMMIT round trips and no last_insert_rowid() query.
            return [(self._conn().execute(_INSERT, _insert_params(tasks[0], now)).lastrowid, True)]
        with self._write() as conn:
            if plain:
                conn.executemany(_INSERT, [_insert_params(t, now) for t in tasks])
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                return [(last - len(tasks) + 1 + i, True) for i in range(len(tasks))]
            return [self._insert_one(conn, t, now) for t in tasks]

    def _insert_one(self, conn: sqlite3.Connection, task: NewTask, now: float) -> tuple[int, bool]:
        if task.unique_key is None:
            conn.execute(_INSERT, _insert_params(task, now))
            return conn.execute("SELECT last_insert_rowid()").fetchone()[0], True
        row = conn.execute(_INSERT_UNIQUE, _insert_params(task, now)).fetchone()
        if row:
            return row[0], True
        existing = conn.execute(
            f"SELECT id FROM tasks WHERE unique_key = ? AND status IN {_UNFINISHED_SQL}",
            (task.unique_key,)).fetchone()
        return existing[0], False

    # -- consuming ---------------------------------------------------------
    def finish_and_claim(self, worker_id: str, outcomes: list[Outcome], release: list[int],
                         limit: int, lease_s: float) -> list[Claimed]:
        now = time.time()
        if not outcomes and not release:
            if limit <= 0:
                return []
            # Nothing to record: look before taking the write lock, so an idle poll
            # or a worker that lost the race for a wake-up costs one read, no write.
            if self._conn().execute(_READY, (now,)).fetchone() is None:
                return []
            if self.synchronous == "FULL":
                return self._claim_unsynced(worker_id, limit, lease_s, now)
        with self._write() as conn:
            if len(outcomes) > 1:
                self._record_many(conn, worker_id, outcomes)
            else:
                for outcome in outcomes:
                    self._record(conn, worker_id, outcome)
            if release:
                conn.executemany(
                    "UPDATE tasks SET status = 'queued', attempts = attempts - 1, worker = NULL,"
                    " lease_until = NULL, started_at = NULL"
                    " WHERE id = ? AND status = 'running' AND worker = ?",
                    [(task_id, worker_id) for task_id in release])
            if limit <= 0:
                return []
            rows = conn.execute(_CLAIM, (worker_id, now + lease_s, now, now, limit)).fetchall()
        return [Claimed(*row) for row in rows]

    def _claim_unsynced(self, worker_id: str, limit: int, lease_s: float,
                        now: float) -> list[Claimed]:
        """A claim with nothing recorded, committed without waiting for fsync.

        This loosens nothing: if a power cut loses the claim, the task is still
        queued and runs again, exactly as if this worker had died while running
        it; and the commit that records the task's outcome (synchronous=FULL)
        syncs the write-ahead log up to and including this claim. It takes an
        fsync off the path from enqueue to task start.
        """
        conn = self._conn()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._write() as conn:
                rows = conn.execute(_CLAIM, (worker_id, now + lease_s, now, now, limit)).fetchall()
        finally:
            conn.execute("PRAGMA synchronous = FULL")
        return [Claimed(*row) for row in rows]

    def _record(self, conn: sqlite3.Connection, worker_id: str, outcome: Outcome) -> None:
        if outcome.ok:
            row = conn.execute(_SUCCEED, (outcome.result, outcome.started_at, outcome.finished_at,
                                          outcome.task_id, worker_id)).fetchone()
        else:
            row = self._fail(conn, outcome.task_id, worker_id, outcome.error, outcome.retry_at,
                             outcome.started_at, outcome.finished_at)
        if row is None:
            return  # cancelled or rescued meanwhile: the newer state wins
        status, parent_id = row
        if status == "waiting":
            self._settle(conn, outcome.task_id)
        elif status != "queued" and parent_id is not None:
            self._settle(conn, parent_id)

    def _record_many(self, conn: sqlite3.Connection, worker_id: str,
                     outcomes: list[Outcome]) -> None:
        """Record a batch of outcomes: all successes in one UPDATE, then failures one by one.

        One statement instead of one per task shortens the transaction that
        holds the database's single write lock (the drain's bottleneck).
        """
        params: list = []
        failed = []
        for outcome in outcomes:
            if outcome.ok:
                params += (outcome.task_id, outcome.result, outcome.started_at,
                           outcome.finished_at)
            else:
                failed.append(outcome)
        if params:
            rows = ",".join(["(?,?,?,?)"] * (len(params) // 4))
            params.append(worker_id)
            for task_id, status, parent_id in conn.execute(
                    _SUCCEED_MANY.format(rows=rows), params).fetchall():
                # As in _record: a parent waits for its children; a child may finish its parent.
                if status == "waiting":
                    self._settle(conn, task_id)
                elif parent_id is not None:
                    self._settle(conn, parent_id)
        for outcome in failed:
            self._record(conn, worker_id, outcome)

    @staticmethod
    def _fail(conn, task_id, worker_id, error, retry_at, started_at=None, finished_at=None):
        finished_at = finished_at or time.time()
        return conn.execute(_FAIL, (retry_at, retry_at, error, started_at, retry_at, finished_at,
                                    task_id, worker_id)).fetchone()

    def _settle(self, conn: sqlite3.Connection, parent_id: int) -> None:
        """Finish a waiting parent whose children are all done, exactly once."""
        while parent_id is not None:
            row = conn.execute(_SETTLE_PARENT, (time.time(), parent_id)).fetchone()
            if row is None:
                return
            status, grandparent, continuation, queue = row
            if continuation:
                self._insert_one(conn, NewTask(
                    name=continuation, queue=queue,
                    args={"parent_id": parent_id, "parent_status": status},
                    unique_key=f"continuation:{parent_id}"), time.time())
            parent_id = grandparent

    def fail_attempt(self, task_id: int, worker_id: str, error: str, retry_at: float | None) -> None:
        with self._write() as conn:
            row = self._fail(conn, task_id, worker_id, error, retry_at)
            if row and row[0] == "failed" and row[1] is not None:
                self._settle(conn, row[1])

    def requeue_worker(self, worker_id: str, current_task: int | None, error: str,
                       retry_at: float | None, count_all: bool = False) -> int:
        with self._write() as conn:
            touched = 0
            counted = [current_task] if current_task is not None else []
            if count_all:
                counted = [r[0] for r in conn.execute(
                    "SELECT id FROM tasks WHERE status = 'running' AND worker = ?", (worker_id,))]
            for task_id in counted:
                row = self._fail(conn, task_id, worker_id, error, retry_at)
                touched += row is not None
                if row and row[0] == "failed" and row[1] is not None:
                    self._settle(conn, row[1])
            touched += conn.execute(
                "UPDATE tasks SET status = 'queued', attempts = attempts - 1, worker = NULL,"
                " lease_until = NULL, started_at = NULL WHERE status = 'running' AND worker = ?",
                (worker_id,)).rowcount
            return touched

    def renew_leases(self, worker_ids: list[str], lease_s: float) -> None:
        if not worker_ids:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE tasks SET lease_until = ? WHERE status = 'running' AND worker = ?",
                [(time.time() + lease_s, w) for w in worker_ids])

    def expired_leases(self) -> list[tuple[int, str]]:
        return self._conn().execute(
            "SELECT id, worker FROM tasks WHERE status = 'running' AND lease_until < ?",
            (time.time(),)).fetchall()

    def running_workers(self) -> list[str]:
        rows = self._conn().execute(
            "SELECT DISTINCT worker FROM tasks WHERE status = 'running'").fetchall()
        return [r[0] for r in rows]

    def cancelled_among(self, task_ids: list[int]) -> list[int]:
        if not task_ids:
            return []
        marks = ",".join("?" * len(task_ids))
        rows = self._conn().execute(
            f"SELECT id FROM tasks WHERE status = 'cancelled' AND id IN ({marks})",
            task_ids).fetchall()
        return [r[0] for r in rows]

    def set_progress(self, task_id: int, done: int, total: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE tasks SET progress_done = ?, progress_total = ? WHERE id = ?",
                         (done, total, task_id))

    # -- managing ----------------------------------------------------------
    def get(self, task_id: int) -> dict | None:
        conn = self._conn()
        row = conn.execute(f"SELECT {_COLS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        task = task_dict(row)
        children = dict(conn.execute(
            "SELECT status, count(*) FROM tasks WHERE parent_id = ? GROUP BY status",
            (task_id,)).fetchall())
        task["children"] = children
        if children:
            total = sum(children.values())
            done = sum(n for s, n in children.items() if s in FINISHED)
            task["progress"] = {"done": done, "total": total}
        return task

    def list(self, status=None, name=None, queue=None, parent_id=None, limit=50, cursor=None):
        clauses, params = [], []
        for column, value in (("status", status), ("name", name), ("queue", queue),
                              ("parent_id", parent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if cursor is not None:
            clauses.append("id < ?")
            params.append(cursor)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn().execute(
            f"SELECT {_COLS} FROM tasks {where} ORDER BY id DESC LIMIT ?",
            (*params, limit)).fetchall()
        return [task_dict(r) for r in rows]

    def cancel(self, task_id: int) -> dict:
        with self._write() as conn:
            self._cancel_tree(conn, task_id)
            row = conn.execute("SELECT parent_id FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row and row[0] is not None:
                self._settle(conn, row[0])
        return self.get(task_id)

    def _cancel_tree(self, conn: sqlite3.Connection, task_id: int) -> None:
        row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise KeyError(task_id)
        if row[0] not in UNFINISHED:
            raise TaskConflict(f"task {task_id} is already {row[0]}")
        conn.execute("UPDATE tasks SET status = 'cancelled', finished_at = ?, lease_until = NULL"
                     " WHERE id = ?", (time.time(), task_id))
        children = conn.execute(
            f"SELECT id FROM tasks WHERE parent_id = ? AND status IN {_UNFINISHED_SQL}",
            (task_id,)).fetchall()
        for (child_id,) in children:
            self._cancel_tree(conn, child_id)

    def retry(self, task_id: int) -> dict:
        with self._write() as conn:
            row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise KeyError(task_id)
            if row[0] not in ("failed", "cancelled"):
                raise TaskConflict(f"task {task_id} is {row[0]}; only failed or cancelled tasks can be retried")
            try:
                conn.execute(
                    "UPDATE tasks SET status = 'queued', run_after = ?, attempts = 0, error = NULL,"
                    " result = NULL, worker = NULL, started_at = NULL, finished_at = NULL"
                    " WHERE id = ?", (time.time(), task_id))
            except sqlite3.IntegrityError as exc:
                raise TaskConflict(f"an unfinished task with the same unique_key exists") from exc
        return self.get(task_id)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for queue, status, n in self._conn().execute(
                "SELECT queue, status, count(*) FROM tasks GROUP BY queue, status"):
            out.setdefault(queue, {})[status] = n
        return out

    def throughput(self, minutes: int) -> list[dict]:
        since = time.time() - minutes * 60
        rows = self._conn().execute(
            "SELECT CAST(finished_at / 60 AS INTEGER) * 60 AS minute, status, count(*)"
            " FROM tasks WHERE status IN ('succeeded', 'failed') AND finished_at >= ?"
            " GROUP BY minute, status ORDER BY minute", (since,)).fetchall()
        return [{"minute": m, "status": s, "count": n} for m, s, n in rows]

    def recent_failures(self, limit: int) -> list[dict]:
        rows = self._conn().execute(
            f"SELECT {_COLS} FROM tasks WHERE status = 'failed' ORDER BY finished_at DESC LIMIT ?",
            (limit,)).fetchall()
        return [task_dict(r) for r in rows]

    def prune(self, succeeded_before: float, failed_before: float) -> int:
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM tasks WHERE (status = 'succeeded' AND finished_at < ?)"
                " OR (status IN ('failed', 'cancelled') AND finished_at < ?)",
                (succeeded_before, failed_before)).rowcount

    # -- workers and daemon state -----------------------------------------
    def upsert_workers(self, rows: list[WorkerRow]) -> None:
        now = time.time()
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO workers (id, host, pid, state, task_id, cpu_percent, rss_bytes,"
                " started_at, heartbeat_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state, task_id = excluded.task_id,"
                " cpu_percent = excluded.cpu_percent, rss_bytes = excluded.rss_bytes,"
                " heartbeat_at = excluded.heartbeat_at",
                [(r.id, r.host, r.pid, r.state, r.task_id, r.cpu_percent, r.rss_bytes,
                  r.started_at, now) for r in rows])

    def remove_workers(self, worker_ids: list[str]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM workers WHERE id = ?", [(w,) for w in worker_ids])

    def live_workers(self, max_age_s: float) -> list[dict]:
        cur = self._conn().execute(
            "SELECT id, host, pid, state, task_id, cpu_percent, rss_bytes, started_at, heartbeat_at"
            " FROM workers WHERE heartbeat_at >= ? ORDER BY started_at, id",
            (time.time() - max_age_s,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def put_state(self, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO daemon_state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at", (key, json.dumps(value), time.time()))

    def get_state(self, key: str) -> Any:
        row = self._conn().execute("SELECT value FROM daemon_state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF == sqlite3.SQLITE_BUSY


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock at a finer grain than SQLite.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ... ms between tries, while
    the transactions it waits for (a worker's group commit, an enqueue) hold the
    lock for well under a millisecond: two workers taking turns would spend most
    of their time asleep. So the lock is polled every 50-500 us for up to
    ``_FAST_BUSY_S``; past that, SQLite's handler waits as before (``BUSY_TIMEOUT_MS``).
    """
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        delay, deadline = 0.00005, time.monotonic() + _FAST_BUSY_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() > deadline:
                    break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.0005)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _insert_params(task: NewTask, now: float) -> tuple:
    args = task.args_json if task.args_json is not None else json.dumps(task.args)
    return (task.queue, task.name, args, task.priority,
            task.run_after if task.run_after is not None else now, task.max_attempts,
            task.timeout, task.unique_key, task.parent_id, task.continuation, now)
