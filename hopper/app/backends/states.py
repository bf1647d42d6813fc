"""The task state machine, in one place: claim, finish, settle, retry, cancel, rescue.

::

    queued ──claim──▶ running ──ok──▶ succeeded
       ▲                 │  └──ok, has children──▶ waiting ──settle──▶ succeeded | failed
       └──attempts left──┤
                         └──no attempt left──▶ failed
    queued | running | waiting ──cancel──▶ cancelled
    failed | cancelled ──retry──▶ queued (no children) | waiting (failed children re-queued)

Every transition is one write transaction. A finished child settles its parent
(and a settled parent its own parent, up the tree); on engines with row locks
(PostgreSQL) the transaction first locks every ancestor of the tasks it touches,
in ascending id order (a parent is always older than its children), so siblings
finishing at once settle each level exactly once and never deadlock. SQLite has
one writer at a time and needs no row locks.

Failed attempts (and rescued ones) leave a row in ``task_attempts``; a success
writes nothing extra: the task row itself describes the last attempt.

The claim statement itself is engine SQL (``_claim`` in the engine modules).
Each transition reports the rows it changed to the transaction's counter batch
(``self._counted()``, counter_batch.py), which the engine writes before COMMIT.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from hopper.app.backends import retries
from hopper.app.backends.base import (
    ATTEMPT_ERROR,
    ATTEMPT_LOST,
    ATTEMPT_UNSTORABLE,
    UNFINISHED,
    Claimed,
    NewTask,
    Outcome,
    QueueFilter,
    TaskConflict,
)
from hopper.app.backends.sql_parts import SqlParts, marks
from hopper.app.backends.storable import storable, storable_error

log = logging.getLogger("hopper.states")

UNFINISHED_SQL = "('queued', 'running', 'waiting', 'blocked')"


def continuation_key(parent_id: int) -> str:
    """The unique_key of the continuation a parent's settling enqueues (one per parent)."""
    return f"continuation:{parent_id}"


def claimed_from_row(row) -> Claimed:
    """A claim's row (``CLAIM_RETURNING``'s columns) as the worker's ``Claimed``."""
    return Claimed(row[0], row[1], row[2], row[3], row[4], row[5], row[6], queue=row[7],
                   traceparent=row[11])

# -- statements --------------------------------------------------------------
# Successes of one batch in one statement; ``{rows}`` repeats _SUCCEED_ROW. The
# casts give PostgreSQL the column types VALUES cannot infer from parameters.
_SUCCEED_ROW = ("(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION),"
                " CAST(? AS DOUBLE PRECISION), CAST(? AS BIGINT))")
_SUCCEED_MANY = """
UPDATE tasks SET status = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id)
                          THEN 'waiting' ELSE 'succeeded' END,
       result = v.column2, started_at = v.column3, finished_at = v.column4, lease_until = NULL
  FROM (VALUES {rows}) AS v
 WHERE tasks.id = v.column1 AND tasks.status = 'running' AND tasks.worker = ?
   AND tasks.attempts = COALESCE(v.column5, tasks.attempts)
RETURNING id, status, parent_id, queue, started_at, finished_at, has_dependents
"""
# retry_at (decided by retries.retry_at) NULL means no attempt is left: failed for good.
_FAIL = """
UPDATE tasks SET status = CASE WHEN CAST(? AS DOUBLE PRECISION) IS NOT NULL
                          THEN 'queued' ELSE 'failed' END,
       run_after = COALESCE(CAST(? AS DOUBLE PRECISION), run_after), error = ?,
       started_at = COALESCE(CAST(? AS DOUBLE PRECISION), started_at),
       finished_at = CASE WHEN CAST(? AS DOUBLE PRECISION) IS NOT NULL
                     THEN NULL ELSE CAST(? AS DOUBLE PRECISION) END,
       lease_until = NULL
 WHERE id = ? AND status = 'running' AND worker = ?
   AND attempts = COALESCE(CAST(? AS BIGINT), attempts)
RETURNING id, status, parent_id, queue, started_at, finished_at, has_dependents
"""
_RECORD_ATTEMPT = """
INSERT INTO task_attempts (task_id, attempt, worker, started_at, finished_at, error, kind)
SELECT id, attempts, worker, started_at, ?, error, ? FROM tasks WHERE id = ?
"""
# Given back unstarted (prefetched, or held by a worker that stopped): not an attempt.
_RELEASE = ("UPDATE tasks SET status = 'queued', attempts = attempts - 1, worker = NULL,"
            " lease_until = NULL, started_at = NULL"
            " WHERE id IN ({in_list}) AND status = 'running' AND worker = ? RETURNING queue")
