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

from hopper.app.defaults import LIVE_WORKER_AGE_S

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
              "meta": json.loads(task.meta_json) if task.meta_json is not None else {}}
    out = {column: values.get(column) for column in TASK_COLUMNS if column not in
           ("progress_done", "progress_total", "lease_until")}
    out["progress"] = {"done": None, "total": None}
    out["history"] = []  # no attempt has ended yet
    out["children"] = {}
    return out


def task_dict(row: Iterable[Any]) -> dict:
    """The public shape of a task row (JSON fields decoded)."""
    task = dict(zip(TASK_COLUMNS, row))
    task["args"] = json.loads(task["args"])
    task["result"] = json.loads(task["result"]) if task["result"] is not None else None
    task["progress"] = {"done": task.pop("progress_done"), "total": task.pop("progress_total")}
    task["tags"] = json.loads(task["tags"]) if task["tags"] is not None else []
    task["meta"] = json.loads(task["meta"]) if task["meta"] is not None else {}
    task["depends_on"] = json.loads(task["depends_on"]) if task["depends_on"] is not None else []
    task.pop("lease_until")
    return task


class Backend(ABC):
    """One database engine's implementation of the queue's storage."""

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

    def listener(self):
        """An object whose ``wait(timeout)`` returns when tasks may be ready, for
        engines that notify natively (PostgreSQL); None where a local pipe does."""
        return None

    # -- producing ---------------------------------------------------------
    @abstractmethod
    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        """Insert tasks in one transaction; ``(id, created)`` per task.

        A task whose unique_key matches an unfinished task is not inserted;
        the existing task's id comes back with ``created=False``.
        """

    # -- consuming ---------------------------------------------------------
    @abstractmethod
    def finish_and_claim(self, worker_id: str, outcomes: list[Outcome], release: list[int],
                         limit: int, lease_s: float,
                         queues: QueueFilter | None = None) -> list[Claimed]:
        """Record outcomes, give back unstarted tasks and claim up to ``limit``
        ready tasks of unpaused queues that ``queues`` allows, all in one
        transaction (group commit)."""

    def next_due(self) -> float | None:
        """When the earliest delayed task (queued, due later) may run, as Unix
        time; None when there is none or it is not known cheaply. A worker with
        nothing ready sleeps until then at most."""
        return None

    @abstractmethod
    def claim_ids(self, worker_id: str, task_ids: list[int], lease_s: float) -> list[Claimed]:
        """Claim these queued tasks whatever their run_after (eager mode)."""

    @abstractmethod
    def fail_attempt(self, task_id: int, worker_id: str, error: str, retry_at: float | None,
                     kind: str = ATTEMPT_LOST) -> bool:
        """End the running attempt of one task as failed (timeout, lost worker).
        False if the task was no longer running on that worker."""

    @abstractmethod
    def requeue_worker(self, worker_id: str, current_task: int | None, error: str,
                       retry_at: float | None, count_all: bool = False) -> int:
        """A worker is gone: its current task (or, with ``count_all``, every
        task it held) fails an attempt; the rest, claimed but never started,
        go back unchanged. Returns the number of tasks touched."""

    @abstractmethod
    def renew_leases(self, worker_ids: list[str], lease_s: float) -> None:
        """Extend the leases of every task the given workers hold."""

    @abstractmethod
    def expired_leases(self) -> list[tuple[int, str]]:
        """``(task_id, worker)`` of running tasks whose lease has run out."""

    @abstractmethod
    def running_workers(self) -> list[str]:
        """Distinct worker ids that hold running tasks."""

    @abstractmethod
    def cancelled_among(self, task_ids: list[int]) -> list[int]:
        """Which of these tasks have been cancelled."""

    @abstractmethod
    def set_progress(self, task_id: int, done: int, total: int) -> None:
        """Record a running task's own progress."""

    @abstractmethod
    def set_meta(self, task_id: int, values: dict) -> dict:
        """Merge ``values`` into a task's meta (top-level keys replaced); return the
        merged object. KeyError for an unknown task, ValueError when too large."""

    # -- managing ----------------------------------------------------------
    @abstractmethod
    def get(self, task_id: int) -> dict | None:
        """One task, with children counts by status, or None."""

    @abstractmethod
    def list(self, status: str | None = None, name: str | None = None, queue: str | None = None,
             parent_id: int | None = None, limit: int = 50, cursor: int | None = None,
             q: str | None = None, tags: list[str] | None = None) -> list[dict]:
        """Tasks newest first; ``cursor`` is the last id of the previous page;
        ``q``: text in the name, args or error; ``tags``: only tasks that carry every one."""

    @abstractmethod
    def page(self, limit: int = 50, cursor: int | None = None,
             **filters) -> tuple[list[dict], int | None]:
        """One page of ``list`` and the next page's cursor (None: no more), with a
        bounded scan per page for filters no index answers."""

    @abstractmethod
    def bulk(self, action: str, ids: list[int] | None = None, filter: dict | None = None,
             dry_run: bool = False) -> dict:
        """Retry, cancel or delete the given tasks, or those matching ``filter``
        (at most 10,000): ``{matched, changed}``."""

    @abstractmethod
    def cancel(self, task_id: int) -> dict:
        """Cancel an unfinished task (and its unfinished children)."""

    @abstractmethod
    def retry(self, task_id: int) -> dict:
        """Re-queue a failed or cancelled task."""

    @abstractmethod
    def counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {status: n}}``."""

    @abstractmethod
    def totals(self) -> dict[str, dict]:
        """Never-decreasing counters: ``{queue: {"created": n, "entered": {status: n}}}``."""

    @abstractmethod
    def minutes(self, since: float) -> list[dict]:
        """Per queue and minute: succeeded, failed, picked up, summed pickup latency."""

    @abstractmethod
    def throughput(self, minutes: int) -> list[dict]:
        """Tasks finished per minute over the last ``minutes`` minutes, by status."""

    @abstractmethod
    def histogram(self, metric: str) -> dict[str, list[tuple[float, int, float]]]:
        """Non-cumulative buckets of 'pickup' or 'duration' per queue."""
    def queue_throughput(self, minutes: int) -> dict[str, list[dict]]:
        """Per queue, tasks succeeded and failed per minute over the last ``minutes``:
        ``{queue: [{minute, succeeded, failed}]}``, oldest minute first."""

    # -- pausing queues -----------------------------------------------------
    @abstractmethod
    def pause_queue(self, queue: str) -> bool:
        """Pause a queue for every daemon on this database; False if it already was."""

    @abstractmethod
    def resume_queue(self, queue: str) -> bool:
        """Resume a paused queue and wake idle workers; False if it was not paused."""

    @abstractmethod
    def paused_queues(self) -> dict[str, float]:
        """``{queue: paused_at}`` of every paused queue."""

    @abstractmethod
    def recent_failures(self, limit: int) -> list[dict]:
        """The latest failed tasks."""

    @abstractmethod
    def prune(self, succeeded_before: float, failed_before: float) -> int:
        """Delete finished tasks older than the retention limits."""

    @abstractmethod
    def fetch(self, statement: str, params: tuple | list = ()) -> list[tuple]:
        """Rows of one read-only SQL statement written with ``?`` placeholders."""

    # -- workers and daemon state -----------------------------------------
    @abstractmethod
    def upsert_workers(self, rows: list[WorkerRow]) -> None:
        """Register or heartbeat workers."""

    @abstractmethod
    def remove_workers(self, worker_ids: list[str]) -> None:
        """Forget workers that stopped."""

    @abstractmethod
    def live_workers(self, max_age_s: float = LIVE_WORKER_AGE_S) -> list[dict]:
        """Workers whose heartbeat is younger than ``max_age_s``."""

    @abstractmethod
    def beat_daemon(self, daemon_id: str, host: str, pid: int, started_at: float) -> None:
        """Register or heartbeat one running daemon (its per-start id)."""

    @abstractmethod
    def remove_daemon(self, daemon_id: str) -> None:
        """Forget a daemon that stopped cleanly."""

    @abstractmethod
    def stale_daemons(self) -> list[str]:
        """Ids of daemons whose heartbeat stopped: their workers are gone."""

    # -- schedules ---------------------------------------------------------
    @abstractmethod
    def schedule_marks(self) -> dict[str, dict]:
        """``{name: {paused, since, last_slot, last_task_id}}`` of every known entry."""

    @abstractmethod
    def register_schedules(self, names: list[str], now: float) -> None:
        """Record entries seen for the first time: their slots count from ``now``."""

    @abstractmethod
    def enqueue_slot(self, name: str, slot: float, task: NewTask) -> int | None:
        """Enqueue a slot's task unless any daemon did already; its id or None."""

    @abstractmethod
    def set_schedule_paused(self, name: str, paused: bool) -> None:
        """Pause or resume a schedule entry for every daemon on this database."""

    @abstractmethod
    def put_state(self, key: str, value: Any) -> None:
        """Publish a JSON-able fact for other processes."""

    @abstractmethod
    def get_state(self, key: str) -> Any:
        """Read a published fact, or None."""
