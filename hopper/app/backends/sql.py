"""The SQL both engines share. Statements are written with ``?`` placeholders;
an engine that uses another style translates them once (``_sql``).

Engine modules keep only what differs: connections and transactions, the claim
statement, bulk insert, migrations and row locking.
"""
from __future__ import annotations

import json
import os
import threading
import time
from abc import abstractmethod
from collections import Counter
from functools import lru_cache
from typing import Any, ContextManager

from hopper.app import defaults
from hopper.app.backends.base import (
    FINISHED,
    MAX_META_BYTES,
    Backend,
    Claimed,
    NewTask,
    QueueFilter,
    WorkerRow,
    task_dict,
)
from hopper.app.backends.counter_batch import CounterWrites
from hopper.app.backends.counters import CounterReads
from hopper.app.backends.dependencies import TaskDependencies
from hopper.app.backends.flow_admin import FlowAdmin
from hopper.app.backends.flow_rates import RatedClaims
from hopper.app.backends.flow_sql import FlowClaims
from hopper.app.backends.schedule_store import ScheduleStore
from hopper.app.backends.sql_parts import marks
from hopper.app.backends.states import UNFINISHED_SQL, TaskStates, claimed_from_row
from hopper.app.backends.task_queries import COLS, TaskQueries
from hopper.app.defaults import LIVE_WORKER_AGE_S

# The unpaused queues that have queued tasks, one index seek per queue (a loose
# index scan of tasks_queue_ready): however many tasks a queue holds, it costs one step.
QUEUED_QUEUES = """
WITH RECURSIVE q(name) AS (
    SELECT (SELECT queue FROM tasks WHERE status = 'queued' AND concurrency_key IS NULL
             ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM tasks WHERE status = 'queued' AND concurrency_key IS NULL
               AND queue > q.name ORDER BY queue LIMIT 1)
      FROM q WHERE q.name IS NOT NULL
)
SELECT name FROM q WHERE name IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = q.name)
"""
# Whether keyed groups without / with a rate key have queued tasks (flow_sql.py):
# one seek each in flow_groups_ready, all an ordinary claim pays for keyed tasks.
# ``rkey > ''`` rather than ``<> ''`` (the same rows: rkey is never NULL) is a range
# the index can seek; ``<>`` walked every queued group.
# ``{ready}``: the backend's ``group_ready``.
ANY_KEYED = ("SELECT EXISTS (SELECT 1 FROM flow_groups WHERE {ready} AND rkey = ''),"
             " EXISTS (SELECT 1 FROM flow_groups WHERE {ready} AND rkey > '')")
# What a claim returns: the Claimed fields, then the claim order's keys, then what
# the counters need for the pickup latency (counter_batch.CounterBatch.claimed).
CLAIM_RETURNING = ("RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, queue,"
                   " priority, run_after, created_at, traceparent")

NEXT_DUE_SCAN = 1000
_NEXT_DUE = ("SELECT min(run_after), count(*) FROM (SELECT run_after FROM tasks"
             " WHERE status = 'queued' AND concurrency_key IS NULL AND run_after > ? LIMIT ?)"
             " AS delayed")

