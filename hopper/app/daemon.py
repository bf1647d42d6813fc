"""The supervisor: owns signals, the migration, the worker pool, the settings
watcher and the housekeeping thread (heartbeats, orphan rescue, retention,
schedules), and the web server process.

Signals: SIGTERM and SIGINT stop (claiming first, then the web server, then the
running tasks, all within ``shutdown_grace``); SIGHUP reloads settings.yaml as a
change seen by the watcher would.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from hopper.app import logs, plugins, queue, reaper, registry
from hopper.app import settings as settings_mod
from hopper.app.backends import connection_lost, database_errors, transient
from hopper.app.bind import BindError, check_bind
from hopper.app.defaults import (
    DAEMON_STALE_S,
    FENCE_CHECK_S,
    FENCE_MARGIN_S,
    HEARTBEAT_S,
    PRUNE_EVERY_S,
    SUPERVISE_TICK_S,
    WEB_EXITS_AT_ONCE,
    WEB_EXITS_AT_ONCE_S,
    WEB_RESTART_FIRST_S,
    WEB_RESTART_MAX_S,
    WEB_STABLE_S,
)
from hopper.app.identity import host_name, new_daemon_id
from hopper.app.outage import Outage, best_effort
from hopper.app.published import FLASK_APP_ERROR_KEY, SETTINGS_ERROR_KEY
from hopper.app.queue_names import InvalidQueueName, check_claimable
from hopper.app.scheduler import Scheduler, schedules_for
from hopper.app.settings_watcher import SettingsWatcher
from hopper.app.web_process import WebServer
from hopper.worker.limits import Routing
from hopper.worker.pool import WorkerPool

log = logging.getLogger("hopper")


class Daemon:
    """One supervisor process. ``web=False`` runs workers only (``run.py worker``);
    ``queues`` limits the queues its workers claim (``--queues``)."""

    def __init__(self, settings: settings_mod.Settings, web: bool = True,
                 queues: frozenset[str] | None = None):
        check_claimable(queues, settings.queue_limits, settings.path)
        self.settings = settings
        self.web_enabled = web
        self.stopping = threading.Event()
        self.daemon_id = new_daemon_id()
        self.started_at = time.time()
        self.client = queue.configure(settings, modules=plugins.task_modules())
        self.backend = self.client.backend
        self.routing = Routing(only=queues, serve=web)
        self.pool = WorkerPool(settings, self.backend, self.routing, self.daemon_id,
                               plugins.task_modules())
        self.scheduler = Scheduler(self.backend, schedules_for(settings))
        self.watcher = SettingsWatcher(settings.path, self.apply_settings, self.reject_settings)
        self.web: WebServer | None = None
        self._reload_requested = threading.Event()
        self._web_delay = 0.0
        self._web_started = 0.0
        self._web_restart_at: float | None = None
        self._web_quick_exits = 0
        self.exit_code = 0
        self._settings_lock = threading.Lock()  # the watcher's thread and SIGHUP both apply
        self._housekeeper = threading.Thread(target=self._housekeeping, name="housekeeping",
                                             daemon=True)
        self._scheduler_thread = threading.Thread(target=self._scheduling, name="scheduler",
                                                  daemon=True)
        # Self-fencing: when the leases were last renewed (time.monotonic()), watched by a
        # thread that never waits on the database itself.
        self._renewed_at = time.monotonic()
        self._fencer = threading.Thread(target=self._fencing, name="fencing", daemon=True)

    # -- lifecycle ---------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hangup)
        self._beat()
        rescued = reaper.rescue_orphans(self.backend, set(), self.daemon_id)
        if rescued:
            log.warning("re-queued %d task(s) left running by a previous run", rescued)
        self.backend.put_state(SETTINGS_ERROR_KEY, None)
        self.backend.sync_rate_limits(self.settings.rate_limits)
        self.backend.put_state(FLASK_APP_ERROR_KEY, None)  # this run's workers report afresh
        self.pool.start(self.settings.workers)
        self.pool.heartbeat()
        self.watcher.start()
        self._renewed_at = time.monotonic()
        self._housekeeper.start()
        self._scheduler_thread.start()
        self._fencer.start()
        if self.web_enabled:
            self.web = WebServer(self.settings)
            self._start_web()
        log.info("hopper running: %d worker(s), database %s%s, queues: %s",
                 self.settings.workers, self.settings.database,
                 f", http://{self.settings.bind}" if self.web_enabled else "",
                 describe_routing(self.routing))
        while not self.stopping.wait(SUPERVISE_TICK_S):
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                log.info("SIGHUP: reloading %s", self.settings.path)
                self.watcher.reload()
            if self.web is not None:
                self._supervise_web()
        return self.shutdown()

    def _on_signal(self, signum, _frame) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        self.stopping.set()

    def _on_hangup(self, _signum, _frame) -> None:
        # The main loop reloads: a signal handler must not take the settings lock.
        self._reload_requested.set()

    def _start_web(self) -> None:
        if self.web is None:
            return
        self.web.settings = self.settings  # always the last good settings
        self.web.start()
        self._web_started = time.monotonic()

    def _supervise_web(self) -> None:
        """Restart an exited web server, with a growing delay while it keeps exiting."""
        now = time.monotonic()
        if self.web is None or self.web.alive():
            return
        if self._web_restart_at is None:
            uptime = now - self._web_started
            code = self.web.process.returncode if self.web.process else None
            # Exiting at once with an error of its own (not killed by a signal): a busy
            # address, an app that cannot load. Restarting cannot help after a few of those.
            at_once = uptime < WEB_EXITS_AT_ONCE_S and (code or 0) > 0
            self._web_quick_exits = self._web_quick_exits + 1 if at_once else 0
            if self._web_quick_exits >= WEB_EXITS_AT_ONCE:
                self._give_up_web(uptime)
                return
            stable = uptime >= WEB_STABLE_S or not self._web_delay
            self._web_delay = WEB_RESTART_FIRST_S if stable else min(
                WEB_RESTART_MAX_S, self._web_delay * 2)
            self._web_restart_at = now + self._web_delay
            log.error("the web server exited with code %s after %.1fs; restarting it in %.1fs",
                      code, uptime, self._web_delay,
                      extra={"fields": {"event": "web_exited", "restart_in": self._web_delay,
                                        "uptime": round(uptime, 3)}})
        elif now >= self._web_restart_at:
            self._web_restart_at = None
            self._start_web()

    def _give_up_web(self, uptime: float) -> None:
        """The web server cannot run here: stop the daemon with the reason, not loop."""
        code = self.web.process.returncode if self.web and self.web.process else None
        try:
            check_bind(self.settings.bind)
            why = (f"the web server exited at once {self._web_quick_exits} times in a row"
                   f" (last: code {code} after {uptime:.1f}s);"
                   " its log above says why")
        except BindError as exc:
            why = str(exc)
        log.error("cannot serve: %s; stopping", why,
                  extra={"fields": {"event": "web_gave_up"}})
        self.exit_code = 2
        self.stopping.set()

    def shutdown(self) -> int:
        """Stop claiming, then the web server, then wait for running tasks, all
        within shutdown_grace; tasks still running then are put back in the queue."""
        grace = self.settings.shutdown_grace
        deadline = time.monotonic() + grace
        self.pool.stop_claiming()
        log.info("stopping: workers claim no more tasks; %.1fs for the rest", grace)
        self.watcher.stop()
        if self.web is not None:
            self.web.stop(deadline)
            log.info("stopping: web server stopped")
        self.pool.stop(max(0.0, deadline - time.monotonic()))
        self._housekeeper.join(HEARTBEAT_S * 2)
        self._scheduler_thread.join(HEARTBEAT_S * 2)
        best_effort(lambda: self.backend.remove_daemon(self.daemon_id),
                    "removing this daemon's row", log)
        log.info("hopper stopped")
        return self.exit_code

    # -- live settings -----------------------------------------------------
    def apply_settings(self, new: settings_mod.Settings) -> None:
        """Apply a changed settings file: worker count, queue limits and schedules, live."""
        with self._settings_lock:
            self._apply(new)

    def _apply(self, new: settings_mod.Settings) -> None:
        old, self.settings = self.settings, new
        self.pool.settings = new  # workers started from now on get the new settings
        if new.queue_limits != old.queue_limits:
            self.pool.set_queue_limits(new.queue_limits)
            log.info("queue concurrency now %s", new.queue_limits or "unlimited")
        if new.flask_app != old.flask_app:
            log.info("tasks.flask_app is now %r: it takes effect at the next worker start",
                     new.flask_app)
            self.backend.put_state(FLASK_APP_ERROR_KEY, None)
            self.pool.reset_backoff()
        if new.workers != self.pool.target:
            self.pool.scale(new.workers)
            self.pool.heartbeat()  # publish the new pool now, not at the next beat
        if schedules_for(new) != schedules_for(old):
            self.scheduler.update(schedules_for(new))
        if new.rate_limits != old.rate_limits:
            best_effort(lambda: self.backend.sync_rate_limits(new.rate_limits),
                        "syncing the rate limits", log)
            log.info("rate limits now %s", {k: str(r) for k, r in new.rate_limits.items()})
        best_effort(lambda: self.backend.put_state(SETTINGS_ERROR_KEY, None),
                    "clearing the settings error", log)
        restart_only = [k for k in ("database", "bind", "threads", "token") if
                        getattr(new, k) != getattr(old, k)]
        if restart_only:
            log.warning("changed %s take(s) effect at the next start", ", ".join(restart_only))

    def reject_settings(self, message: str) -> None:
        best_effort(lambda: self.backend.put_state(SETTINGS_ERROR_KEY,
                                                   {"error": message, "at": time.time()}),
                    "publishing the settings error", log)

    # -- housekeeping ------------------------------------------------------
    def _beat(self) -> None:
        self.backend.beat_daemon(self.daemon_id, host_name(), os.getpid(), self.started_at)

    def _housekeeping(self) -> None:
        last_prune = 0.0
        outage = Outage("housekeeping", log)
        wait = HEARTBEAT_S
        while not self.stopping.wait(wait):
            wait = HEARTBEAT_S
            try:
                self._beat()
                self.pool.heartbeat()
                self._renewed_at = time.monotonic()
                outage.succeeded()
                reaper.rescue_orphans(self.backend, self.pool.worker_ids(), self.daemon_id)
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    reaper.prune(self.backend, self.settings.retention_succeeded,
                                 self.settings.retention_failed)
            except Exception as exc:  # keep supervising through a DB error
                if connection_lost(exc):
                    wait = outage.failed(exc)  # one warning per outage; growing delays
                elif transient(exc):  # a deadlock victim: the next beat runs it again
                    log.warning("housekeeping: the database aborted a heartbeat (%s)",
                                type(exc).__name__)
                else:
                    log.exception("housekeeping error")

    def _fencing(self) -> None:
        """Stop the running tasks while the leases have gone unrenewed for nearly as
        long as other daemons wait before rescuing them (the lease, or the daemon
        liveness window if shorter): they may be run elsewhere from then on."""
        fenced = False
        while not self.stopping.wait(FENCE_CHECK_S):
            limit = fence_after(self.settings.lease)
            silent = time.monotonic() - self._renewed_at
            if silent <= limit:
                if fenced:
                    fenced = False
                    log.warning("leases renewed again: this daemon claims tasks as before")
                continue
            stopped = self.pool.fence()
            if not fenced or stopped:
                log.warning("no lease renewed for %.1fs (limit %.1fs): stopped %d running"
                            " task(s); other daemons rescue them", silent, limit, stopped)
            fenced = True

    def _scheduling(self) -> None:
        """Wake at each slot (at least every second) and enqueue what is due."""
        outage = Outage("scheduler", log)
        while not self.stopping.is_set():
            try:
                self.scheduler.tick()
                wait = self.scheduler.wait_s()
                outage.succeeded()
            except Exception as exc:  # keep scheduling through a DB error
                if connection_lost(exc):
                    wait = outage.failed(exc)
                else:
                    log.exception("scheduler error")
                    wait = HEARTBEAT_S
            self.stopping.wait(wait + 0.001)


def fence_after(lease_s: float) -> float:
    """Seconds without a renewed lease after which a daemon stops its running tasks:
    a heartbeat before other daemons may rescue them (lease expiry, or the daemon's
    row going stale), so its copies stop before the rescued ones start."""
    return max(1.5 * HEARTBEAT_S, min(lease_s, DAEMON_STALE_S) - FENCE_MARGIN_S)


def describe_routing(routing: Routing) -> str:
    """The queues a daemon claims, for its start-up log line."""
    if routing.only is not None:
        return "only " + ", ".join(sorted(routing.only))
    if routing.excluded:
        return "all but " + ", ".join(sorted(routing.excluded)) + " (run by serve)"
    return "all"


def serve(config: str | Path | None, web: bool = True,
          queues: frozenset[str] | None = None) -> int:
    """``python run.py serve`` (or ``worker``, where ``queues`` is ``--queues``): load
    settings (refusing a bad file) and run.

    Exit codes: 0 after a clean stop, 2 for unusable settings or task modules or an
    address the web server cannot have (checked before anything starts), 3 when the
    database cannot be reached.
    """
    logs.configure()
    try:
        settings = settings_mod.load(config)
        if web:
            check_bind(settings.bind)
        daemon = Daemon(settings, web=web, queues=queues)
    except (settings_mod.SettingsError, registry.TaskModuleError, plugins.PluginError,
            BindError, InvalidQueueName) as exc:
        log.error("cannot start: %s", exc)
        return 2
    except database_errors() as exc:
        log.error("cannot start: the database is unavailable: %s", " ".join(str(exc).split()))
        return 3
    return daemon.run()
