"""Writing the task counters: one grouped upsert per write transaction.

Every statement that inserts, moves or deletes tasks reports what it changed
(from its ``RETURNING`` rows) to this thread's :class:`CounterBatch`; the
engine's ``_write`` adds the batch to the counter tables just before COMMIT,
in the same transaction, grouped by key: a worker's group commit of 64
outcomes and 64 claims writes a handful of counter rows, where the row
triggers this replaces ran two or three upserts per task.

A statement that changes ``tasks.status`` (or inserts or deletes tasks) must
report it here, or the dashboard drifts from the table: ``created``,
``moved``, ``deleted`` for the live and total counts, ``claimed`` and
``ended`` also for the per-minute rows and the histograms. The tables are
described in migration ``sqlite/0008`` (``postgres/0007``); their readers are
in ``counters.py``.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter, sub

from hopper.app.backends.sql_parts import SqlParts

INFINITY = float("inf")
# Histogram bucket bounds (upper, inclusive) in seconds; the overflow bucket is
# INFINITY. /metrics publishes them (app/web/metrics.py).
PICKUP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
ENDED = ("succeeded", "failed")  # the statuses counted per minute and timed

# Columns of a claim's rows (CLAIM_RETURNING in sql.py) this module reads.
_claim_queue, _claim_run_after, _claim_created = itemgetter(7), itemgetter(9), itemgetter(10)
# Columns of a finish's rows: id, status, parent_id, queue, started_at, finished_at.
_queue_status, _started, _finished = itemgetter(3, 1), itemgetter(4), itemgetter(5)


class CounterBatch:
    """The counter changes of one transaction, grouped by key."""

    __slots__ = ("counts", "minutes", "histograms")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[int]] = {}        # live, entered, created
        self.minutes: dict[tuple[int, str], list[float]] = {}     # ok, failed, picked, pickup_sum
        self.histograms: dict[tuple[str, str, float], list[float]] = {}  # n, total

    def __bool__(self) -> bool:
        return bool(self.counts)  # every pickup or finish is also a status change

    # -- live and total counts -------------------------------------------------
    def _count(self, queue: str, status: str, live: int, entered: int, created: int) -> None:
        row = self.counts.get((queue, status))
        if row is None:
            self.counts[(queue, status)] = [live, entered, created]
        else:
            row[0] += live
            row[1] += entered
            row[2] += created

    def created(self, queue: str, status: str = "queued", n: int = 1) -> None:
        """``n`` tasks inserted in ``status``."""
        self._count(queue, status, n, n, n)

    def deleted(self, queue: str, status: str, n: int = 1) -> None:
        """``n`` tasks in ``status`` deleted (totals keep them)."""
        self._count(queue, status, -n, 0, 0)

    def moved(self, queue: str, old: str, new: str, n: int = 1) -> None:
        """``n`` tasks went from ``old`` to ``new``."""
        if old != new:
            self._count(queue, old, -n, 0, 0)
            self._count(queue, new, n, n, 0)

    def moved_each(self, queues: Iterable[str], old: str, new: str) -> None:
        """Tasks went from ``old`` to ``new``, one queue name per task."""
        for queue, n in Counter(queues).items():
            self.moved(queue, old, new, n)

    # -- per minute and histograms ---------------------------------------------
    def _minute(self, minute: int, queue: str, ok: int, failed: int, picked: int,
                pickup_sum: float) -> None:
        row = self.minutes.get((minute, queue))
        if row is None:
            self.minutes[(minute, queue)] = [ok, failed, picked, pickup_sum]
        else:
            row[0] += ok
            row[1] += failed
            row[2] += picked
            row[3] += pickup_sum

    def _observe(self, metric: str, queue: str, bounds: tuple, values: list[float]) -> None:
        """Add ``values`` (seconds, sorted, none negative) to the buckets of ``metric``."""
        lo, end, hist = 0, len(values), self.histograms
        for le in bounds:
            hi = bisect_right(values, le, lo)
            if hi > lo:
                _add(hist, (metric, queue, float(le)), hi - lo, sum(values[lo:hi]))
                lo = hi
            if lo == end:
                return
        _add(hist, (metric, queue, INFINITY), end - lo, sum(values[lo:]))

    def claimed(self, rows: list, started_at: float) -> None:
        """A claim's rows (``CLAIM_RETURNING``), all started at ``started_at``: queued to
        running, and each one's pickup latency (since it could first run: created, or
        run_after if later)."""
        minute = int(started_at // 60 * 60)
        for queue, group in _grouped(rows, _claim_queue).items():
            # Column-wise, in C: this runs for every claimed task.
            ready = list(map(max, map(_claim_run_after, group), map(_claim_created, group)))
            ready.sort(reverse=True)
            waits = [started_at - r for r in ready]  # ascending
            if waits[0] < 0:
                waits = [w if w > 0 else 0.0 for w in waits]
            self.moved(queue, "queued", "running", len(waits))
            self._minute(minute, queue, 0, 0, len(waits), sum(waits))
            self._observe("pickup", queue, PICKUP_BUCKETS, waits)

    def ended(self, rows: list, old: str = "running") -> None:
        """Rows ``(id, status, parent_id, queue, started_at, finished_at)`` of tasks that
        left ``old``: counts, and for those that ended as succeeded or failed the
        per-minute row and the run time."""
        for (queue, status), group in _grouped(rows, _queue_status).items():
            self.moved(queue, old, status, len(group))
            if status not in ENDED:
                continue
            ok = status == "succeeded"
            started, finished = list(map(_started, group)), list(map(_finished, group))
            if None in started or None in finished:  # never started, or no end time
                spans = [(s, f) for s, f in zip(started, finished, strict=True) if f is not None]
                finished = [f for _, f in spans]
                started, ended_at = ([s for s, _ in spans if s is not None],
                                     [f for s, f in spans if s is not None])
            else:
                ended_at = finished
            if not finished:
                continue
            first, last = int(min(finished) // 60 * 60), int(max(finished) // 60 * 60)
            if first == last:
                n = len(finished)
                self._minute(first, queue, n if ok else 0, 0 if ok else n, 0, 0.0)
            else:
                for f in finished:
                    self._minute(int(f // 60 * 60), queue, int(ok), int(not ok), 0, 0.0)
            if started:
                durations = sorted(map(sub, ended_at, started))
                if durations[0] < 0:
                    durations = [d if d > 0 else 0.0 for d in durations]
                self._observe("duration", queue, DURATION_BUCKETS, durations)


def _grouped(rows: list, key) -> dict:
    """``rows`` by ``key(row)``; one group, the common case, without a loop in Python."""
    keys = set(map(key, rows))
    if len(keys) == 1:
        return {keys.pop(): rows}
    groups: dict = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _add(table: dict, key: tuple, n: int, total: float) -> None:
    row = table.get(key)
    if row is None:
        table[key] = [n, total]
    else:
        row[0] += n
        row[1] += total


# -- writing a batch -----------------------------------------------------------
_UPSERT_COUNTS = (
    "INSERT INTO task_counts (queue, status, live, entered, created) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (queue, status, shard) DO UPDATE SET live = live + excluded.live,"
    " entered = entered + excluded.entered, created = created + excluded.created")
_UPSERT_MINUTES = (
    "INSERT INTO task_minutes (minute, queue, succeeded, failed, picked, pickup_sum)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (minute, queue, shard) DO UPDATE SET"
    " succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed,"
    " picked = picked + excluded.picked, pickup_sum = pickup_sum + excluded.pickup_sum")
_UPSERT_HISTOGRAMS = (
    "INSERT INTO task_histograms (metric, queue, le, n, total) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (metric, queue, le, shard) DO UPDATE SET n = n + excluded.n,"
    " total = total + excluded.total")

# PostgreSQL: the three upserts in one statement over arrays (one round trip, one
# constant text that the server keeps prepared), in this connection's own shard so
# concurrent workers never wait on each other's counter rows.
_PG_UPSERT = """
WITH counted AS (
    INSERT INTO task_counts AS t (queue, status, shard, live, entered, created)
    SELECT q, s, pg_backend_pid(), l, e, c
      FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])
           AS v(q, s, l, e, c)
    ON CONFLICT (queue, status, shard) DO UPDATE
       SET live = t.live + EXCLUDED.live, entered = t.entered + EXCLUDED.entered,
           created = t.created + EXCLUDED.created
    RETURNING 1
), per_minute AS (  -- a WITH clause that writes runs to completion even when unread
    INSERT INTO task_minutes AS t (minute, queue, shard, succeeded, failed, picked, pickup_sum)
    SELECT m, q, pg_backend_pid(), ok, bad, p, ps
      FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[],
                  %s::float8[]) AS v(m, q, ok, bad, p, ps)
    ON CONFLICT (minute, queue, shard) DO UPDATE
       SET succeeded = t.succeeded + EXCLUDED.succeeded, failed = t.failed + EXCLUDED.failed,
           picked = t.picked + EXCLUDED.picked, pickup_sum = t.pickup_sum + EXCLUDED.pickup_sum
    RETURNING 1
)
INSERT INTO task_histograms AS t (metric, queue, le, shard, n, total)
SELECT k, q, le, pg_backend_pid(), n, tot
  FROM unnest(%s::text[], %s::text[], %s::float8[], %s::bigint[], %s::float8[])
       AS v(k, q, le, n, tot)
