"""WorkerPool: N worker processes, resized live, supervised.

The pool's monitor thread notices a dead worker within milliseconds (process
sentinels), re-queues the task it held and starts a replacement. It also
enforces task timeouts and stops workers whose task was cancelled, by killing
the process: the only way to stop arbitrary Python code safely.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import wait as wait_sentinels
from typing import cast

import psutil

from hopper.app import logs
from hopper.app.backends import connection_lost
from hopper.app.backends.base import ATTEMPT_TIMEOUT, Backend, WorkerRow
from hopper.app.defaults import (
    APP_FAILED_FIRST_DELAY_S,
    APP_FAILED_MAX_DELAY_S,
    CANCEL_CHECK_S,
    FAST_EXIT_S,
    MAX_RESPAWN_DELAY_S,
    MONITOR_TICK_S,
)
from hopper.app.execute import retry_at_for
from hopper.app.identity import host_name, new_daemon_id, worker_id_for
from hopper.app.outage import Outage, best_effort
from hopper.app.published import FLASK_APP_ERROR_KEY
from hopper.app.settings import MAX_WORKERS, Settings
from hopper.worker.context import context
from hopper.worker.flask_context import EXIT_APP_FAILED  # (Flask not imported)
from hopper.worker.limits import QueueLimits, Routing
from hopper.worker.loop import Slot, worker_main

log = logging.getLogger("hopper.pool")


@dataclass
class WorkerHandle:
    process: multiprocessing.process.BaseProcess
    slot: Slot
    worker_id: str
    started_at: float
    row: int = 0                    # this worker's row in the pool's QueueLimits
    retiring: bool = False
    killed_for: int | None = None   # the task already settled when we killed it
    ps: psutil.Process | None = field(default=None, repr=False)

    @property
    def state(self) -> str:
        if self.retiring:
            return "stopping"
        return "busy" if self.slot.current()[0] else "idle"


class WorkerPool:
    """Worker processes for one settings file, against one backend."""

    def __init__(self, settings: Settings, backend: Backend, routing: Routing = Routing(),
                 daemon_id: str | None = None, modules: tuple[str, ...] = ()):
        self.settings, self.backend, self.lease_s = settings, backend, settings.lease
        self.routing = routing
        self.daemon_id = daemon_id or new_daemon_id()
        self.modules = modules  # task modules workers load besides tasks.modules
        self.limits = QueueLimits(MAX_WORKERS)
        self.limits.publish(settings.queue_limits)
        self.target = 0
        self.workers: dict[str, WorkerHandle] = {}
        self._lock = threading.RLock()
        self._ctx = context(settings.database, modules)
        self._closing = False
        self._monitor: threading.Thread | None = None
        self._last_cancel_check = 0.0
        self._respawn_delay = 0.0
        self._respawn_at = 0.0
        self._reported_app_error: str | None = None
        self._outage = Outage("pool monitor", log)
        self._retry_db_at = 0.0

    # -- sizing ------------------------------------------------------------
    def start(self, n: int) -> None:
        """Start ``n`` workers and the monitor thread."""
        self.scale(n)
        self._monitor = threading.Thread(target=self._monitor_loop, name="pool-monitor",
                                         daemon=True)
        self._monitor.start()

    def scale(self, n: int) -> None:
        """Grow or shrink to ``n`` workers. Shrinking lets running tasks finish."""
        with self._lock:
            self.target = n
            active = [h for h in self.workers.values() if not h.retiring]
            for _ in range(n - len(active)):
                self._spawn()
            surplus = len(active) - n
            if surplus > 0:
                # Idle workers go first, then the youngest.
                order = sorted(active, key=lambda h: (h.state == "busy", -h.started_at))
                for handle in order[:surplus]:
                    handle.retiring = True
                    handle.slot.request_stop()
        if n != len(active):
            log.info("pool resized from %d to %d workers", len(active), n)

    def set_queue_limits(self, limits: dict[str, int]) -> None:
        """Apply ``queues.NAME.concurrency`` live: workers see it at their next claim."""
        self.limits.publish(limits)

    def _spawn(self) -> None:
        slot, nonce, row = Slot(self._ctx), os.urandom(2).hex(), self.limits.take_row()
        process = self._ctx.Process(
            target=worker_main, args=(slot, self.settings, self.daemon_id, nonce, self.modules,
                                      self.limits, row, self.routing),
            daemon=True, name="hopper-worker")
        try:
            process.start()
        except BaseException:
            self.limits.release_row(row)
            raise
        worker_id = worker_id_for(process.pid, self.daemon_id, nonce)
        handle = WorkerHandle(process, slot, worker_id, time.time(), row)
        try:
            handle.ps = psutil.Process(process.pid)
            handle.ps.cpu_percent(None)
        except psutil.Error:
            handle.ps = None
        self.workers[worker_id] = handle

    # -- supervision -------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._closing:
            with self._lock:
                sentinels = {h.process.sentinel: h for h in self.workers.values()}
            # Deaths wake this at once; the tick only bounds how late a timeout is enforced.
            ready: list = []
            if sentinels:
                ready = wait_sentinels(list(sentinels), timeout=MONITOR_TICK_S)
            else:
                time.sleep(MONITOR_TICK_S)
            try:
                for sentinel in ready:
                    self._on_exit(sentinels[cast(int, sentinel)])  # sentinels are fds
                self._fill()
            except Exception:  # the monitor must outlive any one failure; it goes on next tick
                log.exception("pool monitor error")
            if self._outage.lost and time.monotonic() < self._retry_db_at:
                continue  # the database is away: timeouts and cancels wait for it
            try:
                self._enforce_timeouts()
                if time.monotonic() - self._last_cancel_check > CANCEL_CHECK_S:
                    self._last_cancel_check = time.monotonic()
                    self._stop_cancelled()
                self._outage.succeeded()
            except Exception as exc:  # the monitor must outlive a failed DB call
                if not connection_lost(exc):
                    log.exception("pool monitor error")
                    continue
                self._retry_db_at = time.monotonic() + self._outage.failed(exc)

    def _on_exit(self, handle: WorkerHandle) -> None:
        handle.process.join(1)
        code = handle.process.exitcode
        task_id, _ = handle.slot.current()
        if task_id == handle.killed_for:
            task_id = None
        try:
            touched = self.backend.requeue_worker(
                handle.worker_id, task_id, f"worker process died (exit code {code})",
                retry_at=time.time())
            self.backend.remove_workers([handle.worker_id])
        except Exception as exc:  # connection_lost decides; anything else re-raises
            # The database is away: the dead worker's tasks are rescued once it is back
            # (housekeeping: a worker no longer in this pool) or by its lease elsewhere.
            self._outage.failed(exc)
            touched = 0
        if task_id is not None and touched:
            _log_task("rescued", self.backend, task_id, handle.worker_id,
                      reason=f"worker process died (exit code {code})")
        with self._lock:
            self.workers.pop(handle.worker_id, None)
            self.limits.release_row(handle.row)
            if handle.retiring or self._closing:
                return
            if code == EXIT_APP_FAILED:
                self._app_failed()
                return
            log.warning("worker %s exited with code %s; %d task(s) re-queued; replacing it",
                        handle.worker_id, code, touched)
            if time.time() - handle.started_at < FAST_EXIT_S and handle.killed_for is None:
                # Dying right after start (e.g. a task module that fails to import):
                # back off instead of spinning.
                self._respawn_delay = min(MAX_RESPAWN_DELAY_S, max(0.5, self._respawn_delay * 2))
            else:
                self._respawn_delay = 0.0
            self._respawn_at = time.monotonic() + self._respawn_delay

    def _app_failed(self) -> None:
        """A worker could not build tasks.flask_app: back off; log each new error once."""
        self._respawn_delay = min(APP_FAILED_MAX_DELAY_S,
                                  max(APP_FAILED_FIRST_DELAY_S, self._respawn_delay * 2))
        self._respawn_at = time.monotonic() + self._respawn_delay
        published = self.backend.get_state(FLASK_APP_ERROR_KEY) or {}
        error = published.get("traceback") or published.get("error") or "(no details published)"
        if error != self._reported_app_error:
            self._reported_app_error = error
            log.error("tasks.flask_app %r could not be built; no task runs until it can"
                      " (workers retry with growing delays, up to every %.0fs):\n%s",
                      self.settings.flask_app, APP_FAILED_MAX_DELAY_S, error)

    def reset_backoff(self) -> None:
        """Start replacement workers without delay (the settings changed)."""
        with self._lock:
            self._respawn_delay, self._respawn_at = 0.0, 0.0
            self._reported_app_error = None

    def _fill(self) -> None:
        """Start replacements for workers that died, once any crash-loop backoff has passed."""
        with self._lock:
            if self._closing or time.monotonic() < self._respawn_at:
                return
            active = sum(not h.retiring for h in self.workers.values())
            for _ in range(self.target - active):
                self._spawn()

    def _stop_task(self, handle: WorkerHandle, task_id: int) -> bool:
        """Kill the worker if it still runs ``task_id``; never the task it moved on to."""
        def kill() -> None:
            handle.killed_for = task_id
            handle.process.kill()

        return handle.slot.stop_if_running(task_id, kill)

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for handle in list(self.workers.values()):
            task_id, deadline = handle.slot.current()
            if not (task_id and deadline and now > deadline and handle.killed_for != task_id):
                continue
            if not self._stop_task(handle, task_id):
                continue  # it finished (or died) meanwhile: its own outcome stands
            task = self.backend.get(task_id)
            if task is None:
                continue
            reason = f"timed out after {task['timeout'] or 0:g}s"
            retry_at = retry_at_for(task["name"], task["attempts"], task["max_attempts"],
                                    ATTEMPT_TIMEOUT)
            self.backend.fail_attempt(task_id, handle.worker_id, reason, retry_at,
                                      kind=ATTEMPT_TIMEOUT)
            logs.task_event("retried" if retry_at is not None else "failed", task_id,
                            task["name"], task["queue"], handle.worker_id, task["attempts"],
                            reason=reason)
            log.warning("task %s timed out on %s; stopped that worker", task_id,
                        handle.worker_id)

    def _stop_cancelled(self) -> None:
        running = {}
        for handle in list(self.workers.values()):
            task_id, _ = handle.slot.current()
            if task_id and handle.killed_for != task_id:
                running[task_id] = handle
        for task_id in self.backend.cancelled_among(list(running)):
            if self._stop_task(running[task_id], task_id):
                log.info("task %s was cancelled; stopped %s", task_id,
                         running[task_id].worker_id)

    def fence(self) -> int:
        """Stop every running task: this daemon lost the database for longer than the
        lease, so other daemons may already run them. Their workers are killed and
        replaced; the replacements claim again once the database answers."""
        stopped = 0
        for handle in list(self.workers.values()):
            task_id, _ = handle.slot.current()
            if task_id and handle.killed_for != task_id and self._stop_task(handle, task_id):
                stopped += 1
                logs.task_event("fenced", task_id, None, None, handle.worker_id, None,
                                reason="database unreachable for longer than the lease")
        return stopped

    # -- reporting ---------------------------------------------------------
    def stats(self) -> list[dict]:
        """pid, state, current task, CPU % and RSS of every worker."""
        rows = []
        for handle in list(self.workers.values()):
            cpu = rss = None
            if handle.ps is not None:
                try:
                    cpu = handle.ps.cpu_percent(None)
                    rss = handle.ps.memory_info().rss
                except psutil.Error:
                    pass  # exited between the listing and the probe
            rows.append({"id": handle.worker_id, "pid": handle.process.pid, "state": handle.state,
                         "task_id": handle.slot.current()[0], "cpu_percent": cpu,
                         "rss_bytes": rss, "started_at": handle.started_at})
        return rows

    def heartbeat(self) -> None:
        """Publish worker rows and extend the leases of their tasks."""
        stats = self.stats()
        host = host_name()
        self.backend.upsert_workers([
            WorkerRow(s["id"], host, s["pid"], s["state"], s["task_id"], s["cpu_percent"],
                      s["rss_bytes"], s["started_at"]) for s in stats])
        self.backend.renew_leases([s["id"] for s in stats], self.lease_s)

    def worker_ids(self) -> set[str]:
        with self._lock:
            return set(self.workers)

    # -- shutdown ----------------------------------------------------------
    def stop_claiming(self) -> None:
        """Ask every worker to claim nothing more (running tasks go on); no respawns."""
        with self._lock:
            self._closing = True
            handles = list(self.workers.values())
        for handle in handles:
            handle.slot.request_stop()

    def stop(self, grace_s: float) -> None:
        """Stop claiming, let running tasks finish within ``grace_s``, then
        kill what is left and put its tasks back in the queue."""
        self.stop_claiming()
        with self._lock:
            handles = list(self.workers.values())
        deadline = time.monotonic() + grace_s
        for handle in handles:
            handle.process.join(max(0.0, deadline - time.monotonic()))
        for handle in handles:
            if handle.process.is_alive():
                log.warning("worker %s did not finish within %.0fs; killing it",
                            handle.worker_id, grace_s)
                handle.process.kill()
                handle.process.join(5)
            # Nothing here counts as a failed attempt: the task was interrupted, not broken.
            # With the database away they are rescued by the other daemons' lease checks.
            best_effort(partial(self.backend.requeue_worker, handle.worker_id, None, "", None),
                        f"giving back the tasks of worker {handle.worker_id}", log)
        if self._monitor is not None:
            self._monitor.join(2)
        best_effort(lambda: self.backend.remove_workers([h.worker_id for h in handles]),
                    "removing the worker rows", log)
        self.workers.clear()
        self.limits.close()



def _log_task(event: str, backend: Backend, task_id: int, worker_id: str, **extra) -> None:
    """A task event for a rare path (rescue), reading the task's fields first."""
    if not logs.tasks_log.isEnabledFor(logs.EVENT_LEVELS[event]):
        return
    task = backend.get(task_id) or {}
    logs.task_event(event, task_id, task.get("name"), task.get("queue"), worker_id,
                    task.get("attempts"), **extra)
