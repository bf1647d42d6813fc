"""The watch host: every folder trigger of this daemon, kept in step with the
settings file while it runs.

It runs as threads in the web server's arbiter (started and stopped by the
server hooks). Each ``watch:`` entry, plus the entries plugins contribute, gets
a :class:`FolderWatcher`. Entries are live: the host re-reads the settings file
when it changes and starts, restarts or stops watchers to match. A folder that
is missing or unreadable, or an entry naming an unknown task, is reported (log,
the ``watch_status`` state behind ``GET /api/settings`` and the pages) and
retried; it never stops the other entries.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from hopper.app import registry
from hopper.app import settings as settings_mod
from hopper.app.backends import connection_lost
from hopper.app.defaults import WATCH_RESCAN_INTERVAL_S
from hopper.app.identity import host_name
from hopper.app.outage import Outage
from hopper.app.published import WATCH_STATUS_PREFIX
from hopper.app.watch.entries import WatchEntry, entries_from
from hopper.app.watch.folder import FolderMissing, FolderWatcher
from hopper.app.watch.stats import EntryStats
from hopper.app.watch.store import WatchStore

log = logging.getLogger("hopper.watch")

TICK_S = 0.1             # how often settled files and due events are checked
RETRY_S = 2.0            # a failed entry (missing folder) is tried again this often
PUBLISH_S = 2.0          # a changed status is published at most this often
REFRESH_S = 30.0         # an unchanged one this often (its age says the host is alive)
QUIET_PRUNE_S = 60.0

_DB_LOCK = threading.Lock()
os.register_at_fork(before=_DB_LOCK.acquire, after_in_parent=_DB_LOCK.release,
                    after_in_child=_DB_LOCK.release)


def _default_enqueue(requests: list[dict]) -> list[int]:
    from hopper.app import queue

    return queue.enqueue_many(requests)


class _Slot:
    """One entry's watcher and its state."""

    def __init__(self, entry: WatchEntry):
        self.entry = entry
        self.watcher: FolderWatcher | None = None
        self.state = "error" if entry.error else "starting"
        self.error: str | None = entry.error
        self.stats = EntryStats()
        self.next_try = 0.0
        self.next_rescan = 0.0


