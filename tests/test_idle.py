"""Idle workers: when the next delayed task is due, and waking for it on time."""
from __future__ import annotations

import time

from hopper.app import queue


def test_next_due_is_the_earliest_delayed_task(engine_client):
    backend = engine_client.backend
    assert backend.next_due() is None
    queue.enqueue("echo", {})  # ready now: not a delayed task
    assert backend.next_due() is None
    soon, later = time.time() + 30, time.time() + 90
    queue.enqueue("echo", {}, run_after=later)
    queue.enqueue("echo", {}, run_after=soon)
    assert backend.next_due() == soon


def test_a_backed_off_idle_worker_starts_a_delayed_task_when_it_is_due(make_daemon, client,
                                                                       tmp_path):
    make_daemon(workers=1)
    warm = queue.enqueue("echo", {})
    queue.wait(warm, timeout=20)
    time.sleep(2.5)  # idle long enough for the fallback poll to reach its longest interval
    due = time.time() + 1.7
    task = queue.wait(queue.enqueue("echo", {}, run_after=due), timeout=20)
    # Without the due time the worker could sleep through it for up to a full
    # fallback interval (1 s); with it, it wakes for it.
    assert due <= task["started_at"] < due + 0.6
