"""Rescuing orphaned tasks and pruning old ones.

A running task is an orphan when its worker is gone. Liveness is judged by the
daemon that owns the worker (its per-start id is part of the worker id):

* this daemon's own worker that is no longer in its pool: gone, rescued at once;
* a worker of another daemon whose heartbeat row has gone stale (the daemon was
  killed): rescued at once;
* any worker whose lease ran out (a daemon that hangs, or one that never
  registered): rescued.

Host names and pids are never compared: two containers may share a host name.
"""
from __future__ import annotations

import logging
import time

from hopper.app import logs
from hopper.app.backends import retries
from hopper.app.backends.base import ATTEMPT_LOST, Backend
from hopper.app.identity import daemon_of

log = logging.getLogger("hopper.reaper")


def rescue_orphans(backend: Backend, own_workers: set[str], daemon_id: str | None = None) -> int:
    """Re-queue tasks whose worker is gone or whose lease expired. Returns how many."""
    rescued = 0
    dead_daemons = set(backend.stale_daemons())
    for worker_id in backend.running_workers():
        if worker_id in own_workers:
            continue
        owner = daemon_of(worker_id)
        if owner is None or (owner != daemon_id and owner not in dead_daemons):
            continue  # not ours, and its daemon is alive (or unknown): its lease decides
        held = [t for t in backend.list(status="running", limit=500)
                if t["worker"] == worker_id]  # rare: read only to log each task
        rescued += backend.requeue_worker(worker_id, None, f"worker {worker_id} died",
                                          retry_at=time.time(), count_all=True)
        log.warning("re-queued the tasks of dead worker %s", worker_id)
        for task in held:
            logs.task_event("rescued", task["id"], task["name"], task["queue"], worker_id,
                            task["attempts"], reason="worker process gone")
    for task_id, worker_id in backend.expired_leases():
        if worker_id in own_workers:
            continue
        task = backend.get(task_id) or {}
        retry_at = retries.retry_at(task.get("attempts", 0), task.get("max_attempts", 0),
                                    ATTEMPT_LOST)
        if backend.fail_attempt(task_id, worker_id, f"lease of worker {worker_id} expired",
                                retry_at=retry_at, kind=ATTEMPT_LOST):
            rescued += 1
            logs.task_event("rescued", task_id, task.get("name"), task.get("queue"), worker_id,
                            task.get("attempts"), reason="lease expired")
    return rescued


def prune(backend: Backend, succeeded_s: float, failed_s: float) -> int:
    """Delete finished tasks past their retention."""
    now = time.time()
    return backend.prune(now - succeeded_s, now - failed_s)
