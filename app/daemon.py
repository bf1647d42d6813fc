"""The supervisor: owns signals, the migration, the worker pool, the settings
watcher and the housekeeping thread (heartbeats, orphan rescue, retention,
schedules), and the web server process."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from hopper.app import bundled, queue, reaper, settings as settings_mod
from hopper.app.defaults import HEARTBEAT_S, PRUNE_EVERY_S
from hopper.app.identity import host_name, new_daemon_id
from hopper.app.scheduler import Scheduler, schedules_for
from hopper.app.settings_watcher import SettingsWatcher
from hopper.worker.pool import WorkerPool

log = logging.getLogger("hopper")


class Daemon:
    """One supervisor process. ``web=False`` runs workers only."""

    def __init__(self, settings: settings_mod.Settings, web: bool = True):
        self.settings = settings
        self.web_enabled = web
        self.stopping = threading.Event()
        self.daemon_id = new_daemon_id()
        self.started_at = time.time()
        self.client = queue.configure(settings, modules=bundled.TASK_MODULES)
        self.backend = self.client.backend
        self.pool = WorkerPool(settings, self.backend, self.daemon_id, bundled.TASK_MODULES)
        self.scheduler = Scheduler(self.backend, schedules_for(settings))
        self.watcher = SettingsWatcher(settings.path, self.apply_settings, self.reject_settings)
        self.web = None
        self._housekeeper = threading.Thread(target=self._housekeeping, name="housekeeping",
                                             daemon=True)
        self._scheduler_thread = threading.Thread(target=self._scheduling, name="scheduler",
                                                  daemon=True)

    # -- lifecycle ---------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._beat()
        rescued = reaper.rescue_orphans(self.backend, set(), self.daemon_id)
        if rescued:
            log.warning("re-queued %d task(s) left running by a previous run", rescued)
        self.backend.put_state("settings_error", None)
        self.pool.start(self.settings.workers)
        self.pool.heartbeat()
        self.watcher.start()
        self._housekeeper.start()
        self._scheduler_thread.start()
        if self.web_enabled:
            from hopper.app.web.server import WebServer

            self.web = WebServer(self.settings)
            self.web.start()
        log.info("hopper running: %d worker(s), database %s%s", self.settings.workers,
                 self.settings.database,
                 f", http://{self.settings.bind}" if self.web_enabled else "")
        while not self.stopping.wait(0.5):
            if self.web is not None and not self.web.alive():
                log.error("the web server exited; restarting it")
                self.web.start()
        return self.shutdown()

    def _on_signal(self, signum, _frame) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        self.stopping.set()

    def shutdown(self) -> int:
        self.watcher.stop()
        if self.web is not None:
            self.web.stop()
        self.pool.stop(self.settings.shutdown_grace)
        self._housekeeper.join(5)
        self._scheduler_thread.join(5)
        self.backend.remove_daemon(self.daemon_id)
        log.info("hopper stopped")
        return 0

    # -- live settings -----------------------------------------------------
    def apply_settings(self, new: settings_mod.Settings) -> None:
        """Apply a changed settings file: worker count and schedules, live."""
        old, self.settings = self.settings, new
        self.pool.settings = new  # workers started from now on get the new settings
        if new.workers != self.pool.target:
            self.pool.scale(new.workers)
            self.pool.heartbeat()  # publish the new pool now, not at the next beat
        if schedules_for(new) != schedules_for(old):
            self.scheduler.update(schedules_for(new))
        self.backend.put_state("settings_error", None)
        restart_only = [k for k in ("database", "bind", "threads", "token") if
                        getattr(new, k) != getattr(old, k)]
        if restart_only:
            log.warning("changed %s take(s) effect at the next start", ", ".join(restart_only))

    def reject_settings(self, message: str) -> None:
        self.backend.put_state("settings_error", {"error": message, "at": time.time()})

    # -- housekeeping ------------------------------------------------------
    def _beat(self) -> None:
        self.backend.beat_daemon(self.daemon_id, host_name(), os.getpid(), self.started_at)

    def _housekeeping(self) -> None:
        last_prune = 0.0
        while not self.stopping.wait(HEARTBEAT_S):
            try:
                self._beat()
                self.pool.heartbeat()
                reaper.rescue_orphans(self.backend, self.pool.worker_ids(), self.daemon_id)
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    reaper.prune(self.backend, self.settings.retention_succeeded,
                                 self.settings.retention_failed)
            except Exception:  # keep supervising through a transient DB error
                log.exception("housekeeping error")

    def _scheduling(self) -> None:
        """Wake at each slot (at least every second) and enqueue what is due."""
        while not self.stopping.is_set():
            try:
                self.scheduler.tick()
                wait = self.scheduler.wait_s()
            except Exception:  # keep scheduling through a transient DB error
                log.exception("scheduler error")
                wait = HEARTBEAT_S
            self.stopping.wait(wait + 0.001)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(config: str | Path | None, web: bool = True) -> int:
    """``python run.py serve``: load settings (refusing a bad file) and run."""
    configure_logging()
    try:
        settings = settings_mod.load(config)
    except settings_mod.SettingsError as exc:
        log.error("cannot start: %s", exc)
        return 2
    return Daemon(settings, web=web).run()
