"""The storage contract, in small protocols of short verbs.

Each protocol is one concern of the queue's storage, so a caller can say which
part it needs (the reaper needs ``Claims`` and ``Processes``, the scheduler
``Schedules``) and an engine can be read one concern at a time. ``Backend``
(``base.py``) is all of them together; ``SqlBackend`` implements each once in
portable SQL, and an engine module (``sqlite.py``, ``postgres.py``) gives only
the statements and connections that differ.

==============  ==============================================================
``Tasks``       the task store: insert, read, list, cancel, retry, prune
``Claims``      the state machine of running tasks: claim, finish, fail, lease
``Queues``      pausing and resuming a queue for every daemon
``Statistics``  counters kept by the database: counts, totals, per minute
``Processes``   the registry of daemons and workers and their heartbeats
``Schedules``   the slots of recurring tasks, claimed once across daemons
``State``       a small key-value store of facts processes publish
``Tables``      SQL on tables of a plugin's own (the media library's index)
``Workflows``   tasks that wait for others (``depends_on``): what a finish released
``FlowControl`` concurrency keys and rate limits: what they hold, why a task waits
``Notifier``    waking idle workers when a task becomes claimable
==============  ==============================================================

Every transition that makes a task claimable (an insert, a retry, a rescue, a
failed attempt going back to ``queued``, a queue resumed, a continuation
created) rings the backend's ``Notifier`` once its transaction commits;
callers never ring it themselves.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ContextManager, Protocol

from hopper.app.defaults import LIVE_WORKER_AGE_S

if TYPE_CHECKING:  # names for the signatures only: base.py imports this module
    from hopper.app.backends.base import Claimed, NewTask, Outcome, QueueFilter, WorkerRow
    from hopper.app.flow import Rate


class Tasks(Protocol):
    """The task store.

    - ``enqueue``: insert tasks (one transaction); a unique_key already held by an
      unfinished task returns that task's id instead.
    - ``get``, ``list``, ``page``, ``recent_failures``: read tasks as public dicts.
    - ``cancel``, ``retry``, ``bulk``: the operator's changes.
    - ``set_progress``, ``set_meta``: what a running task reports about itself.
    - ``prune``: delete finished tasks past their retention.
    """

    @abstractmethod
    def enqueue(self, tasks: list[NewTask]) -> list[tuple[int, bool]]:
        """Insert tasks in one transaction; ``(id, created)`` per task.

        A task whose unique_key matches an unfinished task is not inserted;
        the existing task's id comes back with ``created=False``.
        """

    @abstractmethod
    def get(self, task_id: int) -> dict | None:
        """One task, with children counts by status, or None."""

    @abstractmethod
    def page(self, limit: int = 50, cursor: int | None = None,
             **filters: Any) -> tuple[list[dict], int | None]:
        """One page of ``list`` and the next page's cursor (None: no more), with a
        bounded scan per page for filters no index answers."""

    @abstractmethod
    def recent_failures(self, limit: int) -> list[dict]:
        """The latest failed tasks."""

    @abstractmethod
    def cancel(self, task_id: int) -> dict:
        """Cancel an unfinished task (and its unfinished children)."""

    @abstractmethod
    def retry(self, task_id: int) -> dict:
        """Re-queue a failed or cancelled task."""

    @abstractmethod
    def bulk(self, action: str, ids: list[int] | None = None, filter: dict | None = None,
             dry_run: bool = False) -> dict:
        """Retry, cancel or delete the given tasks, or those matching ``filter``
        (at most 10,000): ``{matched, changed}``."""

    @abstractmethod
    def set_progress(self, task_id: int, done: int, total: int) -> None:
        """Record a running task's own progress."""

    @abstractmethod
    def set_meta(self, task_id: int, values: dict) -> dict:
        """Merge ``values`` into a task's meta (top-level keys replaced); return the
        merged object. KeyError for an unknown task, ValueError when too large."""

    @abstractmethod
    def prune(self, succeeded_before: float, failed_before: float) -> int:
        """Delete finished tasks older than the retention limits."""

    # Last: below it, ``list`` in an annotation of this class would name this method.
    @abstractmethod
    def list(self, status: str | None = None, name: str | None = None, queue: str | None = None,
             parent_id: int | None = None, limit: int = 50, cursor: int | None = None,
             q: str | None = None, tags: list[str] | None = None) -> list[dict]:
        """Tasks newest first; ``cursor`` is the last id of the previous page;
        ``q``: text in the name, args or error; ``tags``: only tasks that carry every one."""


