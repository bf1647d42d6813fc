"""kill -9 of workers while they drain: every task still succeeds, none is lost."""
from __future__ import annotations

import os
import signal
import time

import psutil
from helpers import poll_until

from hopper.app import queue

TASKS = 1500
KILLS = 3
TASK_S = 0.02    # 1,500 x 20 ms on 2 workers: a drain of ~15 s; 3 kills take ~7-9 s


def _old_worker(daemon, min_age_s: float) -> int | None:
    """A worker pid that has lived longer than ``min_age_s`` (younger ones dying
    would look like a crash loop to the supervisor, which then waits to respawn)."""
    for pid in daemon.worker_pids():
        try:
            if time.time() - psutil.Process(pid).create_time() > min_age_s:
                return pid
        except psutil.NoSuchProcess:
            continue
    return None


def _counts(backend) -> dict[str, int]:
    counts: dict[str, int] = {}
    for by_status in backend.counts().values():
        for status, n in by_status.items():
            counts[status] = counts.get(status, 0) + n
    return counts


def test_killing_workers_during_a_drain_loses_no_task(make_daemon, engine_settings,
                                                      engine_client):
    daemon = make_daemon("worker", config=engine_settings)
    ids = queue.enqueue_many([{"name": "sleep", "args": {"seconds": TASK_S}, "max_attempts": 20}
                              for _ in range(TASKS)])
    backend = engine_client.backend
    killed: list[int] = []
    while len(killed) < KILLS:
        victim = poll_until(lambda: _old_worker(daemon, 2.2), timeout=30)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            continue  # it exited between the listing and the kill; pick another
        killed.append(victim)
    # The kills hit a drain in progress, not an empty queue.
    assert _counts(backend).get("succeeded", 0) < TASKS
    poll_until(lambda: _counts(backend).get("succeeded") == TASKS, timeout=180,
               message=lambda: f"counts {_counts(backend)}")
    assert _counts(backend) == {"succeeded": TASKS}
    assert {queue.get_task(i)["status"] for i in (ids[0], ids[-1])} == {"succeeded"}
    survivors = poll_until(lambda: (p := daemon.worker_pids()) and len(p) == 2 and p, timeout=30)
    assert not set(killed) & set(survivors)