INSERT = (
    "INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts, timeout,"
    " unique_key, parent_id, continuation, created_at, tags, meta, status, depends_on,"
    " traceparent, concurrency_key, concurrency_limit, rate_key)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_TAG = "INSERT INTO task_tags (tag, task_id) VALUES (?, ?)"
_INSERT_UNIQUE = INSERT + (
    " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL"
    f" AND status IN {UNFINISHED_SQL} DO NOTHING RETURNING id"
)

def insert_params(task: NewTask, now: float) -> tuple:
    """The INSERT parameters of a new task; records ``now`` on it as its creation time."""
    args = task.args_json if task.args_json is not None else json.dumps(task.args)
    if task.run_after is None:
        task.run_after = now
    task.created_at = now
    return (task.queue, task.name, args, task.priority, task.run_after, task.max_attempts,
            task.timeout, task.unique_key, task.parent_id, task.continuation, now,
            json.dumps(list(task.tags)) if task.tags else None, task.meta_json, task.status,
            json.dumps(list(task.depends_on)) if task.depends_on else None, task.traceparent,
            task.concurrency_key, task.concurrency_limit, task.rate_key)


class SqlBackend(CounterReads, CounterWrites, TaskQueries, TaskDependencies, TaskStates,
                 FlowClaims, RatedClaims, FlowAdmin, ScheduleStore, Backend):
    """Queue storage in portable SQL; the task transitions come from TaskStates,
    counters and listings from CounterReads and TaskQueries, the engine specifics
    from subclasses."""

    placeholder = "?"
    _local: threading.local  # this thread's connections (and the pid that opened them)
    row_lock = ""  # appended to a SELECT that reads a row it is about to update
    # The database's clock minus this host's: engines on another machine measure it
    # at each new connection. Leases and liveness use ``now()``, so a host whose
    # clock is wrong neither rescues others' tasks early nor loses its own.
    _clock_offset = 0.0

    def now(self) -> float:
        """The time on the database's clock (this host's clock plus the measured offset)."""
        return time.time() + self._clock_offset

    # -- engine hooks ------------------------------------------------------
    @abstractmethod
    def _conn(self):
        """This thread's connection (autocommit outside ``_write``)."""

    @abstractmethod
    def _write(self) -> ContextManager[Any]:
        """A write transaction on this thread's connection."""

    @staticmethod
    @abstractmethod
    def _claim_sql(queues: int) -> str:
        """The engine's claim statement over ``queues`` queues; its parameters are
        worker, lease_until, started_at, then ``(queue, run_after, n)`` per queue,
        then the overall limit when there is more than one queue."""

    def _claim(self, conn, worker_id: str, limit: int, lease_s: float,
               targets: list[tuple[str, int]]) -> list[Claimed]:
        """Claim up to ``limit`` ready tasks, in claim order, inside a write
        transaction: from each ``(queue, n)`` of ``targets`` at most ``n``."""
        now = self.now()  # after recording outcomes: a continuation enqueued just now is due
        params: list = [worker_id, now + lease_s, now]
        for name, n in targets:
            params += (name, now, n)
        if len(targets) > 1:
            params.append(limit)
        rows = conn.execute(self._claim_sql(len(targets)), params).fetchall()
        self._counted().claimed(rows, now)
        # RETURNING yields rows in table order; run them in claim order.
        rows.sort(key=lambda r: (-r[8], r[9], r[0]))
        return [claimed_from_row(row) for row in rows]

    @abstractmethod
    def _wake_listeners(self, conn, n: int = 1) -> None:
        """Tasks became claimable in this transaction: wake up to ``n`` idle workers
        once it commits (the engine's notifier)."""

    def close(self) -> None:
        """Close this process's connection of the calling thread."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()

    def ping(self) -> None:
        self._read("SELECT 1 FROM tasks LIMIT 1")  # a read: sent again on a fresh connection

    # -- for modules with tables of their own (the library index) -----------
    def transaction(self) -> ContextManager[Any]:
        """A write transaction; run statements in it with :meth:`run`."""
        return self._write()

    def run(self, conn, statement: str, params: tuple | list = ()):
        """Execute one ``?``-placeholder statement on ``conn``; returns the cursor."""
        return self._run(conn, statement, params)

    def run_many(self, conn, statement: str, rows: list[tuple]) -> None:
        """Execute one statement per row of parameters on ``conn``."""
        self._run_many(conn, statement, rows)

    def fetch(self, statement: str, params: tuple | list = ()) -> list[tuple]:
        """Rows of one read-only statement, outside any transaction."""
        return self._read(statement, params)

    # -- helpers -----------------------------------------------------------
    def _sql(self, statement: str) -> str:
        return _translate(statement, self.placeholder)

    def _run(self, conn, statement: str, params: tuple | list = ()):
        return conn.execute(self._sql(statement), params)

    def _run_many(self, conn, statement: str, rows: list[tuple]) -> None:
        conn.cursor().executemany(self._sql(statement), rows)

    def _read(self, statement: str, params: tuple | list = ()) -> list[tuple]:
        return self._run(self._conn(), statement, params).fetchall()

    # -- producing ---------------------------------------------------------
    def _insert_one(self, conn, task: NewTask, now: float) -> tuple[int, bool]:
        if task.unique_key is None:
            (task_id,) = self._run(conn, INSERT + " RETURNING id",
                                   insert_params(task, now)).fetchone()
            self._counted().created(task.queue, task.status)
            return task_id, True
        row = self._run(conn, _INSERT_UNIQUE, insert_params(task, now)).fetchone()
        if row:
            self._counted().created(task.queue, task.status)
            return row[0], True
        existing = self._run(
            conn, f"SELECT id FROM tasks WHERE unique_key = ? AND status IN {UNFINISHED_SQL}",
            (task.unique_key,)).fetchone()
        return existing[0], False

    def _count_deleted(self, rows: list[tuple]) -> None:
        """Report deleted tasks' ``(queue, status)`` rows to the counters."""
        for (queue, status), n in Counter(map(tuple, rows)).items():
            self._counted().deleted(queue, status, n)

    def _insert_tags(self, conn, tasks: list[NewTask], results: list[tuple[int, bool]]) -> None:
        """Index the tags of the tasks just created (a unique_key hit adds none)."""
        rows = [(tag, task_id)
                for task, (task_id, created) in zip(tasks, results, strict=True) if created
                for tag in task.tags]
        if rows:
            self._run_many(conn, _INSERT_TAG, rows)

    # -- consuming (the transitions live in states.py) -----------------------
    def next_due(self) -> float | None:
        # At most NEXT_DUE_SCAN delayed tasks are looked at: with more, the
        # earliest may be among the others, so there is no answer. "Delayed" on the
        # database's clock, as a task enqueued for now records its run_after.
        now = self.now()
        earliest, seen = self._read(_NEXT_DUE, (now, NEXT_DUE_SCAN + 1))[0]
        keyed = self.flow_next_due(now)  # a rate key's next slot, a delayed keyed task
        times = [t for t in (None if seen > NEXT_DUE_SCAN else earliest, keyed) if t is not None]
        return min(times) if times else None

    def _claim_scope(self, conn, queues: QueueFilter | None) -> tuple[bool, bool, list[str]]:
        """What a claim may read now: whether keyed groups without and with a rate key
        have queued tasks, and the queues (unpaused, allowed) to claim ordinary tasks
        from. Engines where a statement is a round trip read it all at once."""
        unrated, rated = self._run(conn, ANY_KEYED.format(ready=self.group_ready)).fetchone()
        return bool(unrated), bool(rated), self._queue_names(conn, queues)

    def _queue_names(self, conn, queues: QueueFilter | None) -> list[str]:
        """The queues a claim may read ordinary tasks from: only those that may be
        claimed, so the claim never walks the tasks of a paused or excluded queue."""
        if queues is None or queues.only is None:
            return [r[0] for r in self._run(conn, QUEUED_QUEUES).fetchall()]
        paused = {r[0] for r in self._run(conn, "SELECT queue FROM paused_queues").fetchall()}
        return sorted(queues.only - paused)

    @staticmethod
    def _claim_targets(limit: int, queues: QueueFilter | None,
                       names: list[str]) -> list[tuple[str, int]]:
        """``(queue, most tasks to take)`` for each of ``names`` under the caps of
        ``queues``."""
        caps = queues.caps if queues is not None else {}
        if not caps:
            return [(name, limit) for name in names]
        targets = []
        for name in names:
            n = min(limit, caps.get(name, limit))
            if n > 0:
                targets.append((name, n))
        return targets

    def renew_leases(self, worker_ids: list[str], lease_s: float) -> None:
        if worker_ids:
            # Rows a worker is finishing right now are locked by it: skipped, not waited
            # for (waiting on them, in another order than the worker's, could deadlock).
            skip = f"{self.row_lock} SKIP LOCKED" if self.row_lock else ""
            with self._write() as conn:
                self._run_many(
                    conn, "UPDATE tasks SET lease_until = ? WHERE id IN (SELECT id FROM tasks"
                    f" WHERE status = 'running' AND worker = ?{skip})",
                    [(self.now() + lease_s, w) for w in worker_ids])

    def expired_leases(self) -> list[tuple[int, str]]:
        return [tuple(r) for r in self._read(
            "SELECT id, worker FROM tasks WHERE status = 'running' AND lease_until < ?",
            (self.now(),))]

    def running_workers(self) -> list[str]:
        rows = self._read("SELECT DISTINCT worker FROM tasks WHERE status = 'running'")
        return [r[0] for r in rows]

    def held_by(self, worker_id: str) -> list[int]:
        return [r[0] for r in self._read(
            "SELECT id FROM tasks WHERE worker = ? AND status = 'running'", (worker_id,))]

    def cancelled_among(self, task_ids: list[int]) -> list[int]:
        if not task_ids:
            return []
        in_list = marks(task_ids)
        rows = self._read(f"SELECT id FROM tasks WHERE status = 'cancelled' AND id IN ({in_list})",
                          task_ids)
        return [r[0] for r in rows]

    def set_progress(self, task_id: int, done: int, total: int) -> None:
        with self._write() as conn:
            self._run(conn, "UPDATE tasks SET progress_done = ?, progress_total = ? WHERE id = ?",
                      (done, total, task_id))

    def set_meta(self, task_id: int, values: dict) -> dict:
        with self._write() as conn:
            row = self._run(conn, f"SELECT meta FROM tasks WHERE id = ?{self.row_lock}",
                            (task_id,)).fetchone()
            if row is None:
                raise KeyError(task_id)
            meta = {**(json.loads(row[0]) if row[0] else {}), **values}
            text = json.dumps(meta, allow_nan=False)
            if len(text.encode()) > MAX_META_BYTES:
                raise ValueError(f"meta would be {len(text.encode())} bytes as JSON;"
                                 f" at most {MAX_META_BYTES} are kept")
            self._run(conn, "UPDATE tasks SET meta = ? WHERE id = ?", (text, task_id))
        return meta

    # -- managing ----------------------------------------------------------
    def get(self, task_id: int) -> dict | None:
        rows = self._read(f"SELECT {COLS} FROM tasks WHERE id = ?", (task_id,))
        if not rows:
            return None
        children = dict(self._read(
            "SELECT status, count(*) FROM tasks WHERE parent_id = ? GROUP BY status", (task_id,)))
        task = task_dict(rows[0])
        task["history"] = self.history(task)
        task["waiting_for"] = self.flow_wait(task)
        task["children"] = children
        if children:
            done = sum(n for s, n in children.items() if s in FINISHED)
            task["progress"] = {"done": done, "total": sum(children.values())}
        return task


    # -- pausing queues -----------------------------------------------------
    def pause_queue(self, queue: str) -> bool:
        with self._write() as conn:
            return self._run(conn, "INSERT INTO paused_queues (queue, paused_at) VALUES (?, ?)"
                             " ON CONFLICT (queue) DO NOTHING", (queue, time.time())).rowcount > 0

    def resume_queue(self, queue: str) -> bool:
        with self._write() as conn:
            resumed = self._run(conn, "DELETE FROM paused_queues WHERE queue = ?",
                                (queue,)).rowcount > 0
            if resumed:
                self._wake_listeners(conn, 64)  # up to every idle worker: they drain the backlog
            return resumed

    def paused_queues(self) -> dict[str, float]:
        return dict(self._read("SELECT queue, paused_at FROM paused_queues ORDER BY queue"))

    def recent_failures(self, limit: int) -> list[dict]:
        # Newest by id: the partial index of failed tasks answers it without a sort.
        rows = self._read(f"SELECT {COLS} FROM tasks WHERE status = 'failed'"
                          " ORDER BY id DESC LIMIT ?", (limit,))
        return [task_dict(r) for r in rows]

    def prune(self, succeeded_before: float, failed_before: float) -> int:
        # Candidates come from a read that holds no lock (on a large table it is a
        # scan); each chunk is then deleted in a short write, re-checking the condition.
        condition = ("((status = 'succeeded' AND finished_at < ?)"
                     " OR (status IN ('failed', 'cancelled') AND finished_at < ?))")
        limits = (succeeded_before, failed_before)
        ids = [r[0] for r in self._read(f"SELECT id FROM tasks WHERE {condition}", limits)]
        deleted = 0
        chunk_size = defaults.PRUNE_CHUNK
        in_list = marks(range(chunk_size))
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start:start + chunk_size]
            # Always chunk_size placeholders (the last id repeated): one statement text. A
            # text per chunk size made every prune cache another prepared statement of
            # thousands of parameters (~0.4 MB each, up to the connection's 128-entry cache).
            chunk += [chunk[-1]] * (chunk_size - len(chunk))
            with self._write() as conn:
                gone = self._run(conn, f"DELETE FROM tasks WHERE id IN ({in_list}) AND {condition}"
                                 " RETURNING queue, status", (*chunk, *limits)).fetchall()
                self._count_deleted(gone)
                deleted += len(gone)
                self._run(conn, f"DELETE FROM task_attempts WHERE task_id IN ({in_list})"
                          " AND task_id NOT IN (SELECT id FROM tasks)", chunk)
        self.prune_counters(time.time())
        self.prune_flow()
        with self._write() as conn:
            # Rows of workers whose daemon was killed: long past any liveness check.
            for table in ("workers", "daemons"):
                self._run(conn, f"DELETE FROM {table} WHERE heartbeat_at < ?",
                          (time.time() - defaults.STALE_WORKER_ROW_S,))
        return deleted

    # -- workers and daemon state -----------------------------------------
    def upsert_workers(self, rows: list[WorkerRow]) -> None:
        now = self.now()
        with self._write() as conn:
            self._run_many(
                conn, "INSERT INTO workers (id, host, pid, state, task_id, cpu_percent, rss_bytes,"
                " started_at, heartbeat_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
                " task_id = excluded.task_id,"
                " cpu_percent = excluded.cpu_percent, rss_bytes = excluded.rss_bytes,"
                " heartbeat_at = excluded.heartbeat_at",
                [(r.id, r.host, r.pid, r.state, r.task_id, r.cpu_percent, r.rss_bytes,
                  r.started_at, now) for r in rows])

    def remove_workers(self, worker_ids: list[str]) -> None:
        with self._write() as conn:
            self._run_many(conn, "DELETE FROM workers WHERE id = ?", [(w,) for w in worker_ids])

    def live_workers(self, max_age_s: float = LIVE_WORKER_AGE_S) -> list[dict]:
        names = ("id", "host", "pid", "state", "task_id", "cpu_percent", "rss_bytes",
                 "started_at", "heartbeat_at")
        rows = self._read(f"SELECT {', '.join(names)} FROM workers WHERE heartbeat_at >= ?"
                          " ORDER BY started_at, id", (self.now() - max_age_s,))
        return [dict(zip(names, row, strict=True)) for row in rows]

    def put_state(self, key: str, value: Any) -> None:
        with self._write() as conn:
            self._run(conn, "INSERT INTO daemon_state (key, value, updated_at) VALUES (?, ?, ?)"
                      " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                      " updated_at = excluded.updated_at", (key, json.dumps(value), time.time()))

    def get_state(self, key: str) -> Any:
        rows = self._read("SELECT value FROM daemon_state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None


@lru_cache(maxsize=256)
def _translate(statement: str, placeholder: str) -> str:
    return statement if placeholder == "?" else statement.replace("?", placeholder)
