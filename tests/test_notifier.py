"""The backend's notifier: a transition that makes a task claimable wakes an idle worker.

The fallback poll of an idle worker starts at ``IDLE_POLL_S`` (250 ms) and grows, so a
pickup well under it shows the wake-up came from the notifier (the doorbell pipe on
SQLite, LISTEN/NOTIFY on PostgreSQL), not from the poll.
"""
from __future__ import annotations

import statistics
import time

from helpers import poll_until

from hopper.app import queue
from hopper.app.defaults import IDLE_POLL_S

PICKUP_S = 0.1


def test_a_retried_task_is_picked_up_by_an_idle_worker_within_100_ms(
        make_daemon, database, engine_client, tmp_path):
    assert PICKUP_S < IDLE_POLL_S  # otherwise the fallback poll alone could pass this test
    make_daemon("worker", database=database, workers=1)
    log = tmp_path / "flaky.log"
    task_id = queue.enqueue("flaky", {"log": str(log), "failures": 1000}, max_attempts=1)
    pickups = []
    for _ in range(5):  # each round: the task fails for good, the worker idles, a retry
        poll_until(lambda: queue.get_task(task_id)["status"] == "failed", timeout=30,
                   interval=0.005, message=lambda: str(queue.get_task(task_id)))
        retried_at = time.time()
        queue.retry(task_id)
        started_at = poll_until(lambda: queue.get_task(task_id)["started_at"], timeout=10,
                                interval=0.005)
        pickups.append(started_at - retried_at)
    # The median, so one round slowed by a busy machine's scheduler does not decide:
    # without a wake-up every round waits for the fallback poll (about 250 ms).
    assert statistics.median(pickups) < PICKUP_S, f"pickups after retry (s): {pickups}"
