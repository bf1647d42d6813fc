"""Listing, searching and bulk actions on tasks, in plain SQL for both engines.

A listing filter that no index answers (a name, a queue, a text search) is
checked over at most ``LIST_SCAN_WINDOW`` ids per page, newest first: with ten
million tasks a page still costs a bounded scan, and a sparse match comes back
as a short page with a cursor to continue from (an empty page with a cursor
means "nothing in these ids, older ones remain").
"""
from __future__ import annotations

import time

from hopper.app.backends.base import (
    FINISHED,
    TASK_COLUMNS,
    UNFINISHED,
    TaskConflict,
    task_dict,
)
from hopper.app.backends.sql_parts import SqlParts
from hopper.app.backends.sql_parts import marks as _marks

COLS = ", ".join(TASK_COLUMNS)  # every column of a task row, in task_dict's order

LIST_SCAN_WINDOW = 20_000
BULK_LIMIT = 10_000          # a filter touches at most this many tasks per call
BULK_CHUNK = 500             # ids per write transaction: keeps the write lock short
BULK_ACTIONS = {"retry": ("failed", "cancelled"), "cancel": UNFINISHED, "delete": FINISHED}
# Statuses served by a partial index (see migrations): listing them needs no window.
INDEXED_STATUSES = ("waiting", "failed", "cancelled", "blocked")
# Enough to tell a rare tag (one user's) from a common one ("report") cheaply.
TAG_COUNT_CAP = 1000


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards escaped (``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class TaskQueries(SqlParts):
    """Mixed into the SQL backend."""

    like = "LIKE"   # case-insensitive for ASCII on SQLite; PostgreSQL uses ILIKE

    def _filters(self, status=None, name=None, queue=None, parent_id=None, q=None,
                 statuses: tuple[str, ...] | None = None) -> tuple[list[str], list]:
        clauses, params = [], []
        if status in INDEXED_STATUSES:
            # A literal, so the planner can use the partial index of that status.
            clauses.append(f"status = '{status}'")
            status = None
        for column, value in (("status", status), ("name", name), ("queue", queue),
                              ("parent_id", parent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if statuses is not None:
            clauses.append(f"status IN ({', '.join(repr(s) for s in statuses)})")
        if q:
            pattern = like_pattern(q)
            clauses.append(f"(name {self.like} ? ESCAPE '\\' OR args {self.like} ? ESCAPE '\\'"
                           f" OR error {self.like} ? ESCAPE '\\')")
            params += [pattern] * 3
        return clauses, params

    def _select(self, clauses: list[str], params: list, limit: int, source: str = "tasks",
                order: str = "id") -> list[dict]:
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT {COLS} FROM {source} {where} ORDER BY {order} DESC LIMIT ?",
                          (*params, limit))
        return [task_dict(r) for r in rows]

    def _tag_filter(self, tags: list[str], clauses: list, params: list) -> tuple[str, str]:
        """Add the conditions of a tag filter; return the listing's source and order.

        The rarest tag's index entries are walked newest first; every further tag
        is one primary-key probe per candidate. (A scalar subquery, not EXISTS:
        PostgreSQL turns EXISTS into a hash join over every task of a common tag.)
        """
        first, *others = self._rarest_first(tags) if len(tags) > 1 else tags
        clauses.append("g.tag = ?")
        params.append(first)
        for tag in others:
            clauses.append("(SELECT 1 FROM task_tags h"
                           " WHERE h.tag = ? AND h.task_id = g.task_id) IS NOT NULL")
            params.append(tag)
        return "task_tags g JOIN tasks ON tasks.id = g.task_id", "g.task_id"

    def _rarest_first(self, tags: list[str]) -> list[str]:
        """The tags ordered by how many tasks carry them, counted up to a cap."""
        counts = {tag: self._read(
            "SELECT count(*) FROM (SELECT 1 FROM task_tags WHERE tag = ? LIMIT ?) capped",
            (tag, TAG_COUNT_CAP))[0][0] for tag in set(tags)}
        return sorted(tags, key=counts.__getitem__)

    def page(self, limit: int = 50, cursor: int | None = None,
             **filters) -> tuple[list[dict], int | None]:
        """One page newest first and the cursor of the next page (None: no more)."""
        scan = any(filters.get(k) for k in ("name", "queue", "q")) or (
            filters.get("status") is not None and filters["status"] not in INDEXED_STATUSES)
        if not scan or filters.get("parent_id") is not None or filters.get("tags"):
            rows = self.list(**filters, limit=limit + 1, cursor=cursor)
            return rows[:limit], (rows[limit - 1]["id"] if len(rows) > limit else None)
        if cursor is not None:
            top = cursor
        else:
            top = (self._read("SELECT MAX(id) FROM tasks")[0][0] or 0) + 1
        low = max(top - LIST_SCAN_WINDOW, 0)
        clauses, params = self._filters(**{k: v for k, v in filters.items() if k != "tags"})
        clauses += ["id < ?", "id >= ?"]
        rows = self._select(clauses, [*params, top, low], limit + 1)
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1]["id"]
        oldest = self._read("SELECT MIN(id) FROM tasks")[0][0]
        return rows, (low if oldest is not None and oldest < low else None)

    # -- bulk actions -------------------------------------------------------
    def bulk_match(self, action: str, ids: list[int] | None = None,
                   filter: dict | None = None) -> list[int]:
        """Ids the action applies to: among ``ids``, or the newest ``BULK_LIMIT``
        tasks matching ``filter``, in the statuses the action accepts."""
        statuses = BULK_ACTIONS[action]
        if ids is not None:
            found = []
            for start in range(0, len(ids), BULK_CHUNK):
                chunk = ids[start:start + BULK_CHUNK]
                found += [r[0] for r in self._read(
                    f"SELECT id FROM tasks WHERE id IN ({_marks(chunk)})"
                    f" AND status IN ({', '.join(repr(s) for s in statuses)})", chunk)]
            return sorted(found, reverse=True)
        filter = dict(filter or {})
        if filter.get("status") is not None and filter["status"] not in statuses:
            return []
        clauses, params = self._filters(**filter, statuses=statuses)
        where = " AND ".join(clauses)
        return [r[0] for r in self._read(
            f"SELECT id FROM tasks WHERE {where} ORDER BY id DESC LIMIT ?", (*params, BULK_LIMIT))]

    def bulk(self, action: str, ids: list[int] | None = None, filter: dict | None = None,
             dry_run: bool = False) -> dict:
        """Retry, cancel or delete the matched tasks: ``{matched, changed}``.

        Matching is a read; each chunk is then changed in a short write that
        checks the status again, so a task that moved on meanwhile is left alone.
        """
        matched = self.bulk_match(action, ids, filter)
        if dry_run:
            return {"matched": len(matched), "changed": 0}
        change = {"retry": self._bulk_retry, "cancel": self._bulk_cancel,
                  "delete": self._bulk_delete}[action]
        changed = sum(change(matched[i:i + BULK_CHUNK]) for i in range(0, len(matched), BULK_CHUNK))
        return {"matched": len(matched), "changed": changed}

    def _bulk_delete(self, ids: list[int]) -> int:
        with self._write() as conn:
            gone = self._run(conn, f"DELETE FROM tasks WHERE id IN ({_marks(ids)})"
                             " AND status IN ('succeeded', 'failed', 'cancelled')"
                             " RETURNING queue, status", ids).fetchall()
            self._count_deleted(gone)
            deleted = len(gone)
            # The attempt history goes with its task, as when retention prunes it.
            self._run(conn, f"DELETE FROM task_attempts WHERE task_id IN ({_marks(ids)})"
                      " AND task_id NOT IN (SELECT id FROM tasks)", ids)
            return deleted

    def _bulk_cancel(self, ids: list[int]) -> int:
        changed, parents = 0, set()
        with self._write() as conn:
            self._lock_ancestors(conn, ids, include_self=True)
            for task_id in ids:
                row = self._run(conn, "SELECT status, parent_id FROM tasks WHERE id = ?",
                                (task_id,)).fetchone()
                if row is None or row[0] not in UNFINISHED:
                    continue  # finished meanwhile, or cancelled with its parent above
                self._cancel_tree(conn, task_id)
                changed += 1
                if row[1] is not None:
                    parents.add(row[1])
            for parent_id in sorted(parents):
                self._settle(conn, parent_id)
        return changed

    def _bulk_retry(self, ids: list[int]) -> int:
        """Plain tasks are re-queued in one statement; parents and tasks with a
        unique_key go through ``retry`` (children, duplicate checks)."""
        special = {r[0] for r in self._read(
            f"SELECT id FROM tasks t WHERE id IN ({_marks(ids)}) AND (unique_key IS NOT NULL"
            " OR EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = t.id))", ids)}
        special |= self._has_dependency_edges(ids)
        plain = [i for i in ids if i not in special]
        changed = 0
        if plain:
            with self._write() as conn:
                for status in ("failed", "cancelled"):  # one each: the counters need the old one
                    requeued = self._run(
                        # The same change as ``retry`` makes to a task without children.
                        conn, "UPDATE tasks SET status = 'queued', run_after = ?, attempts = 0,"
                        " error = NULL, result = NULL, worker = NULL, started_at = NULL,"
                        f" finished_at = NULL, lease_until = NULL WHERE id IN ({_marks(plain)})"
                        " AND status = ? RETURNING queue", (time.time(), *plain, status)).fetchall()
                    self._counted().moved_each((q for (q,) in requeued), status, "queued")
                    changed += len(requeued)
                if changed:
                    self._wake_listeners(conn, changed)
        for task_id in sorted(special):
            try:
                self.retry(task_id)
                changed += 1
            except (KeyError, TaskConflict):
                continue  # gone, moved on, or its unique_key is taken: left as it is
        return changed

    # Last in the class: above it, ``list`` in an annotation would name this method.
    def list(self, status=None, name=None, queue=None, parent_id=None, limit=50, cursor=None,
             q=None, tags=None):
        clauses: list[str] = []
        params: list = []
        source, order = self._tag_filter(tags, clauses, params) if tags else ("tasks", "id")
        more, more_params = self._filters(status, name, queue, parent_id, q)
        clauses += more
        params += more_params
        if cursor is not None:
            clauses.append(f"{order} < ?")
            params.append(cursor)
        return self._select(clauses, params, limit, source, order)
