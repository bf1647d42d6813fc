"""Task dependencies: enqueueing a graph, releasing and cancelling dependents, retry.

::

    blocked ──every dependency succeeded──▶ queued
    blocked ──a dependency failed or was cancelled──▶ cancelled (and its dependents, on down)
    cancelled by a dependency ──that dependency retried──▶ blocked

A task's dependencies are in its ``depends_on`` column (a JSON list); ``task_deps``
holds the same edges by dependency, so the tasks a finished task affects are one
primary-key lookup away. Every edge points from an older task to a newer one (a
task can only depend on tasks that exist, or on earlier items of the same
enqueue, which the caller orders first), so locking dependents after their
dependencies is locking in ascending id order, like the rest of the state machine.

On PostgreSQL a transaction that may release a dependent first locks it (and its
ancestors, in id order), then reads its dependencies' statuses in a new
statement: of two dependencies finishing at once, the second to take the lock
sees the first one's commit, so a dependent is never left blocked.
"""
from __future__ import annotations

import json

from hopper.app.backends.base import InvalidDependency, NewTask
from hopper.app.backends.sql_parts import SqlParts
from hopper.app.backends.sql_parts import marks as _marks

FINAL_BAD = ("failed", "cancelled")
_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's parameter limit


def _chunks(values: list, size: int = _IN_CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


class TaskDependencies(SqlParts):
    """Mixed into the SQL backend (uses ``_run``, ``_write``, ``_insert_one``,
    ``_insert_tags``, ``_lock_ancestors``, ``_settle``, ``_wake_listeners``); every
    status it changes is reported to the transaction's counters (``_counted``)."""

    def queued_dependents(self, task_id: int) -> list[int]:
        """Ids of the queued tasks that depend on ``task_id``, in id order."""
        return [r[0] for r in self._read(
            "SELECT t.id FROM task_deps d JOIN tasks t ON t.id = d.task_id"
            " WHERE d.depends_on = ? AND t.status = 'queued' ORDER BY t.id", (task_id,))]

    # -- enqueue ---------------------------------------------------------------
    def _enqueue_graph(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        """Insert tasks that depend on existing tasks (``depends_on``) or on earlier
        tasks of this list (``after``) in one transaction; InvalidDependency (and
        nothing stored) when a named task does not exist."""
        now = self.now()  # the database's clock, as the rest of the transitions
        with self._write() as conn:
            external = sorted({d for t in tasks for d in t.depends_on})
            known = self._dependency_rows(conn, external)
            missing = [d for d in external if d not in known]
            if missing:
                raise InvalidDependency(
                    f"depends_on names no task: {', '.join(str(m) for m in missing)}")
            results: list[tuple[int, bool]] = []
            edges: list[tuple[int, int]] = []
            bad: list[tuple[int, str]] = []  # dependencies already failed or cancelled
            for task in tasks:
                for index in task.after:
                    if index >= len(results):
                        raise InvalidDependency("a task can only depend on earlier items")
                deps = [*task.depends_on, *(results[i][0] for i in task.after)]
                deps = sorted(set(deps))
                statuses = [known[d][0] for d in deps]
                task.depends_on = tuple(deps)
                if deps and not all(s == "succeeded" for s in statuses):
                    task.status = "blocked"
                if task.traceparent is None:
                    # A dependent enqueued outside any span carries its dependencies' trace on.
                    task.traceparent = next((known[d][1] for d in deps if known[d][1]), None)
                task_id, created = self._insert_one(conn, task, now)
                results.append((task_id, created))
                if not created:
                    known[task_id] = self._dependency_rows(conn, [task_id])[task_id]
                    continue
                known[task_id] = (task.status, task.traceparent)
                edges += [(d, task_id) for d in deps]
                bad += [(d, s) for d, s in zip(deps, statuses, strict=True) if s in FINAL_BAD]
            if edges:  # one batch: a round trip per task less on PostgreSQL
                self._run_many(conn, "INSERT INTO task_deps (depends_on, task_id) VALUES (?, ?)",
                               edges)
                self._mark_depended_on(conn, sorted({d for d, _ in edges}))
            self._insert_tags(conn, tasks, results)
            if bad:
                self._dependencies_done(conn, sorted(set(bad)))
            pairs = zip(tasks, results, strict=True)
            runnable = sum(1 for t, (_, created) in pairs if created and t.status == "queued")
            if runnable:
                self._wake_listeners(conn, runnable)
            return results

    def _dependency_rows(self, conn, ids: list[int]) -> dict[int, tuple[str, str | None]]:
        """``{id: (status, traceparent)}`` of existing tasks; on PostgreSQL their rows
        are locked so that none finishes unseen before this transaction commits (its
        finish waits, then reads the ``has_dependents`` this transaction sets)."""
        found: dict[int, tuple[str, str | None]] = {}
        lock = " FOR UPDATE" if self.row_locks else ""
        for chunk in _chunks(ids):
            for task_id, status, traceparent in self._run(
                    conn, f"SELECT id, status, traceparent FROM tasks WHERE id IN ({_marks(chunk)})"
                    f" ORDER BY id{lock}", chunk).fetchall():
                found[task_id] = (status, traceparent)
        return found

    def _mark_depended_on(self, conn, ids: list[int]) -> None:
        """Flag tasks that now have dependents: a finished task's own row says whether
        to look for them, so a batch with none costs no read (a round trip on
        PostgreSQL after every group commit)."""
        for chunk in _chunks(ids):
            self._run(conn, f"UPDATE tasks SET has_dependents = TRUE WHERE id IN ({_marks(chunk)})"
                      " AND NOT has_dependents", chunk)

    # -- a dependency finished -------------------------------------------------
    def _dependencies_done(self, conn, finals: list[tuple[int, str]]) -> None:
        """Tasks reached a final status: release the dependents whose dependencies
        have all succeeded, cancel (down the graph) those of a failed or cancelled one.
        The worker's path passes only tasks flagged ``has_dependents``."""
        done = [(t, s) for t, s in finals if s in ("succeeded", *FINAL_BAD)]
        if not done:
            return
        edges = self._edges_from(conn, [t for t, _ in done])
        if not edges:
            return
        status_of = dict(done)
        released = sorted({d for dep, d in edges if status_of[dep] == "succeeded"})
        causes: dict[int, tuple[int, str]] = {}
        for dep, dependent in sorted(edges):
            if status_of[dep] in FINAL_BAD and dependent not in causes:
                verb = "failed" if status_of[dep] == "failed" else "was cancelled"
                causes[dependent] = (dep, f"dependency {dep} {verb}")
        if released:
            self._release(conn, released)
        if causes:
            self._cancel_dependents(conn, causes)

    def _edges_from(self, conn, ids: list[int]) -> list[tuple[int, int]]:
        """``(dependency, dependent)`` edges leaving ``ids``. On PostgreSQL it takes an
        array, so its text is the same for any batch size and the server keeps it
        prepared."""
        if self.row_locks:  # PostgreSQL (the engine with row locks) has arrays
            return self._run(conn, "SELECT depends_on, task_id FROM task_deps"
                             " WHERE depends_on = ANY(CAST(? AS BIGINT[]))", (ids,)).fetchall()
        edges: list[tuple[int, int]] = []
        for chunk in _chunks(ids):
            edges += self._run(conn, "SELECT depends_on, task_id FROM task_deps"
                               f" WHERE depends_on IN ({_marks(chunk)})", chunk).fetchall()
        return edges

    def _release(self, conn, candidates: list[int]) -> None:
        """Queue the blocked ``candidates`` whose dependencies have all succeeded."""
        self._lock_ancestors(conn, candidates, include_self=True)
        rows = []
        for chunk in _chunks(candidates):
            rows += self._run(conn, "SELECT id, depends_on FROM tasks WHERE status = 'blocked'"
                              f" AND id IN ({_marks(chunk)})", chunk).fetchall()
        needs = {task_id: json.loads(deps) if deps else [] for task_id, deps in rows}
        wanted = sorted({d for deps in needs.values() for d in deps})
        unmet: set[int] = set()
        for chunk in _chunks(wanted):
            unmet.update(r[0] for r in self._run(
                conn, f"SELECT id FROM tasks WHERE id IN ({_marks(chunk)})"
                " AND status <> 'succeeded'", chunk).fetchall())
        # A dependency that no longer exists (deleted after it finished) is not waited for.
        ready = sorted(t for t, deps in needs.items() if not unmet.intersection(deps))
        if not ready:
            return
        now = self.now()
        queues: list[str] = []
        for chunk in _chunks(ready):
            # run_after is moved up to now: pickup latency counts from when it became ready.
            queues += [r[0] for r in self._run(
                conn, "UPDATE tasks SET status = 'queued',"
                " run_after = CASE WHEN run_after < ? THEN ? ELSE run_after END"
                f" WHERE status = 'blocked' AND id IN ({_marks(chunk)}) RETURNING queue",
                (now, now, *chunk)).fetchall()]
        self._counted().moved_each(queues, "blocked", "queued")
        if queues:
            self._wake_listeners(conn, len(queues))  # released together: wake a worker each

    def _cancel_dependents(self, conn, causes: dict[int, tuple[int, str]]) -> None:
        """Cancel blocked dependents, each with its reason and the dependency that
        caused it, then theirs (``dependency 13 was cancelled (dependency 12 failed)``)."""
        now = self.now()
        roots = {task_id: reason for task_id, (_, reason) in causes.items()}
        while causes:
            ids = sorted(causes)
            self._lock_ancestors(conn, ids, include_self=True)
            cancelled: list[int] = []
            queues: list[str] = []
            parents: set[int] = set()
            for task_id in ids:
                dep, reason = causes[task_id]
                row = self._run(conn, "UPDATE tasks SET status = 'cancelled', error = ?,"
                                " cancelled_by = ?, finished_at = ?"
                                " WHERE id = ? AND status = 'blocked' RETURNING parent_id, queue",
                                (reason, dep, now, task_id)).fetchone()
                if row is not None:
                    cancelled.append(task_id)
                    queues.append(row[1])
                    if row[0] is not None:
                        parents.add(row[0])
            self._counted().moved_each(queues, "blocked", "cancelled")
            for parent_id in sorted(parents):
                self._settle(conn, parent_id)  # a fan-out child cancelled: its parent may be done
            causes, next_roots = {}, {}
            for chunk in _chunks(cancelled):
                for dep, dependent in self._run(
                        conn, "SELECT depends_on, task_id FROM task_deps"
                        f" WHERE depends_on IN ({_marks(chunk)}) ORDER BY depends_on, task_id",
                        chunk).fetchall():
                    if dependent not in causes:
                        causes[dependent] = (dep, f"dependency {dep} was cancelled ({roots[dep]})")
                        next_roots[dependent] = roots[dep]
            roots = next_roots

    # -- retry -----------------------------------------------------------------
    def _after_retry(self, conn, task_id: int) -> None:
        """A retried task waits again for dependencies that have not succeeded, and
        the dependents its failure cancelled (and theirs) go back to ``blocked``."""
        row = self._run(conn, "SELECT status, depends_on FROM tasks WHERE id = ?",
                        (task_id,)).fetchone()
        self._run(conn, "UPDATE tasks SET cancelled_by = NULL WHERE id = ?", (task_id,))
        if row is not None and row[0] == "queued" and row[1]:
            deps = json.loads(row[1])
            if deps and self._run(conn, f"SELECT 1 FROM tasks WHERE id IN ({_marks(deps)})"
                                  " AND status <> 'succeeded' LIMIT 1", deps).fetchone():
                (queue,) = self._run(conn, "UPDATE tasks SET status = 'blocked' WHERE id = ?"
                                     " RETURNING queue", (task_id,)).fetchone()
                self._counted().moved(queue, "queued", "blocked")
        frontier = [task_id]
        while frontier:
            restored: list[tuple[int, str]] = []
            for chunk in _chunks(frontier):
                candidates = [r[0] for r in self._run(
                    conn, "SELECT task_id FROM task_deps"
                    f" WHERE depends_on IN ({_marks(chunk)}) ORDER BY task_id", chunk).fetchall()]
                if not candidates:
                    continue
                self._lock_ancestors(conn, candidates, include_self=True)
                for sub in _chunks(candidates):
                    restored += [(r[0], r[1]) for r in self._run(
                        conn, "UPDATE tasks SET status = 'blocked', error = NULL,"
                        " finished_at = NULL, cancelled_by = NULL"
                        f" WHERE status = 'cancelled' AND cancelled_by IN ({_marks(chunk)})"
                        f" AND id IN ({_marks(sub)}) RETURNING id, queue",
                        (*chunk, *sub)).fetchall()]
            self._counted().moved_each([q for _, q in restored], "cancelled", "blocked")
            frontier = sorted({t for t, _ in restored})
            self._rewait_parents(conn, frontier)

    def _rewait_parents(self, conn, restored: list[int]) -> None:
        """A fan-out parent that settled because a child was cancelled waits again
        for the child brought back (its continuation runs once more when it settles)."""
        for chunk in _chunks(restored):
            queues = [r[0] for r in self._run(
                conn, "UPDATE tasks SET status = 'waiting', error = NULL, finished_at = NULL"
                " WHERE status = 'failed' AND id IN (SELECT parent_id FROM"
                f" tasks WHERE id IN ({_marks(chunk)}) AND parent_id IS NOT NULL)"
                " RETURNING queue", chunk).fetchall()]
            self._counted().moved_each(queues, "failed", "waiting")

    def _has_dependency_edges(self, ids: list[int]) -> set[int]:
        """Which of ``ids`` depend on a task or have dependents (bulk retry sends those
        through ``retry``)."""
        found: set[int] = set()
        for chunk in _chunks(ids):
            found.update(r[0] for r in self._read(
                f"SELECT id FROM tasks WHERE id IN ({_marks(chunk)}) AND depends_on IS NOT NULL",
                chunk))
            found.update(r[0] for r in self._read(
                f"SELECT DISTINCT depends_on FROM task_deps WHERE depends_on IN ({_marks(chunk)})",
                chunk))
        return found
