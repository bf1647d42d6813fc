"""A worker's exchange with the database whose answer is lost: the COMMIT was made,
the claim with it, but the connection died before the worker heard. The tasks it
then holds without knowing must not stay running under a live worker (whose lease
renewals would keep them from ever being rescued)."""
from __future__ import annotations

import multiprocessing
import threading

from helpers import poll_until

from hopper.app import queue
from hopper.app.backends.base import QueueUnavailable
from hopper.worker.loop import Slot, WorkerLoop


class AnswerLostOnce:
    """The real backend, except that the first exchange that claims tasks commits
    and then fails as a dropped connection does."""

    def __init__(self, backend):
        self.backend, self.lost = backend, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def finish_and_claim(self, worker_id, outcomes, release, limit, lease_s, queues=None):
        claimed = self.backend.finish_and_claim(worker_id, outcomes, release, limit, lease_s,
                                                queues)
        if claimed and not self.lost:
            self.lost = [t.id for t in claimed]
            raise QueueUnavailable("the connection died before the answer came")
        return claimed


def _statuses(ids: list[int]) -> list[str]:
    return [queue.get_task(i)["status"] for i in ids]


def test_tasks_claimed_by_an_exchange_whose_answer_was_lost_are_given_back_and_run_once(
        engine_client):
    ids = queue.enqueue_many([{"name": "echo", "args": {"value": i}} for i in range(20)])
    backend = AnswerLostOnce(engine_client.backend)
    loop = WorkerLoop(backend, "test:worker-1", 30.0, Slot(multiprocessing.get_context()))
    runner = threading.Thread(target=loop.run)
    runner.start()
    try:
        poll_until(lambda: _statuses(ids) == ["succeeded"] * len(ids), timeout=30,
                   message=lambda: f"statuses: {_statuses(ids)}")
    finally:
        loop.stop()
        runner.join(timeout=30)
    assert backend.lost  # the lost answer happened
    assert [queue.get_task(i)["attempts"] for i in ids] == [1] * len(ids)  # each ran once
    assert engine_client.backend.held_by("test:worker-1") == []
