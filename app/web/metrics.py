"""``/metrics``: Prometheus text format, every value read from the database at
scrape time by a custom collector.

Nothing is counted in this process's memory, so the numbers are the same
whichever Gunicorn thread or process answers and survive web-server restarts.
Totals count the tasks still in the database: retention pruning lowers them,
which Prometheus treats like a counter reset.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hopper.app.backends.base import Backend

bp = Blueprint("metrics", __name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
PICKUP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


def _histogram_sql(expr: str, buckets: tuple[float, ...], where: str) -> str:
    # One pass over the table: a conditional count per bucket, plus count and sum.
    columns = ", ".join(f"SUM(CASE WHEN {expr} <= {b!r} THEN 1 ELSE 0 END)" for b in buckets)
    return (f"SELECT queue, COUNT(*), COALESCE(SUM({expr}), 0), {columns}"
            f" FROM tasks WHERE {where} GROUP BY queue")


DURATION_SQL = _histogram_sql(
    "(finished_at - started_at)", DURATION_BUCKETS,
    "status IN ('succeeded', 'failed') AND started_at IS NOT NULL AND finished_at IS NOT NULL")
# Pickup latency: from when a task could first run (created, or its run_after if
# later) to when a worker started it.
# CASE rather than MAX/GREATEST: the same text runs on SQLite and PostgreSQL.
_READY_AT = "(CASE WHEN run_after > created_at THEN run_after ELSE created_at END)"
PICKUP_SQL = _histogram_sql(
    f"(CASE WHEN started_at > {_READY_AT} THEN started_at - {_READY_AT} ELSE 0 END)",
    PICKUP_BUCKETS, "started_at IS NOT NULL")


class HopperCollector:
    """Builds every metric family from the database on each collect()."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def collect(self):
        counts = self.backend.counts()
        by_status = GaugeMetricFamily("hopper_tasks", "Tasks in the database by queue and status",
                                      labels=["queue", "status"])
        enqueued = CounterMetricFamily("hopper_tasks_enqueued", "Tasks enqueued (retained)",
                                       labels=["queue"])
        succeeded = CounterMetricFamily("hopper_tasks_succeeded", "Tasks that succeeded (retained)",
                                        labels=["queue"])
        failed = CounterMetricFamily("hopper_tasks_failed", "Tasks that failed for good (retained)",
                                     labels=["queue"])
        for queue, statuses in sorted(counts.items()):
            for status, n in sorted(statuses.items()):
                by_status.add_metric([queue, status], n)
            enqueued.add_metric([queue], sum(statuses.values()))
            succeeded.add_metric([queue], statuses.get("succeeded", 0))
            failed.add_metric([queue], statuses.get("failed", 0))
        yield from (by_status, enqueued, succeeded, failed)
        yield GaugeMetricFamily("hopper_workers_alive", "Worker processes with a fresh heartbeat",
                                value=len(self.backend.live_workers()))
        yield self._histogram("hopper_task_duration_seconds",
                              "Run time of finished attempts (started_at to finished_at)",
                              DURATION_SQL, DURATION_BUCKETS)
        yield self._histogram("hopper_task_pickup_latency_seconds",
                              "Time from a task being ready to a worker starting it",
                              PICKUP_SQL, PICKUP_BUCKETS)

    def _histogram(self, name: str, doc: str, sql: str, buckets: tuple[float, ...]):
        family = HistogramMetricFamily(name, doc, labels=["queue"])
        for row in self.backend.fetch(sql):
            queue, count, total, cumulative = row[0], row[1], row[2], row[3:]
            pairs = [(repr(float(b)), n or 0) for b, n in zip(buckets, cumulative)]
            pairs.append(("+Inf", count))
            family.add_metric([queue], pairs, sum_value=float(total))
        return family


def make_registry(backend: Backend) -> CollectorRegistry:
    """A registry holding only Hopper's collector (no process metrics of this
    web process, which would differ per Gunicorn worker)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HopperCollector(backend))
    return registry


@bp.get("/metrics")
def metrics():
    """The Prometheus exposition."""
    registry = current_app.extensions["hopper_metrics"]
    return Response(generate_latest(registry), mimetype=None,
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
