"""The storage contract every queue backend implements.

A backend owns the SQL for one database engine. Everything above it (the queue
client, the worker loop, the supervisor, the web app) talks to this interface
only, so SQLite and PostgreSQL stay interchangeable.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from hopper.app.backends.protocols import (
    Claims,
    FlowControl,
    Notifier,
    Processes,
    Queues,
    Schedules,
    State,
    Statistics,
    Tables,
    Tasks,
    Workflows,
)

UNFINISHED = ("queued", "running", "waiting", "blocked")
FINISHED = ("succeeded", "failed", "cancelled")
STATUSES = UNFINISHED + FINISHED

# How a failed attempt ended, recorded in its history row: callers (the library's
# poison-file check) look at this field, never at the wording of the error.
ATTEMPT_ERROR = "error"        # the task raised
ATTEMPT_TIMEOUT = "timeout"    # the supervisor stopped it past its timeout
ATTEMPT_LOST = "lost"          # its worker died or its lease expired
ATTEMPT_UNSTORABLE = "unstorable"  # the database refused its outcome even once cleaned

TASK_COLUMNS = (
    "id", "queue", "name", "args", "status", "priority", "run_after", "attempts",
    "max_attempts", "timeout", "unique_key", "parent_id", "continuation",
    "progress_done", "progress_total", "result", "error", "worker", "lease_until",
    "created_at", "started_at", "finished_at", "tags", "meta", "depends_on",
    "concurrency_key", "concurrency_limit", "rate_key",
)

# Tags are for finding tasks again (``user:42``); meta is what a task reports about itself.
MAX_TAGS = 20                 # tags per task, and tag filters per listing
MAX_TAG_LENGTH = 128          # characters per tag
MAX_META_BYTES = 64 * 1024    # a task's meta object, serialized as JSON


class QueueUnavailable(Exception):
    """The task database cannot be reached: nothing was enqueued or read.

    Raised instead of the engine's own connection error so that callers (a
    request handler that enqueues, a CLI command) can tell "try again later"
    apart from a mistake in their own call.
    """


class TaskConflict(Exception):
    """The task is not in a state that allows the requested change."""


class InvalidDependency(ValueError):
    """A ``depends_on`` that cannot be met: a cycle, an unknown ref or task id.

    Raised before anything of the enqueue is stored (the API answers 400).
    """


@dataclass
class NewTask:
    """A task about to be inserted; every default is already resolved."""

    name: str
    args: dict
    queue: str = "default"
    priority: int = 0
    run_after: float | None = None
    max_attempts: int = 3
    timeout: float | None = None
    unique_key: str | None = None
    parent_id: int | None = None
    continuation: str | None = None
    args_json: str | None = None  # ``args`` already serialized (saves a second json.dumps)
    tags: tuple[str, ...] = ()
    meta_json: str | None = None  # the initial meta object, serialized
    created_at: float | None = None  # set by the backend when the row is inserted
    depends_on: tuple[int, ...] = ()  # ids of existing tasks it waits for (status blocked)
    after: tuple[int, ...] = ()  # positions of earlier tasks of the same enqueue it waits for
    traceparent: str | None = None  # W3C trace context of the enqueuing span
    status: str = "queued"  # set by the backend: blocked while it has dependencies
    # Flow control (flow.py): a keyed task has both keys, '' for the one it does not use.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None


@dataclass
class Claimed:
    """A task a worker has claimed and holds under its lease."""

    id: int
    name: str
    args: str
    attempts: int
    max_attempts: int
    timeout: float | None
    parent_id: int | None
    queue: str = "default"
    traceparent: str | None = None  # the enqueuing span's trace context, for the run's span


@dataclass
class QueueFilter:
    """Which queues one claim may take tasks from, and how many of each.

    ``only``: the queues this daemon claims (None: every queue). ``caps``: at
    most this many tasks of a queue in this claim (0: none at all); a queue
    not in ``caps`` may fill the whole claim. Paused queues are always skipped:
    the backend reads them in the claim's own transaction.
    """

    only: frozenset[str] | None = None
    caps: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    """How one attempt ended, reported by the worker that ran it.

    ``retry_at`` is set by the caller for a failure that has attempts left;
    the backend decides between ``queued`` and ``failed`` from the row itself.
    """

    task_id: int
    ok: bool
    started_at: float
    finished_at: float
    result: str | None = None
    error: str | None = None
    retry_at: float | None = None
    parent_id: int | None = None   # from the claim: only tasks with a parent lock ancestors
    kind: str | None = None        # for a failure: one of the ATTEMPT_* kinds
    # The claim's attempt number: a report of an older attempt (the task was rescued and
    # claimed again meanwhile) is ignored, like one from another worker.
    attempt: int | None = None


@dataclass
class WorkerRow:
    id: str
    host: str
    pid: int
    state: str
    task_id: int | None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    started_at: float = 0.0


def new_task_dict(task_id: int, task: NewTask) -> dict:
    """The public shape of a task just inserted, without reading it back.

    Only for a task the caller has just created (``created`` from ``enqueue``):
    its row holds exactly these values until a worker claims it.
    """
    values = {"id": task_id, "queue": task.queue, "name": task.name, "args": task.args,
              "status": task.status, "priority": task.priority, "run_after": task.run_after,
              "attempts": 0, "max_attempts": task.max_attempts, "timeout": task.timeout,
              "unique_key": task.unique_key, "parent_id": task.parent_id,
              "continuation": task.continuation, "created_at": task.created_at,
              "tags": list(task.tags), "depends_on": list(task.depends_on),
              "meta": json.loads(task.meta_json) if task.meta_json is not None else {},
              "concurrency_key": task.concurrency_key or None,
              "concurrency_limit": task.concurrency_limit, "rate_key": task.rate_key or None}
    out = {column: values.get(column) for column in TASK_COLUMNS if column not in
           ("progress_done", "progress_total", "lease_until")}
    out["progress"] = {"done": None, "total": None}
    out["history"] = []  # no attempt has ended yet
    out["children"] = {}
    out["waiting_for"] = None  # flow control is only looked at when the task is read
    return out


def task_dict(row: Iterable[Any]) -> dict:
    """The public shape of a task row (JSON fields decoded)."""
    task = dict(zip(TASK_COLUMNS, row, strict=True))
    task["args"] = json.loads(task["args"])
    task["result"] = json.loads(task["result"]) if task["result"] is not None else None
    task["progress"] = {"done": task.pop("progress_done"), "total": task.pop("progress_total")}
    task["tags"] = json.loads(task["tags"]) if task["tags"] is not None else []
    task["meta"] = json.loads(task["meta"]) if task["meta"] is not None else {}
    task["depends_on"] = json.loads(task["depends_on"]) if task["depends_on"] is not None else []
    task.pop("lease_until")
    task["concurrency_key"] = task["concurrency_key"] or None  # '' marks "no key" in the row
    task["rate_key"] = task["rate_key"] or None
    return task


class Backend(Tasks, Claims, Queues, Statistics, Processes, Schedules, State, Tables, Workflows,
              FlowControl, ABC):
    """One database engine's implementation of the queue's storage: every protocol
    of ``protocols.py``, plus the connection's life and the engine's notifier."""

    url: str

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending numbered migrations; return the names applied."""

    @abstractmethod
    def close(self) -> None:
        """Close this process's connections."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the database does not answer."""

    @abstractmethod
    def notifier(self) -> Notifier:
        """How this engine wakes idle workers (the same object on every call)."""
