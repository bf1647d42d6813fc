"""The worker loop: claim → run → report, in one worker process.

Claims and reports are group-committed: one transaction records the outcomes
of the tasks just run and claims the next batch. The batch grows only while
tasks are fast, and a worker gives back what it has not started once a batch
has held tasks for longer than ``PREFETCH_HOLD_S``, so prefetch never keeps
work from an idle worker. The constants live in ``app/defaults.py``.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from multiprocessing import forkserver
from multiprocessing.sharedctypes import RawArray
from typing import Any, Callable, ContextManager

from hopper.app import logs
from hopper.app.backends import connection_lost, transient
from hopper.app.backends.base import Backend, Claimed, Outcome
from hopper.app.backends.protocols import Listener
from hopper.app.defaults import (
    FAST_TASK_S,
    IDLE_POLL_MAX_S,
    IDLE_POLL_S,
    MAX_BATCH,
    PREFETCH_HOLD_S,
    SLOT_LOCK_WAIT_S,
)
from hopper.app.execute import execute, log_outcome
from hopper.app.identity import worker_id_for
from hopper.app.outage import Outage
from hopper.worker.limits import QueueGate, QueueLimits, Routing

log = logging.getLogger("hopper.worker")

_SLOT_TASK, _SLOT_DEADLINE, _SLOT_STOP = range(3)


class Slot:
    """Shared memory between a worker and its supervisor: the current task,
    its deadline (``time.monotonic``, 0 = none) and a stop request.

    The worker changes its current task only under the slot's lock, and the
    supervisor kills a worker only while holding it and seeing the task it
    means to stop: a kill can never hit the next task the worker moved on to.
    """

    def __init__(self, ctx):
        self._values = RawArray(ctypes.c_double, 3)
        self._lock = ctx.Lock()

    def begin(self, task_id: int, deadline: float) -> None:
        with self._lock:
            self._values[_SLOT_DEADLINE] = deadline
            self._values[_SLOT_TASK] = task_id

    def end(self) -> None:
        with self._lock:
            self._values[_SLOT_TASK] = 0
            self._values[_SLOT_DEADLINE] = 0

    def stop_if_running(self, task_id: int, kill: Callable[[], None]) -> bool:
        """Call ``kill`` if, and only if, the worker is still running ``task_id``."""
        if not self._lock.acquire(timeout=SLOT_LOCK_WAIT_S):
            return False  # the worker died holding the lock: its exit is handled anyway
        try:
            if self.current()[0] != task_id:
                return False
            kill()
            return True
        finally:
            self._lock.release()

    def current(self) -> tuple[int | None, float]:
        task_id = int(self._values[_SLOT_TASK])
        return (task_id or None), self._values[_SLOT_DEADLINE]

    def request_stop(self) -> None:
        self._values[_SLOT_STOP] = 1

    @property
    def stop_requested(self) -> bool:
        return self._values[_SLOT_STOP] == 1


class WorkerLoop:
    """Runs tasks until asked to stop; owns no process-level state."""

    def __init__(self, backend: Backend, worker_id: str, lease_s: float, slot: Slot,
                 listener: Listener | None = None, task_context=contextlib.nullcontext,
                 gate: QueueGate | None = None):
        self.backend, self.worker_id, self.lease_s, self.slot = backend, worker_id, lease_s, slot
        self.listener, self.gate = listener, gate
        self.task_context = task_context  # entered around each task (tasks.flask_app)
        self.durations: dict[str, float] = {}  # moving average per task name
        self._stop = False
        self._idle_s = IDLE_POLL_S
        self.outage = Outage(f"worker {worker_id}", log)
        self._in_doubt = False  # an exchange failed with the connection: claims unknown

    def stop(self) -> None:
        self._stop = True

    def stopping(self) -> bool:
        return self._stop or self.slot.stop_requested

    def run(self) -> None:
        pending: list[Outcome] = []
        release: list[int] = []
        batch = 1
        while not self.stopping():
            claimed = self._finish_and_claim(pending, release, batch)  # the backend wakes peers
            pending, release = [], []
            if not claimed:
                self._idle()
                continue
            self._idle_s = IDLE_POLL_S
            release = self._run_batch(claimed, pending)
            batch = self._next_batch_size(claimed, batch)
        self._finish_and_claim(pending, release, 0)

    def _finish_and_claim(self, pending: list[Outcome], release: list[int],
                          limit: int) -> list[Claimed]:
        """Report outcomes, give back ``release`` and claim up to ``limit`` tasks of the
        queues this pool may run now (one transaction). A database that does not answer
        is waited for, so the outcomes already in hand are recorded (and their attempts
        counted), not lost."""
        while True:
            try:
                if self._in_doubt:
                    release = self._unclaimed_holds(pending, release)
                claimed = self._exchange(pending, release, limit)
                self._in_doubt = False
                self.outage.succeeded()
                return claimed
            except Exception as exc:  # the database is down or refused the write: try again
                if connection_lost(exc):
                    # The connection died during the exchange: its COMMIT may have been
                    # made without this worker hearing of it. If it claimed, the tasks it
                    # holds are then the claimed ones alone (a give-back, limit 0, runs
                    # while the worker still holds the task it is about to start).
                    self._in_doubt = self._in_doubt or limit > 0
                    if not self.outage.lost and self.listener is not None:
                        self.listener.reset()  # the wake-up connection died with this one
                    wait = self.outage.failed(exc)  # one warning per outage, not per try
                elif transient(exc):
                    log.warning("worker %s: the database aborted a report (%s); sending it"
                                " again", self.worker_id, type(exc).__name__)
                    wait = 0.0
                else:
                    log.exception("worker %s could not record %d outcome(s); retrying",
                                  self.worker_id, len(pending))
                    wait = IDLE_POLL_S
                if self.slot.stop_requested and not pending and not release:
                    return []
                time.sleep(wait)

    def _unclaimed_holds(self, pending: list[Outcome], release: list[int]) -> list[int]:
        """``release`` plus the tasks this worker holds but never received (claimed by
        an exchange whose answer was lost): given back unstarted, not left running
        under a live worker whose leases keep them from being rescued."""
        known = {o.task_id for o in pending} | set(release)
        return release + [t for t in self.backend.held_by(self.worker_id) if t not in known]

    def _exchange(self, pending: list[Outcome], release: list[int], limit: int) -> list[Claimed]:
        if self.gate is None:
            return self.backend.finish_and_claim(self.worker_id, pending, release, limit,
                                                 self.lease_s)
        done = [o.task_id for o in pending] + release if self.gate.counting else []
        with self.gate.claiming(done) as queues:
            claimed = self.backend.finish_and_claim(self.worker_id, pending, release, limit,
                                                    self.lease_s, queues)
            self.gate.record(done, claimed)
        return claimed

    def _idle(self) -> None:
        """Wait for a wake-up, a delayed task coming due, or the fallback poll.

        The fallback poll doubles while nothing happens, up to IDLE_POLL_MAX_S,
        so an idle worker costs next to no CPU; a wake-up resets it, and a
        delayed task that comes due sooner shortens the wait to its due time.
        """
        wait = self._idle_s
        try:
            due = self.backend.next_due()
            if due is not None:
                wait = min(wait, max(0.001, due - time.time()))
            if self.listener is not None:
                woken = self.listener.wait(wait)
            else:
                time.sleep(wait)
                woken = False
        except Exception as exc:  # connection_lost decides; anything else re-raises
            time.sleep(self.outage.failed(exc))
            return
        self._idle_s = IDLE_POLL_S if woken else min(self._idle_s * 2, IDLE_POLL_MAX_S)

    def _run_batch(self, claimed: list[Claimed], pending: list[Outcome]) -> list[int]:
        """Run claimed tasks in order; return the ids given back unstarted."""
        held_since = time.monotonic()
        for index, task in enumerate(claimed):
            if index and (self.stopping() or time.monotonic() - held_since > PREFETCH_HOLD_S):
                return [t.id for t in claimed[index:]]
            if self.durations.get(task.name, 1.0) > FAST_TASK_S:
                # Before a task that may run long: record finished work and give
                # back the rest of the batch, so an idle peer can start it now.
                self._give_back(pending, [t.id for t in claimed[index + 1:]])
                pending.append(self._run_one(task))
                return []
            pending.append(self._run_one(task))
        return []

    def _give_back(self, pending: list[Outcome], unstarted: list[int]) -> None:
        if pending or unstarted:
            self._finish_and_claim(pending, unstarted, 0)  # the backend rings for `unstarted`
            pending.clear()

    def _run_one(self, task: Claimed) -> Outcome:
        deadline = time.monotonic() + task.timeout if task.timeout else 0.0
        self.slot.begin(task.id, deadline)
        logs.task_event("started", task.id, task.name, task.queue, self.worker_id, task.attempts)
        try:
            with self.task_context():
                outcome = execute(task)
        finally:
            self.slot.end()
        log_outcome(task, outcome, self.worker_id)
        took = outcome.finished_at - outcome.started_at
        previous = self.durations.get(task.name, took)
        self.durations[task.name] = previous * 0.8 + took * 0.2
        return outcome

    def _next_batch_size(self, claimed: list[Claimed], batch: int) -> int:
        if all(self.durations.get(t.name, 1.0) <= FAST_TASK_S for t in claimed):
            return min(MAX_BATCH, batch * 4)
        return 1


def _die_with_fork_server() -> None:
    """Tie this worker's life to the fork server, and the fork server's to the supervisor.

    The fork server exits when the last holder of its "alive" pipe closes it.
    multiprocessing hands every child a copy, which would keep the fork server
    (and so this worker) running after a killed supervisor; the copy is closed
    here, and the kernel kills this worker when the fork server exits.
    """
    alive_fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        os.close(alive_fd)
        forkserver._forkserver._forkserver_alive_fd = None  # type: ignore[attr-defined]  # private, read with getattr above
    parent = os.getppid()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(1, signal.SIGKILL) != 0:  # PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the fork server died before the line above took effect
        os._exit(0)


def worker_main(slot: Slot, settings, daemon_id: str, nonce: str,
                modules: tuple[str, ...] = (), limits: QueueLimits | None = None,
                row: int = 0, routing: Routing = Routing()) -> None:
    """Entry point of a worker process started by the WorkerPool with its settings,
    the pool's queue limits, this worker's row in them and the daemon's routing."""
    worker_id = worker_id_for(os.getpid(), daemon_id, nonce)
    _die_with_fork_server()  # SIGINT and SIGTERM stay ignored: see worker.forkserver_init
    logs.configure()  # as the supervisor was told (HOPPER_LOG_FORMAT, HOPPER_LOG_LEVEL)
    from hopper.app import queue

    # The supervisor's last good settings: the file on disk may be mid-edit or broken.
    # The supervisor applied the migrations before it started the pool.
    client = queue.configure(settings, migrate=False, modules=modules)
    task_context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    if settings.flask_app:
        from hopper.worker.flask_context import build_or_exit

        task_context = build_or_exit(settings.flask_app, client.backend)
    listener = client.backend.notifier().listen()
    gate = QueueGate(limits, row, routing) if limits is not None else None
    loop = WorkerLoop(client.backend, worker_id, settings.lease, slot, listener, task_context,
                      gate)
    loop.run()
