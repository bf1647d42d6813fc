"""Reports are fenced by worker and attempt: a late report of an attempt that was
rescued and claimed again changes nothing, on both engines."""
from __future__ import annotations

import time

from hopper.app import queue
from hopper.app.backends.base import ATTEMPT_LOST, Outcome


def _claim(backend, worker: str):
    return backend.finish_and_claim(worker, [], [], 1, 30.0)[0]


def test_a_late_success_of_a_rescued_attempt_is_ignored(engine_client):
    backend = engine_client.backend
    task_id = queue.enqueue("record", {"log": "unused", "label": "x"})
    first = _claim(backend, "h1:1-aaaaaaaaaaaa-0001")
    assert backend.fail_attempt(task_id, first_worker := "h1:1-aaaaaaaaaaaa-0001",
                                "lease expired", retry_at=time.time(), kind=ATTEMPT_LOST)
    again = _claim(backend, first_worker)  # the same worker id claims it once more
    assert (first.attempts, again.attempts) == (1, 2)
    now = time.time()
    late = Outcome(task_id, True, now, now, result='"late"', attempt=first.attempts)
    backend.finish_and_claim(first_worker, [late], [], 0, 30.0)
    assert queue.get_task(task_id)["status"] == "running"  # attempt 2 still runs
    current = Outcome(task_id, True, now, now, result='"current"', attempt=again.attempts)
    backend.finish_and_claim(first_worker, [current], [], 0, 30.0)
    task = queue.get_task(task_id)
    assert (task["status"], task["result"]) == ("succeeded", "current")


def test_a_late_failure_of_a_rescued_attempt_is_ignored(engine_client):
    backend = engine_client.backend
    task_id = queue.enqueue("record", {"log": "unused", "label": "x"})
    worker = "h1:1-aaaaaaaaaaaa-0002"
    first = _claim(backend, worker)
    backend.fail_attempt(task_id, worker, "lease expired", retry_at=time.time(),
                         kind=ATTEMPT_LOST)
    _claim(backend, worker)
    now = time.time()
    late = Outcome(task_id, False, now, now, error="late", retry_at=None, attempt=first.attempts)
    backend.finish_and_claim(worker, [late], [], 0, 30.0)
    task = queue.get_task(task_id)
    assert (task["status"], task["attempts"]) == ("running", 2)
    assert [h["kind"] for h in task["history"]] == ["lost", None]
