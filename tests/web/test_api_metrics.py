"""/metrics parses as Prometheus text and its counts match the tasks run."""
from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_count_the_tasks_run(api):
    queue = f"m-{uuid.uuid4().hex[:8]}"
    ids = [api.enqueue("echo", {"i": i}, queue=queue)["id"] for i in range(3)]
    ids.append(api.enqueue("always_fails", queue=queue)["id"])
    for task_id in ids:
        api.wait_status(task_id, ("succeeded", "failed"))
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = _samples(response.text)
    q = (("queue", queue),)
    assert samples[("hopper_tasks_enqueued_total", q)] == 4
    finished = ("hopper_tasks_finished_total", (("queue", queue), ("status", "succeeded")))
    assert samples[finished] == 3
    assert samples[("hopper_tasks_finished_total", (("queue", queue), ("status", "failed")))] == 1
    assert samples[("hopper_tasks", (("queue", queue), ("status", "succeeded")))] == 3
    assert samples[("hopper_task_duration_seconds_count", q)] == 4
    assert samples[("hopper_task_duration_seconds_bucket", (("le", "+Inf"), ("queue", queue)))] == 4
    bucket = ("hopper_task_duration_seconds_bucket", (("le", "300.0"), ("queue", queue)))
    assert samples[bucket] == 4
    assert samples[("hopper_task_duration_seconds_sum", q)] > 0
    # Every attempt is a pickup: always_fails runs twice (max_attempts=2).
    assert samples[("hopper_task_pickup_latency_seconds_count", q)] == 5
    assert samples[("hopper_workers_alive", ())] == 2


def test_metrics_totals_do_not_decrease_across_a_prune(api, shared_daemon):
    from hopper.app import reaper
    from hopper.app.backends import open_backend

    queue = f"p-{uuid.uuid4().hex[:8]}"
    ids = [api.enqueue("echo", {"i": i}, queue=queue)["id"] for i in range(3)]
    ids.append(api.enqueue("always_fails", queue=queue)["id"])
    for task_id in ids:
        api.wait_status(task_id, ("succeeded", "failed"))
    before = _samples(api.get("/metrics").text)
    backend = open_backend(shared_daemon.database)
    try:
        # Retention of zero: every finished task goes, as a long-running daemon's would.
        assert reaper.prune(backend, succeeded_s=-60, failed_s=-60) >= 4
    finally:
        backend.close()
    after = _samples(api.get("/metrics").text)
    for status, n in (("succeeded", 3), ("failed", 1)):
        key = ("hopper_tasks_finished_total", (("queue", queue), ("status", status)))
        assert before[key] == after[key] == n
    q = (("queue", queue),)
    for name in ("hopper_tasks_enqueued_total", "hopper_task_duration_seconds_count"):
        assert before[(name, q)] == after[(name, q)] == 4
    assert before[("hopper_tasks", (("queue", queue), ("status", "succeeded")))] == 3
    assert ("hopper_tasks", (("queue", queue), ("status", "succeeded"))) not in after
