"""``/metrics``: Prometheus text format, every value read from the database at
scrape time by a custom collector.

Nothing is counted in this process's memory, so the numbers are the same
whichever Gunicorn thread or process answers and survive web-server restarts.
The values come from the counter tables the database keeps in the same
transactions that change tasks (``app/backends/counters.py``), so a scrape
costs a few small rows however many tasks there are, and the ``_total``
counters never decrease: pruning old tasks lowers ``hopper_tasks`` only.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hopper.app.backends.base import FINISHED, Backend
from hopper.app.backends.counter_batch import DURATION_BUCKETS, PICKUP_BUCKETS

bp = Blueprint("metrics", __name__)


class HopperCollector:
    """Builds every metric family from the counter tables on each collect()."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def collect(self):
        yield self._gauges()
        yield from self._totals()
        yield from self._workers()
        yield self._histogram("hopper_task_duration_seconds",
                              "Run time of tasks that ended as succeeded or failed",
                              "duration", DURATION_BUCKETS)
        yield self._histogram("hopper_task_pickup_latency_seconds",
                              "Time from a task being ready to a worker starting it",
                              "pickup", PICKUP_BUCKETS)

    def _gauges(self):
        by_status = GaugeMetricFamily("hopper_tasks", "Tasks in the database by queue and status",
                                      labels=["queue", "status"])
        for queue, statuses in sorted(self.backend.counts().items()):
            for status, n in sorted(statuses.items()):
                by_status.add_metric([queue, status], n)
        return by_status

    def _totals(self):
        enqueued = CounterMetricFamily("hopper_tasks_enqueued", "Tasks enqueued",
                                       labels=["queue"])
        finished = CounterMetricFamily("hopper_tasks_finished",
                                       "Tasks that ended, by final status (a retried task that "
                                       "ends again counts again)", labels=["queue", "status"])
        for queue, row in sorted(self.backend.totals().items()):
            enqueued.add_metric([queue], row["created"])
            for status in FINISHED:
                finished.add_metric([queue, status], row["entered"].get(status, 0))
        return enqueued, finished

    def _workers(self):
        workers = self.backend.live_workers()
        alive = GaugeMetricFamily("hopper_workers_alive", "Worker processes with a fresh heartbeat",
                                  value=len(workers))
        busy = GaugeMetricFamily("hopper_workers_busy", "Worker processes running a task",
                                 value=sum(1 for w in workers if w["task_id"] is not None))
        rss = GaugeMetricFamily("hopper_worker_rss_bytes", "Resident memory of each worker",
                                labels=["worker"])
        cpu = GaugeMetricFamily("hopper_worker_cpu_percent", "CPU use of each worker",
                                labels=["worker"])
        for w in workers:
            if w["rss_bytes"] is not None:
                rss.add_metric([w["id"]], w["rss_bytes"])
            if w["cpu_percent"] is not None:
                cpu.add_metric([w["id"]], w["cpu_percent"])
        return alive, busy, rss, cpu

    def _histogram(self, name: str, doc: str, metric: str, buckets: tuple[float, ...]):
        family = HistogramMetricFamily(name, doc, labels=["queue"])
        for queue, rows in sorted(self.backend.histogram(metric).items()):
            observed = {le: n for le, n, _ in rows}
            running, pairs = 0, []
            for bound in buckets:
                running += observed.get(float(bound), 0)
                pairs.append((repr(float(bound)), running))
            pairs.append(("+Inf", sum(observed.values())))
            family.add_metric([queue], pairs, sum_value=sum(total for _, _, total in rows))
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
