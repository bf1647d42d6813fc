"""How the tasks a client enqueues get run: the engine of a ``Client``.

``QueueEngine``: the daemons' workers run them; inserting is all there is to do
here (the backend's notifier wakes idle workers). ``InlineEngine``: eager mode
(``HOPPER_EAGER=1`` or ``eager: true``), as Oban's inline engine or Huey's
immediate mode: the new tasks run in the calling process before ``enqueue``
returns (``eager.run_eagerly``).
"""
from __future__ import annotations

from hopper.app.backends.base import Backend, NewTask
from hopper.app.eager import run_eagerly


class QueueEngine:
    """Tasks wait in the database for a worker."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def insert(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        """Insert tasks in one transaction; ``(id, created)`` per task."""
        return self.backend.enqueue(tasks)

    def run(self, created: list[int]) -> None:
        """Nothing to do: the backend rang its notifier when the insert committed."""


class InlineEngine(QueueEngine):
    """Tasks run in the process that enqueued them, with what they spawn."""

    def run(self, created: list[int]) -> None:
        """Run the tasks just created (and their children and continuations) here."""
        run_eagerly(self.backend, created)