class WatchHost:
    """Runs the watchers of the ``watch:`` entries of ``settings``."""

    def __init__(self, settings: settings_mod.Settings, backend):
        self.settings = settings
        self.store = WatchStore(backend)
        self.backend = backend
        self.slots: dict[WatchEntry, _Slot] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._settings_mtime = self._mtime()
        self._status_key = f"{WATCH_STATUS_PREFIX}{host_name()}:{os.getpid()}"
        self._last_publish = 0.0
        self._published: list[dict] | None = None
        self._last_quiet_prune = 0.0
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Start every entry's watcher and the host's thread."""
        self.apply(self.settings)
        self._thread = threading.Thread(target=self._loop, name="watch-host", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop every watcher; forget the published status."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for slot in self.slots.values():
                if slot.watcher is not None:
                    slot.watcher.stop()
            self.slots.clear()
        if not self._published:
            return
        try:
            with _DB_LOCK:
                self.backend.put_state(self._status_key, None)
        except Exception:  # the database may be down at shutdown; the status just ages out
            log.exception("could not clear the watch status")

    # -- entries -----------------------------------------------------------
    def apply(self, settings: settings_mod.Settings) -> None:
        """Make the running watchers match ``settings``: unchanged entries keep running."""
        self.settings = settings
        wanted = entries_from(settings)
        with self._lock:
            for entry in [e for e in self.slots if e not in wanted]:
                slot = self.slots.pop(entry)
                if slot.watcher is not None:
                    slot.watcher.stop()
                log.info("stopped watching %s (%s)", entry.path, entry.task)
            for entry in wanted:
                if entry not in self.slots:
                    self.slots[entry] = _Slot(entry)
            for slot in self.slots.values():
                if slot.watcher is None and slot.entry.error is None:
                    self._try_start(slot)
                elif slot.entry.error:
                    log.error("watch entry not used: %s", slot.entry.error)
        self.publish(force=True)

    def _unknown_tasks(self, entry: WatchEntry) -> list[str]:
        out = []
        for name in (entry.task, entry.on_moved, entry.on_deleted):
            if name is None:
                continue
            try:
                registry.get(name)
            except registry.UnknownTask:
                out.append(name)
        return out

    def _try_start(self, slot: _Slot) -> None:
        entry = slot.entry
        slot.next_try = time.monotonic() + RETRY_S
        unknown = self._unknown_tasks(entry)
        if unknown:
            slot.state, slot.error = "error", f"unknown task name(s): {', '.join(unknown)}"
            log.error("watch %s: %s", entry.path, slot.error)
            return
        watcher = FolderWatcher(entry, self.store, _default_enqueue, slot.stats)
        try:
            watcher.start()
        except FolderMissing as exc:
            if slot.error != str(exc):
                log.error("watch %s: %s; retrying every %.0fs", entry.path, exc, RETRY_S)
            slot.state, slot.error = "error", str(exc)
            return
        slot.watcher, slot.state, slot.error = watcher, watcher.mode or "watching", None
        slot.next_rescan = 0.0
        log.info("watching %s for %s (%s, settle time %.2fs)", entry.path, entry.task,
                 watcher.mode, entry.settle_time)

    # -- the loop ----------------------------------------------------------
    def _loop(self) -> None:
        outage = Outage("folder watcher", log)
        delay = TICK_S
        while not self._stopping.wait(delay):
            delay = TICK_S
            try:
                if outage.lost:
                    with _DB_LOCK:
                        self.backend.ping()  # back? (a tick may make no database call)
                    outage.succeeded()
                self.tick()
            except Exception as exc:  # keep watching through a transient (database) error
                if connection_lost(exc):
                    # One warning when lost and one when back, not a traceback per tick;
                    # files stay pending and are enqueued once it is back.
                    delay = outage.failed(exc)
                else:
                    log.exception("watch host error")

    def tick(self) -> None:
        """One round: settings changes, retries, rescans, settled files, status."""
        now = time.monotonic()
        self._reload_if_changed()
        with self._lock:
            slots = list(self.slots.values())
        for slot in slots:
            if slot.entry.error:
                continue
            if slot.watcher is None:
                if now >= slot.next_try:
                    with self._lock:
                        self._try_start(slot)
                continue
            if not slot.watcher.alive():
                slot.watcher.stop()
                slot.watcher, slot.state = None, "error"
                slot.error = f"{slot.entry.path} is gone or cannot be read"
                log.error("watch %s: %s; retrying", slot.entry.path, slot.error)
                continue
            if now >= slot.next_rescan:
                interval = rescan_interval(self.settings)
                slot.next_rescan = now + max(interval, 1.0) if interval > 0 else float("inf")
                with _DB_LOCK:
                    result = slot.watcher.rescan()
                if result["pending"] or result["vanished"]:
                    log.info("watch %s: rescan found %d new or changed, %d vanished",
                             slot.entry.path, result["pending"], result["vanished"])
            with _DB_LOCK:
                slot.watcher.check(now)
        if time.time() - self._last_quiet_prune > QUIET_PRUNE_S:
            self._last_quiet_prune = time.time()
            with _DB_LOCK:
                self.store.prune_quiet()
        self.publish()

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.settings.path).st_mtime_ns
        except OSError:
            return None

    def _reload_if_changed(self) -> None:
        mtime = self._mtime()
        if mtime == self._settings_mtime:
            return
        self._settings_mtime = mtime
        try:
            new = settings_mod.reload(self.settings)
        except settings_mod.SettingsError as exc:
            log.error("watch entries unchanged: the settings file is refused: %s", exc)
            return
        self.apply(new)

    # -- status ------------------------------------------------------------
    def status(self) -> list[dict]:
        """Every entry with its state (watching, polling, error), error and last hour."""
        with self._lock:
            slots = list(self.slots.values())
        return [{**slot.entry.describe(), "state": slot.state, "error": slot.error,
                 "pending": slot.watcher.pending() if slot.watcher else 0,
                 "last_hour": slot.stats.last_hour()} for slot in slots]

    def publish(self, force: bool = False) -> None:
        """Write the status where the web workers read it: when it changed (at most every
        PUBLISH_S unless forced) and every REFRESH_S; never while there is nothing to
        show, so a daemon without watched folders adds no database writes."""
        age = time.monotonic() - self._last_publish
        if not force and age < PUBLISH_S:
            return
        entries = self.status()
        if not entries and not self._published:
            return
        if entries == self._published and age < REFRESH_S:
            return
        self._last_publish = time.monotonic()
        with _DB_LOCK:
            self.backend.put_state(self._status_key, {"host": host_name(), "pid": os.getpid(),
                                                      "at": time.time(), "entries": entries})
        self._published = entries


def rescan_interval(settings) -> float:
    """Seconds between catch-up rescans: a plugin's ``rescan_interval`` setting when one
    gives it (the library's ``library.rescan_interval``), else WATCH_RESCAN_INTERVAL_S."""
    return getattr(settings, "rescan_interval", WATCH_RESCAN_INTERVAL_S)


def read_status(backend, max_age_s: float = 2 * REFRESH_S + 5) -> list[dict]:
    """Every live host's entries as published, newest hosts first."""
    import json

    rows = backend.fetch("SELECT key, value FROM daemon_state WHERE substr(key, 1, ?) = ?",
                         (len(WATCH_STATUS_PREFIX), WATCH_STATUS_PREFIX))
    out = []
    for _, value in rows:
        data = json.loads(value) if value else None
        if not data or time.time() - data.get("at", 0) > max_age_s:
            continue
        for entry in data["entries"]:
            out.append({**entry, "host": data["host"]})
    return out