class Claims(Protocol):
    """The state machine of a task while workers hold it.

    ``queued`` → ``running`` (``finish_and_claim``, ``claim_ids``) → ``succeeded``,
    ``failed``, ``waiting`` for its children, or back to ``queued`` for another
    attempt (an outcome, ``fail_attempt``, ``requeue_worker``). A worker's lease
    (``renew_leases``) says it is alive; ``expired_leases`` finds those that are not.
    Whether a failed attempt runs again is decided before the call
    (``retries.retry_at``): a ``retry_at`` of None fails the task for good.
    """

    @abstractmethod
    def finish_and_claim(self, worker_id: str, outcomes: list[Outcome], release: list[int],
                         limit: int, lease_s: float,
                         queues: QueueFilter | None = None) -> list[Claimed]:
        """Record outcomes, give back unstarted tasks and claim up to ``limit``
        ready tasks of unpaused queues that ``queues`` allows, all in one
        transaction (group commit)."""

    @abstractmethod
    def claim_ids(self, worker_id: str, task_ids: list[int], lease_s: float) -> list[Claimed]:
        """Claim these queued tasks whatever their run_after (the inline engine)."""

    def next_due(self) -> float | None:
        """When the earliest delayed task (queued, due later) may run, as Unix
        time; None when there is none or it is not known cheaply. A worker with
        nothing ready sleeps until then at most."""
        return None

    @abstractmethod
    def queued_continuations(self, parent_ids: list[int]) -> list[int]:
        """Ids of the queued continuations that settling these parents created."""

    @abstractmethod
    def fail_attempt(self, task_id: int, worker_id: str, error: str, retry_at: float | None,
                     kind: str = "lost") -> bool:  # base.ATTEMPT_LOST
        """End the running attempt of one task as failed (timeout, lost worker):
        back to ``queued`` at ``retry_at``, or ``failed`` when it is None.
        False if the task was no longer running on that worker."""

    @abstractmethod
    def requeue_worker(self, worker_id: str, current_task: int | None, error: str,
                       retry_at: float | None, count_all: bool = False) -> int:
        """A worker is gone: its current task (or, with ``count_all``, every
        task it held) fails an attempt, queued again at ``retry_at`` while it has
        attempts left; the rest, claimed but never started, go back unchanged.
        Returns the number of tasks touched."""

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
    def held_by(self, worker_id: str) -> list[int]:
        """Ids of the running tasks this worker holds."""

    @abstractmethod
    def cancelled_among(self, task_ids: list[int]) -> list[int]:
        """Which of these tasks have been cancelled."""


class Queues(Protocol):
    """Pausing a queue: recorded in the database, so it holds for every daemon."""

    @abstractmethod
    def pause_queue(self, queue: str) -> bool:
        """Pause a queue for every daemon on this database; False if it already was."""

    @abstractmethod
    def resume_queue(self, queue: str) -> bool:
        """Resume a paused queue and wake idle workers; False if it was not paused."""

    @abstractmethod
    def paused_queues(self) -> dict[str, float]:
        """``{queue: paused_at}`` of every paused queue."""


class Statistics(Protocol):
    """Counters the database keeps in the same transaction as each change, so
    reading them costs a few rows however many tasks there are."""

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
    def queue_throughput(self, minutes: int) -> dict[str, list[dict]]:
        """Per queue, tasks succeeded and failed per minute over the last ``minutes``:
        ``{queue: [{minute, succeeded, failed}]}``, oldest minute first."""

    @abstractmethod
    def histogram(self, metric: str) -> dict[str, list[tuple[float, int, float]]]:
        """Non-cumulative buckets of 'pickup' or 'duration' per queue."""


class Processes(Protocol):
    """Who is running: daemons and their workers, each with a heartbeat.

    A worker id names its daemon's per-start id, so a stale daemon row is enough
    to know that every worker of that daemon is gone (see ``reaper.py``).
    """

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


class Schedules(Protocol):
    """Recurring tasks: each slot is enqueued once, whichever daemon gets there first."""

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


class State(Protocol):
    """A small key-value store of JSON facts one process publishes for the others
    (keys in ``published.py``)."""

    @abstractmethod
    def put_state(self, key: str, value: Any) -> None:
        """Publish a JSON-able fact for other processes."""

    @abstractmethod
    def get_state(self, key: str) -> Any:
        """Read a published fact, or None."""


class Tables(Protocol):
    """SQL for modules with tables of their own (the media library's index, folder
    triggers), written once with ``?`` placeholders for every engine.

    Only for their own tables: the queue's tables change through the protocols
    above, which keep the counters and the notifier right.
    """

    @abstractmethod
    def transaction(self) -> ContextManager[Any]:
        """A write transaction; run statements in it with :meth:`run`."""

    @abstractmethod
    def run(self, conn: Any, statement: str, params: tuple | list = ()) -> Any:
        """Execute one ``?``-placeholder statement on ``conn``; returns the cursor."""

    @abstractmethod
    def run_many(self, conn: Any, statement: str, rows: list[tuple]) -> None:
        """Execute one statement per row of parameters on ``conn``."""

    @abstractmethod
    def fetch(self, statement: str, params: tuple | list = ()) -> list[tuple]:
        """Rows of one read-only statement, outside any transaction."""


