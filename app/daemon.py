"""The supervisor: owns signals, the migration, the worker pool, the settings
watcher and the housekeeping thread (heartbeats, orphan rescue, retention,
schedules), and the web server process."""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from hopper.app import queue, reaper, settings as settings_mod
from hopper.app.scheduler import Scheduler
from hopper.app.settings_watcher import SettingsWatcher
from hopper.worker.pool import WorkerPool

log = logging.getLogger("hopper")

HEARTBEAT_S = 1.0
PRUNE_EVERY_S = 60.0


class Daemon:
    """One supervisor process. ``web=False`` runs workers only."""

    def __init__(self, settings: settings_mod.Settings, web: bool = True):
        self.settings = settings
        self.web_enabled = web
        self.stopping = threading.Event()
        self.client = queue.configure(settings)
        self.backend = self.client.backend
        self.pool = WorkerPool(settings, self.backend)
        self.scheduler = Scheduler(schedules_for(settings))
        self.watcher = SettingsWatcher(settings.path, self.apply_settings, self.reject_settings)
        self.web = None
        self._housekeeper = threading.Thread(target=self._housekeeping, name="housekeeping",
                                             daemon=True)

    # -- lifecycle ---------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        rescued = reaper.rescue_orphans(self.backend, set())
        if rescued:
            log.warning("re-queued %d task(s) left running by a previous run", rescued)
        self.backend.put_state("settings_error", None)
        self.pool.start(self.settings.workers)
        self.pool.heartbeat()
        self.watcher.start()
        self._housekeeper.start()
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
    def _housekeeping(self) -> None:
        last_prune = 0.0
        while not self.stopping.wait(HEARTBEAT_S):
            try:
                self.pool.heartbeat()
                reaper.rescue_orphans(self.backend, self.pool.worker_ids())
                self.scheduler.tick()
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    reaper.prune(self.backend, self.settings.retention_succeeded,
                                 self.settings.retention_failed)
            except Exception:  # keep supervising through a transient DB error
                log.exception("housekeeping error")


def schedules_for(settings: settings_mod.Settings) -> tuple[dict, ...]:
    """The user's schedules plus the library's catch-up scan every rescan_interval (0: off)."""
    if settings.rescan_interval <= 0:
        return settings.schedules
    return (*settings.schedules, {"name": "library.scan", "every": settings.rescan_interval})


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
    try:
        daemon = Daemon(settings, web=web)
    except ImportError as exc:  # a tasks.modules entry that cannot be imported
        log.error("cannot start: %s", exc)
        return 2
    return daemon.run()
