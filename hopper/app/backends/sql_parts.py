"""What the SQL backend's parts use from one another.

``SqlBackend`` is assembled from parts, each in a module of its own: the task
transitions (``states.TaskStates``), listings and bulk actions
(``task_queries.TaskQueries``), counters (``counters.CounterReads`` and
``counter_batch.CounterWrites``) and schedules (``schedule_store.ScheduleStore``),
over the engine's connection helpers (``sql.SqlBackend``, ``sqlite``,
``postgres``). Each part inherits ``SqlParts``, which declares for the type
checker what the others provide; at run time it adds nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ContextManager

if TYPE_CHECKING:
    from hopper.app.backends.base import Claimed, NewTask, QueueFilter
    from hopper.app.backends.counter_batch import CounterBatch


class SqlParts:
    """The engine helpers and cross-part methods a part of ``SqlBackend`` may call."""

    if TYPE_CHECKING:
        row_lock: str
        row_locks: bool
        data_errors: tuple[type[BaseException], ...]
        _local: Any  # the engine's threading.local: connections, the counter batch
        _clock_offset: float

        def now(self) -> float: ...

        # -- the engine (sql.py and its subclasses) -------------------------
        def _conn(self) -> Any: ...
        def _write(self) -> ContextManager[Any]: ...
        def _read(self, statement: str, params: tuple | list = ()) -> list[tuple]: ...
        def _run(self, conn: Any, statement: str, params: tuple | list = ()) -> Any: ...
        def _run_many(self, conn: Any, statement: str, rows: list[tuple]) -> None: ...
        def _insert_one(self, conn: Any, task: NewTask, now: float) -> tuple[int, bool]: ...
        def _claim(self, conn: Any, worker_id: str, limit: int, lease_s: float,
                   targets: list[tuple[str, int]]) -> list[Claimed]: ...
        def _claim_targets(self, conn: Any, limit: int,
                           queues: QueueFilter | None) -> list[tuple[str, int]]: ...
        def _wake_listeners(self, conn: Any, n: int = 1) -> None: ...

        # -- the counters a transaction changes (counter_batch.py, sql.py) ---
        def _counted(self) -> CounterBatch: ...
        def _count_deleted(self, rows: list[tuple]) -> None: ...

        # -- the task transitions (states.py) -------------------------------
        def _lock_ancestors(self, conn: Any, task_ids: list[int],
                            include_self: bool = False) -> None: ...
        def _settle(self, conn: Any, parent_id: int | None) -> None: ...
        def _cancel_tree(self, conn: Any, task_id: int) -> None: ...
        def retry(self, task_id: int) -> dict: ...

        # -- reading tasks (sql.py) -----------------------------------------
        def get(self, task_id: int) -> dict | None: ...