ON CONFLICT (metric, queue, le, shard) DO UPDATE
   SET n = t.n + EXCLUDED.n, total = t.total + EXCLUDED.total
"""


def _rows(table: dict) -> list[tuple]:
    return [(*key, *values) for key, values in table.items()]


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


class CounterWrites(SqlParts):
    """Mixed into the SQL backend: this thread's pending batch, written by ``_write``."""

    def _counted(self) -> CounterBatch:
        """The counter batch of the write transaction this thread is in."""
        local = self._local
        batch = getattr(local, "counter_batch", None)
        if batch is None:
            batch = local.counter_batch = CounterBatch()
        return batch

    def _drop_counters(self) -> None:
        """Forget the batch of a transaction that is rolled back."""
        self._local.counter_batch = None

    def _flush_counters(self, conn) -> None:
        """Write this thread's batch on ``conn``, inside the transaction, before COMMIT."""
        batch = getattr(self._local, "counter_batch", None)
        self._local.counter_batch = None
        if not batch:
            return
        self._run_many(conn, _UPSERT_COUNTS, _rows(batch.counts))
        if batch.minutes:
            self._run_many(conn, _UPSERT_MINUTES, _rows(batch.minutes))
        if batch.histograms:
            self._run_many(conn, _UPSERT_HISTOGRAMS, _rows(batch.histograms))

    def _counters_statement(self) -> tuple[str, list] | None:
        """PostgreSQL: this thread's batch as one statement and its parameters (None
        when there is nothing to write); the engine sends it with its COMMIT."""
        batch = getattr(self._local, "counter_batch", None)
        self._local.counter_batch = None
        if not batch:
            return None
        return _PG_UPSERT, [*_columns(_rows(batch.counts), 5), *_columns(_rows(batch.minutes), 6),
                            *_columns(_rows(batch.histograms), 5)]