class Workflows(Protocol):
    """Dependencies between tasks: a task enqueued with ``depends_on`` is ``blocked``
    until each of them succeeded (then ``queued``), and cancelled when one failed or
    was cancelled. Enqueueing and the transitions go through ``Tasks`` and ``Claims``;
    this is what the inline engine asks after running a task."""

    @abstractmethod
    def queued_dependents(self, task_id: int) -> list[int]:
        """Ids of the queued tasks that depend on ``task_id`` (released when it
        succeeded, if their other dependencies had too), in id order."""


class FlowControl(Protocol):
    """Concurrency keys and rate limits, kept in the database for every daemon.

    The rules are applied inside the claim (``finish_and_claim`` takes a keyed task
    only while its key has a free slot and its rate allows one more claim); these
    verbs are what the Limits page, the API, the settings and a task's page read
    and set, and the upkeep of the flow tables.

    - ``limits``: each busy concurrency key's counts, and every rate limit.
    - ``set_rate_limit``, ``sync_rate_limits``: a rate set by an operator; the ones
      from settings made exactly those of the file.
    - ``rate_claims``: when the claims under a rate key were made.
    - ``flow_wait``: why a queued task is not running yet (its key or its rate).
    - ``flow_next_due``: when the next keyed task may be claimed (an idle worker's sleep).
    - ``recount_running``: each key's count of running tasks set to its tasks' again.
    - ``prune_flow``: recount, then drop the rows of keys and groups with nothing left.
    """

    @abstractmethod
    def limits(self) -> dict:
        """``{"concurrency": [{key, limit, running, queued}], "rates": [{key, rate,
        amount, period_s, used, period_start, next_at, queued, source}]}``."""

    @abstractmethod
    def set_rate_limit(self, key: str, rate: Rate | None, source: str = "api") -> bool:
        """Set (or with None remove) a rate limit for every daemon; True if it changed."""

    @abstractmethod
    def sync_rate_limits(self, rates: dict[str, Rate]) -> None:
        """Make the rate limits that came from settings exactly ``rates`` (those set
        through the API or the Limits page stay)."""

    @abstractmethod
    def rate_claims(self, key: str, since: float = 0.0) -> list[float]:
        """When the claims under a rate key were made, oldest first (a few periods)."""

    @abstractmethod
    def flow_wait(self, task: dict) -> dict | None:
        """Why a queued keyed task (a public task dict) is not running yet:
        ``{"reason": "concurrency" | "rate", "key", ...}``; None when it is not waiting."""

    @abstractmethod
    def flow_next_due(self, now: float) -> float | None:
        """The earliest time a keyed task waits for (a rate key's next slot, a delayed
        keyed task); None when there is none or it is not known cheaply."""

    @abstractmethod
    def recount_running(self) -> list[str]:
        """Set each key's count of running tasks to the number of its running tasks
        where they differ (a slot left held); the keys corrected."""

    @abstractmethod
    def prune_flow(self) -> None:
        """Recount the keys' running tasks, then drop the rows of keys and groups with
        nothing queued or running."""


class Listener(Protocol):
    """One idle worker's wait for a wake-up."""

    def wait(self, timeout: float) -> bool:
        """Block until woken (True) or until ``timeout`` seconds passed (False)."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...

    def reset(self) -> None:
        """The database was lost (this process's other connections died with it):
        drop what the listener holds so its next ``wait`` connects again, rather
        than finding its connection dead, and reporting it, on its own."""
        ...


class Notifier(Protocol):
    """Wakes idle workers when tasks may be claimable.

    SQLite: a named pipe beside the database file (``wakeup.py``), for the
    workers of this machine. PostgreSQL: ``LISTEN``/``NOTIFY``, for every host.
    A wake-up is a hint: workers also poll slowly, so a lost one costs latency,
    never a task.
    """

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` idle workers."""
        ...

    def listen(self) -> Listener:
        """A listener for one idle worker of this process."""
        ...

    def held(self) -> ContextManager[None]:
        """A block whose wake-ups (of this thread) are sent when it ends: a producer
        logs what it enqueued before any worker can start it. An enqueue inside it
        may return once its tasks are visible; they are durable when the block ends
        (SQLite syncs its log after the wake-up, so workers claim meanwhile)."""
        ...
