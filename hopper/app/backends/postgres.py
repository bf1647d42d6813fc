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
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import Any, ContextManager, Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from hopper.app import defaults
from hopper.app.backends.base import Claimed, NewTask, QueueFilter
from hopper.app.backends.sql import (
    ANY_KEYED,
    CLAIM_RETURNING,
    INSERT,
    QUEUED_QUEUES,
    SqlBackend,
    insert_params,
)
from hopper.app.migrate import apply_postgres_migrations

CHANNEL = "hopper_tasks"

# One queue's ready tasks in claim order (the partial index tasks_queue_ready
# after its leading ``queue = %s``), locked so concurrent claims skip them.
_PICK = ("SELECT id, priority, run_after FROM tasks"
         " WHERE status = 'queued' AND concurrency_key IS NULL AND queue = %s"
         " AND run_after <= %s"
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

INSERT_CHUNK = 1000  # rows per INSERT statement (13,000 parameters; PostgreSQL allows 65,535)


@lru_cache(maxsize=16)
def _insert_rows_sql(n: int, notify: bool) -> str:
    """INSERT of ``n`` rows returning their ids; with ``notify`` it also wakes idle
    workers (NOTIFY, delivered when the statement's transaction commits)."""
    row = INSERT.rsplit(" VALUES ", 1)[1]
    insert = (INSERT + ("," + row) * (n - 1)).replace("?", "%s") + " RETURNING id, queue, status"
    # The new tasks are counted in the same statement (it may be its own transaction).
    statement = f"WITH ins AS ({insert}), counted AS ({_COUNT_INSERTED}) SELECT ins.id FROM ins"
    if not notify:
        return statement
    return statement + f" CROSS JOIN (SELECT pg_notify('{CHANNEL}', '')) AS wake"


_COUNT_INSERTED = (
    "INSERT INTO task_counts AS t (queue, status, shard, live, entered, created)"
    " SELECT queue, status, pg_backend_pid(), count(*), count(*), count(*) FROM ins"
    " GROUP BY queue, status ON CONFLICT (queue, status, shard) DO UPDATE"
    " SET live = t.live + EXCLUDED.live, entered = t.entered + EXCLUDED.entered,"
    " created = t.created + EXCLUDED.created RETURNING 1")


# Successes of a batch as arrays: one statement text whatever the batch size, so
# psycopg converts it once and the server runs it as a prepared statement (the
# VALUES form's text grows with the batch and was re-parsed on every call: 17 %
# of a draining worker's time in py-spy). The slots of keyed tasks are freed here,
# one update per batch (migration 0019); the order it locks the keys' rows in is the
# plan's, as it was the tasks' order with the row trigger before, and a deadlock
# between two batches is an aborted transaction the worker sends again.
_SUCCEED_ARRAYS = """
WITH done AS (
  UPDATE tasks SET status = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id)
                            THEN 'waiting' ELSE 'succeeded' END,
         result = v.result, started_at = v.started_at, finished_at = v.finished_at,
         lease_until = NULL
    FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::float8[], %s::bigint[])
         AS v(id, result, started_at, finished_at, attempt)
   WHERE tasks.id = v.id AND tasks.status = 'running' AND tasks.worker = %s
     AND tasks.attempts = COALESCE(v.attempt, tasks.attempts)
  RETURNING tasks.id, tasks.status, tasks.parent_id, tasks.queue, tasks.started_at,
            tasks.finished_at, tasks.has_dependents, tasks.concurrency_key
), freed AS (
  UPDATE flow_keys AS k SET running = k.running - f.n
    FROM (SELECT concurrency_key AS key, count(*) AS n FROM done
           WHERE concurrency_key <> '' GROUP BY 1) AS f
   WHERE k.key = f.key
)
SELECT id, status, parent_id, queue, started_at, finished_at, has_dependents FROM done
"""


# A claim's scope in one round trip (sql.SqlBackend._claim_scope reads it in two):
# the keyed groups' flags, then the queues with queued tasks (or the paused ones).
_SCOPE_ALL = ANY_KEYED.format(ready="ready") + ", ARRAY(" + QUEUED_QUEUES + ")"
_SCOPE_PAUSED = ANY_KEYED.format(ready="ready") + ", ARRAY(SELECT queue FROM paused_queues)"


class PostgresBackend(SqlBackend):
    """The multi-machine backend."""

    placeholder = "%s"
    like = "ILIKE"
    row_locks = True
    # A value PostgreSQL refuses: a NUL in text, an invalid byte sequence, a value too long.
    data_errors = (psycopg.DataError,)
    row_lock = " FOR UPDATE"
    group_ready = "ready"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def _conn(self) -> psycopg.Connection:
        """This thread's connection; inside ``finish_and_claim`` its second one,
        whose session commits without waiting for the WAL flush."""
        local = self._local
        unsynced = getattr(local, "unsynced", False)
        name = "unsynced_conn" if unsynced else "conn"
        conn = getattr(local, name, None) if getattr(local, "pid", None) == os.getpid() else None
        if conn is None or conn.closed:
            if getattr(local, "pid", None) != os.getpid():
                local.conn = local.unsynced_conn = None
                local.pid = os.getpid()
            conn = connect(self.url)
            self._clock_offset = clock_offset(conn)
            if unsynced:
                # A session setting, not SET LOCAL in each transaction: one round trip less.
                conn.execute("SET synchronous_commit = off")
            setattr(local, name, conn)
        return conn

    def _read(self, statement: str, params: tuple | list = ()) -> list[tuple]:
        # A connection that died while idle (a server restart) fails its first
        # statement; a read is safe to send once more, on a new connection (which
        # fails at once if the server is still away).
        try:
            return super()._read(statement, params)
        except psycopg.Error as exc:
            if not is_unavailable(exc):
                raise
            self._drop_connections()
        return super()._read(statement, params)

    def _drop_connections(self) -> None:
        """Close both of this thread's connections: when one is found dead (a server
        restart, a failover), the other is too, and is replaced now rather than
        failing, and being reported, on its own next use."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            return
        for name in ("conn", "unsynced_conn"):
            conn = getattr(local, name, None)
            if conn is not None:
                conn.close()
                setattr(local, name, None)

    def close(self) -> None:
        conn = getattr(self._local, "unsynced_conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        super().close()

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection]:
        conn = self._conn()
        try:
            # BEGIN is a round trip of its own. Sending it in a pipeline with the first
            # statement saved it, but the pipeline's closing sync came after the COMMIT:
            # when the server went away just then, a committed claim was reported as
            # failed, and its tasks stayed running under a live worker.
            conn.execute("BEGIN")
            yield conn
            counters = self._counters_statement()
            wake, self._local.wake = getattr(self._local, "wake", False), False
            if counters is None and not wake:
                conn.execute("COMMIT")
            else:
                # The transaction's counter changes, its wake-up and its COMMIT in one
                # round trip: a separate one cost a group commit about a sixth of its time.
                with conn.pipeline():
                    if counters is not None:
                        conn.execute(*counters)
                    if wake:
                        conn.execute(f"NOTIFY {CHANNEL}")  # delivered at the COMMIT
                    conn.execute("COMMIT")
        except BaseException as exc:
            self._local.wake = False
            self._drop_counters()
            if isinstance(exc, psycopg.Error) and is_unavailable(exc):
                self._drop_connections()  # nothing to roll back: the session is gone
            elif conn.info.transaction_status != TransactionStatus.IDLE and not conn.closed:
                conn.execute("ROLLBACK")
            raise

    def finish_and_claim(self, *args, **kwargs) -> list[Claimed]:
        """The worker's group commit, committed without waiting for the WAL flush.

        Under at-least-once only the enqueue acknowledgement must survive a crash
        of the server: a lost outcome or claim makes the task run again, as if
        its worker had died (see SqliteBackend._unsynced). The server still
        writes these commits in order, so a later synchronous commit (an
        enqueue) makes them durable too.
        """
        self._local.unsynced = True
        try:
            return super().finish_and_claim(*args, **kwargs)
        finally:
            self._local.unsynced = False

    def _succeed_many(self, conn, worker_id: str, rows: list[tuple]) -> list[tuple]:
        ids, results, started, finished, attempts = (
            list(column) for column in zip(*rows, strict=True))
        return conn.execute(_SUCCEED_ARRAYS, (ids, results, started, finished, attempts,
                                              worker_id)).fetchall()

    def _claim_scope(self, conn, queues: QueueFilter | None) -> tuple[bool, bool, list[str]]:
        if queues is None or queues.only is None:
            unrated, rated, names = self._run(conn, _SCOPE_ALL).fetchone()
            return unrated, rated, names
        unrated, rated, paused = self._run(conn, _SCOPE_PAUSED).fetchone()
        return unrated, rated, sorted(queues.only - set(paused))

    def migrate(self) -> list[str]:
        return apply_postgres_migrations(self._conn())

    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        if any(t.depends_on or t.after for t in tasks):
            return self._enqueue_graph(tasks)  # dependencies.py
        now = self.now()
        if len(tasks) <= INSERT_CHUNK and all(t.unique_key is None and not t.tags for t in tasks):
            # One statement, its own transaction: one round trip instead of BEGIN,
            # INSERT, NOTIFY and COMMIT. The NOTIFY is delivered at its commit.
            return self._insert_rows(self._conn(), tasks, now, notify=True)
        with self._write() as conn:
            if any(t.unique_key is not None for t in tasks):
                results = [self._insert_one(conn, t, now) for t in tasks]
            else:
                results = []
                for start in range(0, len(tasks), INSERT_CHUNK):
                    results += self._insert_rows(conn, tasks[start:start + INSERT_CHUNK], now)
            self._insert_tags(conn, tasks, results)
            if any(created for _, created in results):
                self._wake_listeners(conn)
        return results

    def _insert_rows(self, conn, tasks: list[NewTask], now: float,
                     notify: bool = False) -> list[tuple[int, bool]]:
        """Insert tasks in one multi-row statement; ids in the order of ``tasks``
        (one INSERT draws its ids from the sequence row by row, in order)."""
        params = [value for task in tasks for value in insert_params(task, now)]
        rows = conn.execute(_insert_rows_sql(len(tasks), notify), params).fetchall()
        return [(row[0], True) for row in sorted(rows)]

    _claim_sql = staticmethod(_claim_sql)

    def _wake_listeners(self, conn, n: int = 1) -> None:
        # Sent with the COMMIT (``_write``); several rings of one transaction are one
        # NOTIFY, as PostgreSQL would fold them anyway.
        self._local.wake = True

    def notifier(self) -> PgNotifier:
        notifier = getattr(self, "_notifier", None)
        if notifier is None:
            notifier = self._notifier = PgNotifier(self)
        return notifier

    def prune_counters(self, now: float) -> None:
        super().prune_counters(now)
        with self._write() as conn:
            for table in _FOLD:
                conn.execute(fold_statement(table))


# Server states that end or refuse sessions: admin_shutdown, crash_shutdown,
# cannot_connect_now (starting up, shutting down, in recovery).
_GONE_STATES = {"57P01", "57P02", "57P03"}


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the server cannot be reached (refused, down, restarting,
    a connection that died), judged by type and SQLSTATE: errors raised by the
    client library itself carry none, a lost connection is class 08."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in _GONE_STATES


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection that notices a dead server or network in seconds:
    a bounded connect, TCP keepalives on idle connections and a bound on unacked
    data (``tcp_user_timeout``). Parameters given in ``url`` win over these."""
    given = conninfo_to_dict(url)
    options: dict[str, Any] = {
        key: value for key, value in defaults.PG_CONNECTION.items() if key not in given}
    return psycopg.connect(url, autocommit=True, **options)


def clock_offset(conn: psycopg.Connection) -> float:
    """The database's clock minus this host's, measured over one round trip: leases
    and liveness are kept on the database's clock, whatever this host's says."""
    before = time.time()
    row = conn.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()
    after = time.time()
    if row is None:  # a SELECT of one value always returns one row
        raise psycopg.InterfaceError("the server returned no clock reading")
    (server,) = row
    return float(server) - (before + after) / 2


class PgNotifier:
    """PostgreSQL's notifier: ``NOTIFY`` wakes the idle workers of every host."""

    def __init__(self, backend: PostgresBackend):
        self._backend = backend

    def notify(self, n: int = 1) -> None:
        """Wake idle workers (every listener hears one NOTIFY; ``n`` is not needed)."""
        self._backend._conn().execute(f"NOTIFY {CHANNEL}")

    def listen(self) -> NotifyListener:
        """A LISTEN connection for one idle worker."""
        return NotifyListener(self._backend.url)

    def held(self) -> ContextManager[None]:
        """Nothing to hold: a NOTIFY is delivered when its transaction commits."""
        return nullcontext()


class NotifyListener:
    """An idle worker's wait for a NOTIFY (or the timeout)."""

    def __init__(self, url: str):
        self._url = url
        self._conn: psycopg.Connection | None = None  # (re)connected at the next wait

    def wait(self, timeout: float) -> bool:
        """True if a notification arrived before ``timeout`` seconds passed. A lost
        connection is dropped (and the error raised): the next wait connects again."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._url)
                self._conn.execute(f"LISTEN {CHANNEL}")
                return True  # notifications may have been missed while away: look now
            return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reset(self) -> None:
        """The server was lost: this connection died with the others; the next wait
        connects again (rather than finding it dead, and reporting it, on its own)."""
        self.close()


# Counter rows of connections that are gone are added into shard 0 and removed,
# so the counter tables stay as small as the number of live connections.
_FOLD = {
    "task_counts": (("queue", "status"), ("live", "entered", "created")),
    "task_minutes": (("minute", "queue"), ("succeeded", "failed", "picked", "pickup_sum")),
    "task_histograms": (("metric", "queue", "le"), ("n", "total")),
}


def fold_statement(table: str) -> str:
    """Move the counter rows of ended connections of ``table`` into shard 0."""
    keys, values = _FOLD[table]
    key_list, value_list = ", ".join(keys), ", ".join(values)
    sums = ", ".join(f"SUM({v})" for v in values)
    updates = ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in values)
    return (f"WITH gone AS (DELETE FROM {table} WHERE shard <> 0 AND shard NOT IN"
            f" (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)"
            f" RETURNING {key_list}, {value_list})"
            f" INSERT INTO {table} AS t ({key_list}, shard, {value_list})"
            f" SELECT {key_list}, 0, {sums} FROM gone GROUP BY {key_list}"
            f" ON CONFLICT ({key_list}, shard) DO UPDATE SET {updates}")
