"""SQLite backend: WAL mode, one writer at a time.

Every write is a short ``BEGIN IMMEDIATE`` transaction, so two processes never
interleave a read-then-write and a claim is atomic without row locks.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator, cast

from hopper.app.backends.base import Claimed, NewTask, Outcome, QueueFilter
from hopper.app.backends.sql import CLAIM_RETURNING, INSERT, SqlBackend, insert_params
from hopper.app.backends.urls import sqlite_path
from hopper.app.migrate import apply_sqlite_migrations
from hopper.app.wakeup import DoorbellNotifier

BUSY_TIMEOUT_MS = 30000   # how long any statement waits for a lock before giving up
_FAST_BUSY_S = 0.2        # how long _begin_immediate polls the write lock itself

# One queue's ready tasks in claim order: the ORDER BY matches the partial index
# tasks_queue_ready after its leading ``queue = ?``, so a pick is O(log n) and
# never reads another queue's rows. INDEXED BY because the planner otherwise may
# sort every queued row of the queue on each claim.
_PICK = ("SELECT id, priority, run_after FROM tasks INDEXED BY tasks_queue_ready"
         " WHERE status = 'queued' AND concurrency_key IS NULL AND queue = ?"
         " AND run_after <= ?"
         " ORDER BY priority DESC, run_after, id LIMIT ?")
_READY = ("SELECT 1 FROM tasks INDEXED BY tasks_queue_ready"
          " WHERE status = 'queued' AND concurrency_key IS NULL AND queue = ?"
          " AND run_after <= ? LIMIT 1")


@lru_cache(maxsize=64)
def _claim_sql(queues: int) -> str:
    """The claim of ``queues`` queues at once: each queue's best tasks, then the
    best of those across queues (the same order one global index would give)."""
    if queues == 1:
        picked = _PICK.replace("id, priority, run_after", "id", 1)
    else:
        union = " UNION ALL ".join(f"SELECT * FROM ({_PICK})" for _ in range(queues))
        picked = f"SELECT id FROM ({union}) ORDER BY priority DESC, run_after, id LIMIT ?"
    return ("UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,"
            f" attempts = attempts + 1 WHERE id IN ({picked}) {CLAIM_RETURNING}")

# Counts an INSERT made on the autocommit connection (see _autocommit_conn). A TEMP
# trigger exists only on the connection that created it: every other insert is
# counted by its transaction's counter batch (counter_batch.py).
_COUNT_AUTOCOMMIT_INSERT = (
    "CREATE TEMP TRIGGER IF NOT EXISTS tasks_counted_autocommit_insert"
    " AFTER INSERT ON main.tasks BEGIN"
    " INSERT INTO task_counts (queue, status, live, entered, created)"
    " VALUES (new.queue, new.status, 1, 1, 1) ON CONFLICT (queue, status, shard) DO UPDATE"
    " SET live = live + 1, entered = entered + 1, created = created + 1; END")

INSERT_CHUNK = 100  # rows per INSERT statement (SQLite allows 32,766 parameters)
_ROW = INSERT.rsplit(" VALUES ", 1)[1]  # one row's placeholders, "(?,?,...)"


@lru_cache(maxsize=8)
def _insert_rows(n: int) -> str:
    """INSERT of ``n`` rows in one statement."""
    return INSERT + ("," + _ROW) * (n - 1)


class SqliteBackend(SqlBackend):
    """The embedded default backend."""

    # A value SQLite refuses (a string or blob over its length limit).
    data_errors = (sqlite3.DataError,)

    def __init__(self, url: str, durability: str = "full"):
        self.url = url
        self.path = sqlite_path(url)
        self.synchronous = "FULL" if durability == "full" else "NORMAL"
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._notifier = DoorbellNotifier(Path(f"{self.path}.wake"))

    def notifier(self) -> DoorbellNotifier:
        return self._notifier

    def _wake_listeners(self, conn, n: int = 1) -> None:
        # Rung once the transaction commits (``_write``): a worker woken earlier
        # would find nothing yet and go back to sleep.
        self._local.wake = max(getattr(self._local, "wake", 0), n)

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # never share a connection across fork
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        _begin_immediate(conn)
        try:
            yield conn
            self._flush_counters(conn)  # the transaction's counter changes, grouped
        except BaseException:
            self._drop_counters()
            self._local.wake = 0
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        wake = getattr(self._local, "wake", 0)
        if wake:
            self._local.wake = 0
            self._notifier.notify(wake)

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

    def _autocommit_conn(self) -> sqlite3.Connection:
        """This thread's second connection, for single-statement writes that must
        not wait: no busy handler, so a locked database answers SQLITE_BUSY at once."""
        local = self._local
        if getattr(local, "auto_pid", None) != os.getpid():
            self._conn()  # the first connection sets up WAL mode
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                                   check_same_thread=False)
            # NORMAL also at durability full: enqueue syncs the log itself, after the
            # wake-up (see enqueue).
            conn.execute("PRAGMA synchronous=NORMAL")
            # Its single INSERTs are their own transactions, with no batch to flush:
            # this connection's own (TEMP) trigger counts them, in the same statement.
            conn.execute(_COUNT_AUTOCOMMIT_INSERT)
            local.auto, local.auto_pid = conn, os.getpid()
        return local.auto

    def close(self) -> None:
        auto = getattr(self._local, "auto", None)
        if auto is not None and self._local.auto_pid == os.getpid():
            auto.close()
        super().close()

    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        if any(t.depends_on or t.after for t in tasks):
            return self._enqueue_graph(tasks)  # dependencies.py
        if len(tasks) == 1 and tasks[0].unique_key is None and not tasks[0].tags:
            # One statement when the write lock is free: its own transaction, one
            # round trip instead of BEGIN, INSERT, COMMIT and the lock polling setup.
            # (Tags and unique keys need more than one statement.)
            try:
                row_id = self._autocommit_conn().execute(
                    INSERT, insert_params(tasks[0], time.time())).lastrowid
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                # Locked (nothing was inserted): wait for the lock like every write.
            else:
                # Committed without fsync, so visible now: a worker is woken and claims
                # the task while the log is synced, and the enqueue is durable before it
                # returns (or, inside the notifier's ``held`` block, before the block
                # ends, after the wake-up). The pickup latency then no longer includes
                # the disk's fsync time (0.3 ms on one machine, 1-2 ms on another).
                self._notifier.notify()
                if self.synchronous == "FULL":
                    self._notifier.after_held(self._sync_log)
                return [(cast(int, row_id), True)]  # an INSERT always sets lastrowid
        now = time.time()
        with self._write() as conn:
            if any(t.unique_key is not None for t in tasks):
                results = [self._insert_one(conn, t, now) for t in tasks]
            else:
                # Multi-row INSERTs: SQLite binds and inserts a chunk of rows per
                # statement (about 1.5-2x the rows/s of executemany, one row per
                # call). One writer at a time: the rows get consecutive ids.
                params = [insert_params(t, now) for t in tasks]
                for start in range(0, len(params), INSERT_CHUNK):
                    chunk = params[start:start + INSERT_CHUNK]
                    last = conn.execute(_insert_rows(len(chunk)),
                                        [value for row in chunk for value in row]).lastrowid
                first = cast(int, last) - len(tasks) + 1  # an INSERT always sets lastrowid
                results = [(first + i, True) for i in range(len(tasks))]
                for queue, n in Counter(t.queue for t in tasks).items():
                    self._counted().created(queue, n=n)
            self._insert_tags(conn, tasks, results)
            self._wake_listeners(conn, sum(created for _, created in results))
            return results

    def _sync_log(self) -> None:
        """Sync the write-ahead log to disk: what ``synchronous=FULL`` does at each commit."""
        fd = os.open(f"{self.path}-wal", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)  # as SQLite syncs its log on Linux: data, not mtime
        finally:
            os.close(fd)

    def finish_and_claim(self, worker_id: str, outcomes: list[Outcome], release: list[int],
                         limit: int, lease_s: float,
                         queues: QueueFilter | None = None) -> list[Claimed]:
        if outcomes or release or limit <= 0:
            with self._unsynced():
                return super().finish_and_claim(worker_id, outcomes, release, limit, lease_s,
                                                queues)
        # Nothing to record: look before taking the write lock, so an idle poll or
        # a worker that lost the race for a wake-up costs one read, no write.
        conn, now = self._conn(), time.time()
        targets = self._claim_targets(limit, queues, self._queue_names(conn, queues))
        if not any(conn.execute(_READY, (name, now)).fetchone() for name, _ in targets) and (
                not self._flow_ready(conn, queues)):
            return []
        if self.synchronous == "FULL":
            return self._claim_unsynced(worker_id, limit, lease_s, queues)
        return super().finish_and_claim(worker_id, outcomes, release, limit, lease_s, queues)

    @contextmanager
    def _unsynced(self) -> Iterator[None]:
        """The worker's group commits (outcomes, give-backs, the next claim) commit
        without waiting for fsync, also at ``durability: full``.

        Under at-least-once only the enqueue acknowledgement must survive a power
        cut. A lost outcome leaves its task running until the lease runs out and
        it is rescued; a lost give-back or claim leaves the task as it was: either
        way it runs again, as if its worker had died. The next synchronous commit
        (any enqueue at ``full``) syncs the write-ahead log up to and including
        these commits. Without the flush a worker holds the database's one write
        lock for its statements only, so enqueuers and the other workers wait far
        less (profile: COMMIT was a quarter of a draining worker's time).
        """
        if self.synchronous != "FULL":
            yield
            return
        conn = self._conn()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            conn.execute("PRAGMA synchronous = FULL")

    def _claim_unsynced(self, worker_id: str, limit: int, lease_s: float,
                        queues: QueueFilter | None) -> list[Claimed]:
        """A claim with nothing recorded, committed without waiting for fsync
        (see ``_unsynced``): it takes an fsync off the path from enqueue to task start."""
        with self._unsynced(), self._write() as conn:
            return self._claim_all(conn, worker_id, limit, lease_s, queues)

    _claim_sql = staticmethod(_claim_sql)
    flow_index = " INDEXED BY tasks_flow_ready"


# Result codes that mean the database file cannot be used right now (as opposed
# to a mistake in a statement): missing or unwritable folder, lock held too long,
# disk errors, a full disk, a file that is not a database.
_UNAVAILABLE_CODES = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
                      sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
                      sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database file cannot be reached or used."""
    if isinstance(exc, sqlite3.DatabaseError):
        return getattr(exc, "sqlite_errorcode", 0) & 0xFF in _UNAVAILABLE_CODES
    return isinstance(exc, OSError)  # creating the database's folder failed


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
