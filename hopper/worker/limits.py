"""Which queues a pool claims, and how many tasks of each it runs at once.

``Routing`` is fixed for a daemon's life: ``worker --queues a,b`` claims only
those queues, and a daemon started with ``worker`` leaves the serve-only
queues (those plugins name, whose files live where the watchers run) to ``serve``
daemons unless ``--queues`` names them.

``QueueLimits`` carries ``queues.NAME.concurrency`` live from the supervisor to
its workers and counts, in shared memory, the tasks of each limited queue the
pool's workers hold (claimed and not yet reported). Each worker owns one row of
that table. A claim that may take tasks of a limited queue holds the pool's
lock file from computing the free slots until its counts are updated, so two
workers never take the same free slot, whatever the batch size. The lock is an
``flock``: the kernel releases it when a killed worker's process goes, and the
supervisor clears a dead worker's row before the row is used again.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawArray, RawValue
from typing import Iterator

from hopper.app.backends.base import Claimed, QueueFilter
from hopper.app.defaults import (
    LIMIT_TABLE_ROWS_PER_WORKER,
    LIMITS_BLOB_BYTES,
    MAX_LIMITED_QUEUES,
)

# Columns of the held-task table: twice the limited queues a settings file may
# name, so a live change can limit new queues while old ones still drain.
_COLUMNS = 2 * MAX_LIMITED_QUEUES


@dataclass(frozen=True)
class Routing:
    """The queues a daemon claims: ``only`` from ``--queues`` (None: every
    queue), ``serve``: started with ``serve`` (runs the serve-only queues)."""

    only: frozenset[str] | None = None
    serve: bool = True

    @property
    def excluded(self) -> frozenset[str]:
        """Queues this daemon never claims besides those outside ``only``."""
        if self.serve or self.only is not None:
            return frozenset()
        from hopper.app import plugins  # the plugins name their serve-only queues

        return plugins.serve_only_queues()


class QueueLimits:
    """The live per-queue concurrency of one pool and the tasks its workers hold."""

    def __init__(self, max_workers: int):
        self.rows = max_workers * LIMIT_TABLE_ROWS_PER_WORKER
        self._blob = RawArray(ctypes.c_char, LIMITS_BLOB_BYTES)
        self._version = RawValue(ctypes.c_long, 0)
        self._held = RawArray(ctypes.c_int, self.rows * _COLUMNS)
        fd, self.lock_path = tempfile.mkstemp(prefix="hopper-queues-", suffix=".lock")
        os.close(fd)
        self._fd: int | None = None
        self._fd_pid = 0
        self._free_rows = list(range(self.rows))   # the supervisor's bookkeeping
        self._columns: dict[str, int] = {}

    # -- both sides ------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """The pool's lock, per process (an flock on this process's own open file)."""
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CLOEXEC)
            self._fd_pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @property
    def version(self) -> int:
        return self._version.value

    def held(self, column: int) -> int:
        """Tasks of a column's queue the pool's workers hold now."""
        return sum(self._held[column::_COLUMNS])

    def add(self, row: int, column: int, n: int) -> None:
        self._held[row * _COLUMNS + column] += n

    def read(self) -> tuple[dict[str, int], dict[str, int]]:
        """``(limits, columns)`` as last published; call under :meth:`locked`."""
        data = json.loads(self._blob.value or b'{"limits": {}, "columns": {}}')
        return data["limits"], data["columns"]

    # -- the supervisor's side -------------------------------------------------
    def publish(self, limits: dict[str, int]) -> None:
        """Make ``{queue: concurrency}`` the limits in force for every worker."""
        with self.locked():
            for name, column in list(self._columns.items()):
                if limits.get(name, 0) <= 0 and self.held(column) == 0:
                    del self._columns[name]   # its column is free for another queue
            for name, limit in limits.items():
                if limit > 0 and name not in self._columns:
                    used = set(self._columns.values())
                    self._columns[name] = next(c for c in range(_COLUMNS) if c not in used)
            blob = json.dumps({"limits": limits, "columns": self._columns}).encode()
            if len(blob) >= LIMITS_BLOB_BYTES:
                raise ValueError("queue limits do not fit in shared memory; name fewer queues")
            self._blob.value = blob
            self._version.value += 1

    def take_row(self) -> int:
        """A free row of the held-task table for a new worker."""
        if not self._free_rows:
            raise RuntimeError("no free row in the queue limits table: too many workers alive")
        return self._free_rows.pop(0)

    def release_row(self, row: int) -> None:
        """Forget what a worker that exited held; its row may be reused."""
        with self.locked():
            for column in range(_COLUMNS):
                self._held[row * _COLUMNS + column] = 0
        self._free_rows.append(row)

    def close(self) -> None:
        """Remove the lock file (the supervisor, when the pool stops)."""
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass


class QueueGate:
    """One worker's view of the pool's routing and limits around each claim."""

    def __init__(self, limits: QueueLimits, row: int, routing: Routing):
        self.limits, self.row, self.routing = limits, row, routing
        self._version = -1
        self._limits: dict[str, int] = {}
        self._columns: dict[str, int] = {}
        self._mine: dict[int, int] = {}   # task id -> column, for tasks of limited queues
        self._limited: list[str] = []     # limited queues this daemon may claim
        self._caps_base: dict[str, int] = {}
        self._plain = QueueFilter()

    @property
    def counting(self) -> bool:
        """Whether claims and reports must be counted (a limited queue exists or did)."""
        self._refresh()
        return bool(self._columns or self._mine)

    def _refresh(self) -> None:
        if self._version == self.limits.version:
            return
        with self.limits.locked():
            self._version = self.limits.version
            self._limits, self._columns = self.limits.read()
        only, excluded = self.routing.only, self.routing.excluded
        self._limited = [name for name, n in self._limits.items()
                         if n > 0 and name not in excluded and (only is None or name in only)]
        caps = {name: 0 for name in excluded}
        caps.update({name: 0 for name, n in self._limits.items() if n == 0})
        # Limited queues are claimed only under the lock; without it, none of them.
        self._plain = QueueFilter(only, {**caps, **{name: 0 for name in self._limited}})
        self._caps_base = caps

    @contextmanager
    def claiming(self, done: list[int]) -> Iterator[QueueFilter]:
        """The filter for a claim that also reports ``done`` (ids of tasks this
        worker gives up); holds the pool's lock when a limited queue may be claimed.
        Call :meth:`record` with the claim's result before leaving."""
        self._refresh()
        limited = self._limited
        if not limited:
            yield self._plain
            return
        with self.limits.locked():
            caps = dict(self._caps_base)
            for name in limited:
                column = self._columns[name]
                leaving = sum(1 for t in done if self._mine.get(t) == column)
                caps[name] = max(0, self._limits[name] - self.limits.held(column) + leaving)
            yield QueueFilter(self.routing.only, caps)

    def record(self, done: list[int], claimed: list[Claimed]) -> None:
        """Count the tasks just claimed and forget those just reported."""
        if not self._columns and not self._mine:
            return  # no limited queue: nothing to count (the common case)
        for task_id in done:
            column = self._mine.pop(task_id, None)
            if column is not None:
                self.limits.add(self.row, column, -1)
        for task in claimed:
            column = self._columns.get(task.queue)
            if column is not None and self._limits.get(task.queue, 0) > 0:
                self._mine[task.id] = column
                self.limits.add(self.row, column, 1)