_RELEASE_WORKER = ("UPDATE tasks SET status = 'queued', attempts = attempts - 1, worker = NULL,"
                   " lease_until = NULL, started_at = NULL"
                   " WHERE status = 'running' AND worker = ? RETURNING queue")
_CLAIM_ID = """
UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,
       attempts = attempts + 1
 WHERE id = ? AND status = 'queued'
RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, queue, priority,
          run_after, created_at, traceparent
"""
_CHILD_FAILED = ("EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id"
                 " AND c.status IN ('failed', 'cancelled'))")
_SETTLE_PARENT = f"""
UPDATE tasks SET status = CASE WHEN {_CHILD_FAILED} THEN 'failed' ELSE 'succeeded' END,
       error = CASE WHEN {_CHILD_FAILED}
                    THEN 'one or more children failed or were cancelled' ELSE error END,
       finished_at = ?
 WHERE id = ? AND status = 'waiting'
   AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id
                   AND c.status IN {UNFINISHED_SQL})
RETURNING status, parent_id, continuation, queue, started_at, traceparent
"""
# Every ancestor of the given tasks, locked in ascending id order (PostgreSQL).
_LOCK_ANCESTORS = """
WITH RECURSIVE up(id) AS (
    SELECT parent_id FROM tasks WHERE id = ANY(CAST(? AS BIGINT[])) AND parent_id IS NOT NULL
    UNION
    SELECT t.parent_id FROM tasks t JOIN up ON t.id = up.id WHERE t.parent_id IS NOT NULL)
SELECT id FROM tasks WHERE id IN (SELECT id FROM up) OR id = ANY(CAST(? AS BIGINT[]))
 ORDER BY id FOR UPDATE
"""
# Both guarded by the status a retry starts from: the change happens only once.
_REQUEUE = ("UPDATE tasks SET status = 'queued', run_after = ?, attempts = 0, error = NULL,"
            " result = NULL, worker = NULL, started_at = NULL, finished_at = NULL,"
            " lease_until = NULL WHERE id = ? AND status IN ('failed', 'cancelled')"
            " RETURNING queue")
_REWAIT = ("UPDATE tasks SET status = 'waiting', error = NULL, finished_at = NULL,"
           " lease_until = NULL WHERE id = ? AND status IN ('failed', 'cancelled')"
           " RETURNING queue")
_DUPLICATE = (f"SELECT t.id FROM tasks t JOIN tasks me ON me.id = ?"
              f" WHERE t.unique_key = me.unique_key AND t.id <> me.id"
              f" AND t.status IN {UNFINISHED_SQL}")


