"""Eager mode (``HOPPER_EAGER=1`` or ``eager: true``): ``enqueue`` runs the task in
the calling process, like Huey's immediate mode or Celery's always-eager; the
client's ``InlineEngine`` (``engines.py``) calls it.

Only the tasks this call enqueued run here, with the children they enqueue and
the continuations their settling creates; anything else queued in the database
is left to the daemons. A failed attempt with attempts left is recorded like
any other (back to ``queued`` after its backoff) and not run again here.
"""
from __future__ import annotations

import os
import threading
from collections import deque

from hopper.app.backends.base import Backend
from hopper.app.defaults import EAGER_LEASE_S
from hopper.app.execute import execute, log_outcome
from hopper.app.identity import host_name

_state = threading.local()


def run_eagerly(backend: Backend, task_ids: list[int]) -> None:
    """Run ``task_ids`` (and what they spawn) in this process until all are finished."""
    pending = getattr(_state, "pending", None)
    if pending is not None:
        pending.extend(task_ids)  # a running eager task enqueued children: run them next
        return
    _state.pending = pending = deque(task_ids)
    worker_id = f"eager:{host_name()}:{os.getpid()}"
    ran: list[int] = []
    try:
        while pending:
            task_id = pending.popleft()
            claimed = backend.claim_ids(worker_id, [task_id], EAGER_LEASE_S)
            if not claimed:
                continue  # finished, running elsewhere, or a unique_key hit on a running task
            outcome = execute(claimed[0])
            log_outcome(claimed[0], outcome, worker_id)
            backend.finish_and_claim(worker_id, [outcome], [], 0, EAGER_LEASE_S)
            ran.append(task_id)
            pending.extend(backend.queued_continuations(ran))
            pending.extend(backend.queued_dependents(task_id))
    finally:
        _state.pending = None
