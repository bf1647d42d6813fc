"""Rescuing orphaned tasks and pruning old ones.

A running task is an orphan when its worker is gone: a worker of this host
whose process no longer exists (found at once), or any worker whose lease ran
out (workers on other machines, or a whole daemon that was killed).
"""
from __future__ import annotations

import logging
import os
import socket
import time

from hopper.app import logs
from hopper.app.backends.base import Backend

log = logging.getLogger("hopper.reaper")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _local_pid(worker_id: str) -> int | None:
    host, _, rest = worker_id.partition(":")
    if host != socket.gethostname():
        return None
    try:
        return int(rest.split("-", 1)[0])
    except ValueError:
        return None


def rescue_orphans(backend: Backend, own_workers: set[str]) -> int:
    """Re-queue tasks whose worker is dead or whose lease expired. Returns how many."""
    rescued = 0
    for worker_id in backend.running_workers():
        if worker_id in own_workers:
            continue
        pid = _local_pid(worker_id)
        if pid is not None and not _pid_alive(pid):
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
        backend.fail_attempt(task_id, worker_id, f"lease of worker {worker_id} expired",
                             retry_at=time.time())
        rescued += 1
        logs.task_event("rescued", task_id, task.get("name"), task.get("queue"), worker_id,
                        task.get("attempts"), reason="lease expired")
    return rescued


def prune(backend: Backend, succeeded_s: float, failed_s: float) -> int:
    """Delete finished tasks past their retention."""
    now = time.time()
    return backend.prune(now - succeeded_s, now - failed_s)