class TaskStates(SqlParts):
    """The transitions of a task row; mixed into the SQL backend.

    Engines provide ``_write``, ``_run``, ``_run_many``, ``_claim`` (given the
    ``_claim_targets`` of the queues it may read, from ``_claim_scope``),
    ``row_locks`` (True where rows must be locked) and ``data_errors`` (the
    exception types of a value the database refuses).
    """

    row_locks = False
    data_errors: tuple[type[BaseException], ...] = ()

    # -- locking -------------------------------------------------------------
    def _lock_ancestors(self, conn, task_ids: list[int], include_self: bool = False) -> None:
        """Lock every ancestor of ``task_ids`` (and the tasks themselves if asked)."""
        if self.row_locks and task_ids:
            self._run(conn, _LOCK_ANCESTORS, (task_ids, task_ids if include_self else [])
                      ).fetchall()

    # -- claim -----------------------------------------------------------------
    def finish_and_claim(self, worker_id: str, outcomes: list[Outcome], release: list[int],
                         limit: int, lease_s: float,
                         queues: QueueFilter | None = None) -> list[Claimed]:
        """Record outcomes, give back unstarted tasks and claim up to ``limit``
        ready tasks in one transaction. If the database refuses a value in the
        batch, each outcome is recorded on its own instead (see ``_record_alone``),
        so the others are not lost and every attempt is counted."""
        for outcome in outcomes:
            storable(outcome)
        try:
            with self._write() as conn:
                if outcomes:
                    self._record_batch(conn, worker_id, outcomes)
                return self._release_and_claim(conn, worker_id, release, limit, lease_s,
                                               queues)
        except self.data_errors as exc:
            if not outcomes:
                raise
            log.warning("worker %s: the database refused a batch of %d outcome(s) (%s);"
                        " recording them one by one", worker_id, len(outcomes), exc)
        for outcome in outcomes:
            self._record_alone(worker_id, outcome)
        with self._write() as conn:
            return self._release_and_claim(conn, worker_id, release, limit, lease_s, queues)

    def _release_and_claim(self, conn, worker_id, release, limit, lease_s,
                           queues: QueueFilter | None) -> list[Claimed]:
        if release:
            in_list = marks(release)
            released = self._run(conn, _RELEASE.format(in_list=in_list),
                                 [*release, worker_id]).fetchall()
            self._counted().moved_each((q for (q,) in released), "running", "queued")
            if released:
                self._wake_listeners(conn, len(released))  # given back unstarted: for an idle peer
        if limit <= 0:
            return []
        # Only queues that may be claimed are read: a paused or excluded queue,
        # however deep, costs the claim nothing. Keyed tasks first (flow_sql.py).
        return self._claim_all(conn, worker_id, limit, lease_s, queues)

    def queued_continuations(self, parent_ids: list[int]) -> list[int]:
        """Ids of the queued continuations that settling these parents created."""
        if not parent_ids:
            return []
        keys = [continuation_key(p) for p in parent_ids]
        in_list = marks(keys)
        return [r[0] for r in self._read(
            f"SELECT id FROM tasks WHERE status = 'queued' AND unique_key IN ({in_list})", keys)]

    def claim_ids(self, worker_id: str, task_ids: list[int], lease_s: float) -> list[Claimed]:
        """Claim these queued tasks whatever their run_after (the inline engine)."""
        now = self.now()
        with self._write() as conn:
            rows = [self._run(conn, _CLAIM_ID, (worker_id, now + lease_s, now, t)).fetchone()
                    for t in task_ids]
            self._counted().claimed([row for row in rows if row is not None], now)
            self._count_claimed_ids(conn, [row[0] for row in rows if row is not None])
        return [claimed_from_row(row) for row in rows if row is not None]

    # -- finish ----------------------------------------------------------------
    def _record_batch(self, conn, worker_id: str, outcomes: list[Outcome]) -> None:
        """All successes in one UPDATE, then failures one by one, then settling."""
        self._lock_ancestors(conn, [o.task_id for o in outcomes if o.parent_id is not None])
        succeeded = [(o.task_id, o.result, o.started_at, o.finished_at, o.attempt)
                     for o in outcomes if o.ok]
        finished: list[tuple] = self._succeed_many(conn, worker_id, succeeded) if succeeded else []
        self._counted().ended(finished)
        for outcome in outcomes:
            if not outcome.ok:
                row = self._fail(conn, outcome.task_id, worker_id, outcome.error,
                                 outcome.retry_at, outcome.kind or ATTEMPT_ERROR,
                                 outcome.started_at, outcome.finished_at, outcome.attempt)
                if row is not None:  # None: cancelled or rescued meanwhile, the newer state wins
                    finished.append(row)
        for task_id, status, parent_id, *_ in finished:
            self._after_finish(conn, task_id, status, parent_id)
        # Only tasks something depends on are looked up (the flag each row returns).
        self._dependencies_done(conn, [(row[0], row[1]) for row in finished if row[6]])

    def _succeed_many(self, conn, worker_id: str, rows: list[tuple]) -> list[tuple]:
        """Record successes ``(id, result, started_at, finished_at, attempt)`` in one
        statement; ``(id, status, parent_id, queue, started_at, finished_at,
        has_dependents)`` of each task it finished. Engines may override."""
        params = [value for row in rows for value in row]
        statement = _SUCCEED_MANY.format(rows=",".join([_SUCCEED_ROW] * len(rows)))
        return self._run(conn, statement, [*params, worker_id]).fetchall()

    def _record_alone(self, worker_id: str, outcome: Outcome) -> None:
        """One outcome in its own transaction; if the database still refuses it,
        the attempt is recorded as failed for good with a note saying why."""
        try:
            with self._write() as conn:
                self._record_batch(conn, worker_id, [outcome])
            return
        except self.data_errors as exc:
            note = (f"the outcome of this attempt could not be stored"
                    f" ({type(exc).__module__}.{type(exc).__name__}); it was recorded as"
                    f" failed instead of being run again")
            log.error("task %s: %s: %s", outcome.task_id, note, exc)
        with self._write() as conn:
            self._record_batch(conn, worker_id, [Outcome(
                outcome.task_id, False, outcome.started_at, outcome.finished_at, error=note,
                parent_id=outcome.parent_id, kind=ATTEMPT_UNSTORABLE, attempt=outcome.attempt)])

    def _fail(self, conn, task_id, worker_id, error, retry_at, kind, started_at=None,
              finished_at=None, attempt=None):
        """End a running attempt as failed and keep it in the task's history; the
        task's row as ``_succeed_many`` returns it, or None if it was not running."""
        finished_at = finished_at or time.time()
        if retry_at is not None:  # given on the caller's clock; run_after is on the database's
            retry_at += self._clock_offset
        row = self._run(conn, _FAIL, (retry_at, retry_at, storable_error(error), started_at,
                                      retry_at, finished_at, task_id, worker_id,
                                      attempt)).fetchone()
        if row is None:
            return None
        self._run(conn, _RECORD_ATTEMPT, (finished_at, kind, task_id))
        self._counted().ended([row])
        if row[1] == "queued":
            self._wake_listeners(conn)  # another attempt, due at retry_at
        return row

    def _after_finish(self, conn, task_id: int, status: str, parent_id: int | None) -> None:
        """A parent waits for its children; a finished child may finish its parent."""
        if status == "waiting":
            self._settle(conn, task_id)
        elif status != "queued" and parent_id is not None:
            self._settle(conn, parent_id)

    # -- settle ----------------------------------------------------------------
    def _settle(self, conn, parent_id: int | None) -> None:
        """Finish a waiting parent whose children are all done, then its parent, and so
        on up the tree. Callers hold the ancestors' locks (``_lock_ancestors``)."""
        while parent_id is not None:
            now = time.time()
            row = self._run(conn, _SETTLE_PARENT, (now, parent_id)).fetchone()
            if row is None:
                return
            status, grandparent, continuation, queue, started_at, traceparent = row
            self._counted().ended([(parent_id, status, grandparent, queue, started_at, now)],
                                  old="waiting")
            self._dependencies_done(conn, [(parent_id, status)])
            if continuation:
                self._insert_one(conn, NewTask(
                    name=continuation, queue=queue,
                    args={"parent_id": parent_id, "parent_status": status},
                    unique_key=continuation_key(parent_id), traceparent=traceparent),
                    time.time())
                self._wake_listeners(conn)
            parent_id = grandparent

    # -- rescue ----------------------------------------------------------------
    def fail_attempt(self, task_id: int, worker_id: str, error: str, retry_at: float | None,
                     kind: str = ATTEMPT_LOST) -> bool:
        """End the running attempt of one task as failed (timeout, lost worker)."""
        with self._write() as conn:
            return self._fail_and_settle(conn, task_id, worker_id, error, retry_at, kind)

    def _fail_and_settle(self, conn, task_id, worker_id, error, retry_at, kind) -> bool:
        self._lock_ancestors(conn, [task_id])
        row = self._fail(conn, task_id, worker_id, error, retry_at, kind)
        if row is not None:
            self._after_finish(conn, task_id, row[1], row[2])
            if row[6]:
                self._dependencies_done(conn, [(task_id, row[1])])
        return row is not None

    def requeue_worker(self, worker_id: str, current_task: int | None, error: str,
                       retry_at: float | None, count_all: bool = False) -> int:
        """A worker is gone: its current task (or, with ``count_all``, every task it
        held) fails an attempt, queued again at ``retry_at`` while it has attempts left
        (``retries.retry_at``); the rest, claimed but never started, go back unchanged."""
        with self._write() as conn:
            if count_all:
                counted = self._run(conn, "SELECT id, attempts, max_attempts FROM tasks"
                                    " WHERE status = 'running' AND worker = ?",
                                    (worker_id,)).fetchall()
            else:
                counted = self._run(conn, "SELECT id, attempts, max_attempts FROM tasks"
                                    " WHERE id = ? AND status = 'running' AND worker = ?",
                                    (current_task, worker_id)).fetchall()
            self._lock_ancestors(conn, [r[0] for r in counted])  # in id order, like everyone
            touched = sum(self._fail_and_settle(
                conn, task_id, worker_id, error,
                retries.retry_at(attempts, max_attempts, ATTEMPT_LOST, now=retry_at),
                ATTEMPT_LOST) for task_id, attempts, max_attempts in counted)
            released = self._run(conn, _RELEASE_WORKER, (worker_id,)).fetchall()
            self._counted().moved_each((q for (q,) in released), "running", "queued")
            if released:
                self._wake_listeners(conn, len(released))
            return touched + len(released)

    # -- cancel ----------------------------------------------------------------
    def cancel(self, task_id: int) -> dict:
        """Cancel an unfinished task and its unfinished descendants; settle its parent."""
        with self._write() as conn:
            self._lock_ancestors(conn, [task_id], include_self=True)
            self._cancel_tree(conn, task_id)
            row = self._run(conn, "SELECT parent_id FROM tasks WHERE id = ?", (task_id,)).fetchone()
            self._settle(conn, row[0])
        return self._reread(task_id)

    def _cancel_tree(self, conn, task_id: int) -> None:
        row = self._run(conn, "SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise KeyError(task_id)
        if row[0] not in UNFINISHED:
            raise TaskConflict(f"task {task_id} is already {row[0]}")
        (queue,) = self._run(conn, "UPDATE tasks SET status = 'cancelled', finished_at = ?,"
                             " lease_until = NULL WHERE id = ? RETURNING queue",
                             (time.time(), task_id)).fetchone()
        self._counted().moved(queue, row[0], "cancelled")
        self._dependencies_done(conn, [(task_id, "cancelled")])
        children = self._run(
            conn, f"SELECT id FROM tasks WHERE parent_id = ? AND status IN {UNFINISHED_SQL}",
            (task_id,)).fetchall()
        for (child_id,) in children:
            self._cancel_tree(conn, child_id)

    # -- retry -----------------------------------------------------------------
    def retry(self, task_id: int) -> dict:
        """Re-queue a failed or cancelled task.

        A task that never enqueued a child runs again from scratch. A parent
        does not run again: its failed and cancelled children (and theirs, down
        the tree) are re-queued and it goes back to ``waiting``; when they are
        done it settles once more and its continuation runs once more.
        """
        with self._write() as conn:
            # The lock first, then the status read under it: of concurrent retries the
            # first re-queues the task and the others then see it queued (409).
            self._lock_ancestors(conn, [task_id], include_self=True)
            row = self._run(conn, "SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise KeyError(task_id)
            if row[0] not in ("failed", "cancelled"):
                raise TaskConflict(
                    f"task {task_id} is {row[0]}; only failed or cancelled tasks can be retried")
            duplicate = self._run(conn, _DUPLICATE, (task_id,)).fetchone()
            if duplicate:
                raise TaskConflict(f"task {duplicate[0]} with the same unique_key is unfinished")
            if self._retry_tree(conn, task_id, row[0], self.now()):
                self._settle(conn, task_id)  # nothing left to re-run: it settles at once
            self._after_retry(conn, task_id)  # dependencies: wait again, bring dependents back
            self._wake_listeners(conn)
            # Read back before the commit wakes a worker: the task as the retry left it.
            return self._reread(task_id)

    def _reread(self, task_id: int) -> dict:
        """A task just changed, read back; KeyError if another process deleted it since."""
        found = self.get(task_id)
        if found is None:
            raise KeyError(task_id)
        return found

    def _retry_tree(self, conn, task_id: int, status: str, now: float) -> bool:
        """Re-queue one failed or cancelled task (now in ``status``); True if it went
        back to ``waiting``."""
        children = self._run(conn, "SELECT id, status FROM tasks WHERE parent_id = ? ORDER BY id",
                             (task_id,)).fetchall()
        if not children:
            requeued = self._run(conn, _REQUEUE, (now, task_id)).fetchone()
            if requeued is not None:  # None: guarded, it had left failed/cancelled already
                self._counted().moved(requeued[0], status, "queued")
            return False
        for child_id, child_status in children:
            if child_status not in ("failed", "cancelled"):
                continue
            if self._run(conn, _DUPLICATE, (child_id,)).fetchone():
                continue  # an equal task is already unfinished: that one does the work
            if self._retry_tree(conn, child_id, child_status, now):
                self._settle(conn, child_id)
        rewaited = self._run(conn, _REWAIT, (task_id,)).fetchone()
        if rewaited is not None:  # None: guarded, as above
            self._counted().moved(rewaited[0], status, "waiting")
        return True

    # -- history ---------------------------------------------------------------
    def history(self, task: dict) -> list[dict[str, Any]]:
        """Every attempt of a task, oldest first: failed ones from ``task_attempts``,
        the latest one (running, or ended well) from the task row itself."""
        names = ("attempt", "worker", "started_at", "finished_at", "error", "kind")
        rows = [dict(zip(names, r, strict=True)) for r in self._read(
            f"SELECT {', '.join(names)} FROM task_attempts WHERE task_id = ? ORDER BY id",
            (task["id"],))]
        last_start = rows[-1]["started_at"] if rows else None
        if task["started_at"] is not None and task["started_at"] != last_start and (
                task["status"] in ("running", "waiting", "succeeded", "cancelled")):
            rows.append({"attempt": task["attempts"], "worker": task["worker"],
                         "started_at": task["started_at"], "finished_at": task["finished_at"],
                         "error": None, "kind": None})
        return rows
