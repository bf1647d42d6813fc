"""Group commit for single enqueues arriving on concurrent request threads.

Each ``POST /api/tasks`` would otherwise be its own write transaction: with
``durability: full`` one fsync per request, and request threads queueing on
SQLite's write lock, whose busy handler sleeps in growing steps. Here the
first thread to arrive becomes the leader and commits every request waiting
at that moment in one transaction (one fsync, one doorbell ring); requests
that arrive meanwhile form the next group, led by the first of them. Under
no concurrency a group is one request and nothing waits.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

Commit = Callable[[list[Any]], tuple[list[int], list[bool]]]

MAX_GROUP = 256


class _Slot:
    __slots__ = ("request", "done", "lead", "result", "error")

    def __init__(self, request: Any):
        self.request = request
        self.done = threading.Event()
        self.lead = False
        self.result: tuple[int, bool] | None = None
        self.error: BaseException | None = None

    def outcome(self) -> tuple[int, bool]:
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise RuntimeError("the group commit ended without an outcome for this request")
        return self.result


class GroupCommit:
    """``submit(request) -> (task_id, created)``, committed together with the
    requests of other threads; ``commit`` enqueues a list in one transaction."""

    def __init__(self, commit: Commit, max_group: int = MAX_GROUP):
        self._commit = commit
        self._max_group = max_group
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._busy = False

    def submit(self, request: Any) -> tuple[int, bool]:
        """Enqueue one validated request; raises what enqueueing it alone would."""
        slot = _Slot(request)
        with self._lock:
            self._pending.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.done.wait()
            if not slot.lead:
                return slot.outcome()
        with self._lock:
            group = self._pending[:self._max_group]
            del self._pending[:self._max_group]
        try:
            self._run(group)
        finally:
            with self._lock:
                if self._pending:
                    # Hand leadership to the oldest waiter instead of looping here,
                    # so this thread's own response is not held back.
                    successor = self._pending[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._busy = False
        return slot.outcome()

    def _run(self, group: list[_Slot]) -> None:
        try:
            ids, created = self._commit([s.request for s in group])
            for slot, task_id, new in zip(group, ids, created, strict=True):
                slot.result = (task_id, new)
        except Exception as exc:  # handed to the request threads, which report it
            if len(group) == 1:
                group[0].error = exc
            else:
                # One bad request must not fail its neighbours: commit each alone.
                for slot in group:
                    self._run([slot])
                return
        finally:
            for slot in group:
                if not slot.lead:
                    slot.done.set()
