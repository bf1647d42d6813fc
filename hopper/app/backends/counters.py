"""Reading the task counters, kept in the transactions that change tasks.

The backend updates small counter tables (migrations ``sqlite/0008`` and
``postgres/0007``) in the same transaction as every change to a task, one
grouped upsert per transaction (counter_batch.py), so these reads cost a few
rows however large the tasks table grows. On PostgreSQL
each connection writes its own rows (``shard``); every read sums the shards.
"""
from __future__ import annotations

import time

from hopper.app.backends.sql_parts import SqlParts

# Per-minute rows are kept this long (the charts show the last hour).
MINUTES_KEPT_S = 86400
INFINITY = float("inf")


class CounterReads(SqlParts):
    """Mixed into the SQL backend: counts, totals, per-minute rows, histograms."""

    def counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {status: n}}`` of the tasks in the table now (statuses with none left out)."""
        out: dict[str, dict[str, int]] = {}
        for queue, status, n in self._read(
                "SELECT queue, status, SUM(live) FROM task_counts GROUP BY queue, status"
                " HAVING SUM(live) > 0 ORDER BY queue, status"):
            out.setdefault(queue, {})[status] = int(n)
        return out

    def totals(self) -> dict[str, dict]:
        """Counters that never decrease, pruning included:
        ``{queue: {"created": n, "entered": {status: n}}}``."""
        out: dict[str, dict] = {}
        for queue, status, entered, created in self._read(
                "SELECT queue, status, SUM(entered), SUM(created) FROM task_counts"
                " GROUP BY queue, status ORDER BY queue, status"):
            row = out.setdefault(queue, {"created": 0, "entered": {}})
            row["created"] += int(created)
            row["entered"][status] = int(entered)
        return out

    def minutes(self, since: float) -> list[dict]:
        """Per queue and minute since ``since``: tasks succeeded, failed, picked up,
        and their summed pickup latency (seconds)."""
        rows = self._read(
            "SELECT minute, queue, SUM(succeeded), SUM(failed), SUM(picked), SUM(pickup_sum)"
            " FROM task_minutes WHERE minute >= ? GROUP BY minute, queue ORDER BY minute, queue",
            (int(since // 60 * 60),))
        return [{"minute": int(m), "queue": q, "succeeded": int(s), "failed": int(f),
                 "picked": int(p), "pickup_sum": float(ps)} for m, q, s, f, p, ps in rows]

    def throughput(self, minutes: int) -> list[dict]:
        """Tasks finished per minute over the last ``minutes`` minutes, by status."""
        totals: dict[tuple[int, str], int] = {}
        for row in self.minutes(time.time() - minutes * 60):
            for status in ("succeeded", "failed"):
                if row[status]:
                    key = (row["minute"], status)
                    totals[key] = totals.get(key, 0) + row[status]
        return [{"minute": m, "status": s, "count": n} for (m, s), n in sorted(totals.items())]

    def queue_throughput(self, minutes: int) -> dict[str, list[dict]]:
        """Per queue, tasks succeeded and failed per minute over the last ``minutes``:
        ``{queue: [{minute, succeeded, failed}]}``, oldest minute first (minutes
        with neither left out)."""
        out: dict[str, list[dict]] = {}
        for row in self.minutes(time.time() - minutes * 60):
            if row["succeeded"] or row["failed"]:
                out.setdefault(row["queue"], []).append(
                    {"minute": row["minute"], "succeeded": row["succeeded"],
                     "failed": row["failed"]})
        return out

    def histogram(self, metric: str) -> dict[str, list[tuple[float, int, float]]]:
        """``{queue: [(le, n, sum), ...]}``: non-cumulative buckets of ``metric``
        ('pickup' or 'duration'), ``le`` ascending, infinity last."""
        out: dict[str, list[tuple[float, int, float]]] = {}
        for queue, le, n, total in self._read(
                "SELECT queue, le, SUM(n), SUM(total) FROM task_histograms WHERE metric = ?"
                " GROUP BY queue, le ORDER BY queue, le", (metric,)):
            out.setdefault(queue, []).append((float(le), int(n), float(total)))
        return out

    def prune_counters(self, now: float) -> None:
        """Drop per-minute rows older than a day (totals and histograms stay)."""
        with self._write() as conn:
            self._run(conn, "DELETE FROM task_minutes WHERE minute < ?",
                      (int(now - MINUTES_KEPT_S),))
