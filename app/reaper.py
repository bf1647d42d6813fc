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
            rescued += backend.requeue_worker(worker_id, None, f"worker {worker_id} died",
                                              retry_at=time.time(), count_all=True)
            log.warning("re-queued the tasks of dead worker %s", worker_id)
    for task_id, worker_id in backend.expired_leases():
        if worker_id in own_workers:
            continue
        backend.fail_attempt(task_id, worker_id, f"lease of worker {worker_id} expired",
                             retry_at=time.time())
        rescued += 1
        log.warning("task %s: lease of worker %s expired; re-queued", task_id, worker_id)
    return rescued


def prune(backend: Backend, succeeded_s: float, failed_s: float) -> int:
    """Delete finished tasks past their retention."""
    now = time.time()
    return backend.prune(now - succeeded_s, now - failed_s)
