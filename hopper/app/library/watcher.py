"""The inbox watcher: file events → (once stable) ``library.ingest`` tasks.

Runs as threads inside Gunicorn's arbiter, started and stopped by the server
hooks. A file is enqueued only once its size and mtime have not changed for
``library.settle_time`` (a file still being copied keeps changing), with a
unique key of path, size and mtime, so repeated events and a concurrent scan
add nothing. At start it enqueues a ``library.scan`` for what was dropped while
the daemon was down.

Events Hopper's own moves cause are ignored: removing an ingested file from the
inbox raises delete and attribute events (neither is input), and temp files,
lock files and a library or quarantine folder nested in the inbox are skipped
by path. An event for a file that is gone by the time it is checked is dropped.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from hopper.app.backends import connection_lost
from hopper.app.library.inbox import (
    excluded_folders,
    ignored,
    inbox_rules,
    ingest_request,
    walk,
)
from hopper.app.outage import Outage
from hopper.app.settings import Settings
from hopper.app.watch.complete import open_for_writing

log = logging.getLogger("hopper.library.watcher")

INPUT_EVENTS = ("created", "modified", "moved", "closed")
POLL_INTERVAL_S = 1.0
RETRY_ENQUEUE_S = 2.0
ENQUEUE_CHUNK = 500

# The watcher lives in Gunicorn's arbiter, which forks web workers. Holding this
# lock around every database call, and taking it before a fork, means a child is
# never forked while a watcher thread is half-way through a SQLite call.
_DB_LOCK = threading.Lock()
os.register_at_fork(before=_DB_LOCK.acquire, after_in_parent=_DB_LOCK.release,
                    after_in_child=_DB_LOCK.release)


def _default_enqueue(requests: list[dict]) -> list[int]:
    from hopper.app import queue

    queue.client()  # loads the task registry; enqueue validates names before doing so
    return queue.enqueue_many(requests)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "InboxWatcher"):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in INPUT_EVENTS:
            self.watcher.ignored_events += 1
            return
        if event.is_directory and event.event_type not in ("created", "moved"):
            # A folder is "modified" whenever an entry is added or removed, e.g. by every
            # ingest unlinking its source: its files raise their own events.
            self.watcher.ignored_events += 1
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        if not path:
            return  # a move whose destination is outside the watched tree: not input
        self.watcher.saw(Path(os.fsdecode(path)), event.is_directory)


class InboxWatcher:
    """Watches ``settings.inbox`` recursively and enqueues settled files."""

    def __init__(self, settings: Settings,
                 enqueue: Callable[[list[dict]], list[int]] | None = None,
                 polling: bool | None = None):
        self.settings = settings
        self.inbox = settings.inbox
        self.settle = settings.settle_time
        self.excluded = excluded_folders(settings)
        self.rules = inbox_rules(settings)
        self._enqueue = enqueue or _default_enqueue
        self.force_polling = bool(settings.library_polling or os.environ.get(
            "HOPPER_WATCH_POLLING")) if polling is None else polling
        self.mode: str | None = None          # "native" or "polling" once started
        self.enqueued = 0
        self.ignored_events = 0
        self._pending: dict[Path, tuple[int, int, float]] = {}  # path → size, mtime_ns, since
        self._lock = threading.Lock()
        self._outage = Outage("inbox watcher", log)
        self._stopping = threading.Event()
        self._observer = None
        self._checker: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self, startup_scan: bool = True) -> None:
        """Start watching; then enqueue a ``library.scan`` for files already there."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._observer = self._start_observer()
        self._checker = threading.Thread(target=self._check_loop, name="inbox-settle",
                                         daemon=True)
        self._checker.start()
        if startup_scan:
            try:
                with _DB_LOCK:
                    self._enqueue([{"name": "library.scan", "args": {}}])
            except Exception:  # keep watching; the recurring library.scan catches up later
                log.exception("could not enqueue the startup scan of %s", self.inbox)
        log.info("watching %s (%s events, settle time %.2fs)", self.inbox, self.mode, self.settle)

    def stop(self) -> None:
        """Stop the observer and the settle thread (files pending are found by the next scan)."""
        self._stopping.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
        if self._checker is not None:
            self._checker.join(5)

    def _start_observer(self):
        handler = _Handler(self)
        if not self.force_polling:
            observer = Observer()
            try:
                observer.schedule(handler, str(self.inbox), recursive=True)
                observer.start()
                self.mode = "native"
                return observer
            except OSError as exc:  # e.g. inotify instance or watch limits reached
                log.warning("native file events unavailable (%s); polling the inbox instead", exc)
        observer = PollingObserver(timeout=POLL_INTERVAL_S)
        observer.schedule(handler, str(self.inbox), recursive=True)
        observer.start()
        self.mode = "polling"
        return observer

    # -- events ------------------------------------------------------------
    def saw(self, path: Path, is_directory: bool = False) -> None:
        """Note activity on ``path``; a folder's files are noted one by one."""
        if ignored(path, self.excluded) or self.rules.ignores(path, is_directory):
            self.ignored_events += 1  # junk (a sync marker, a download in progress): left alone
            return
        if is_directory:
            # A folder moved in brings files that raise no events of their own.
            for child, _ in walk(path, self.excluded, self.rules):
                self.saw(child)
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return  # gone already (moved on by us or by the user)
        signature = (st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._pending.get(path)
            if known is None or known[:2] != signature:
                self._pending[path] = (*signature, time.monotonic())

    def pending(self) -> int:
        """How many files are waiting to settle."""
        with self._lock:
            return len(self._pending)

    # -- settling ----------------------------------------------------------
    def _check_loop(self) -> None:
        interval = max(0.05, min(0.25, self.settle / 4))
        while not self._stopping.wait(interval):
            try:
                self.check()
            except Exception:  # keep watching through a transient error; files stay pending
                log.exception("inbox watcher error")

    def check(self, now: float | None = None) -> int:
        """Enqueue every pending file that has been unchanged for the settle time."""
        now = time.monotonic() if now is None else now
        with self._lock:
            items = list(self._pending.items())
        ready = []
        for path, (size, mtime_ns, since) in items:
            if now - since < self.settle:
                continue  # not due yet; a change meanwhile raises an event that resets it
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                self._forget(path)
                continue
            if stat.S_ISDIR(st.st_mode):
                self._forget(path)
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or (
                    self.mode != "polling" and open_for_writing(path)):
                # Changed, or a writer still holds it open (a copy paused mid-way): wait
                # another settle time. On a network share only settle time can tell.
                with self._lock:
                    self._pending[path] = (st.st_size, st.st_mtime_ns, now)
            else:
                ready.append((path, st))
        done = 0
        # Short transactions: a drop of thousands of files must not hold the database's
        # write lock for long while workers are finishing and claiming tasks.
        for start in range(0, len(ready), ENQUEUE_CHUNK):
            chunk = ready[start:start + ENQUEUE_CHUNK]
            try:
                with _DB_LOCK:
                    self._enqueue([ingest_request(self.inbox, path, st) for path, st in chunk])
                self._outage.succeeded()
            except Exception as exc:  # database busy or down: the files stay pending, retried
                if connection_lost(exc):
                    self._outage.failed(exc)  # one warning per outage, not per retry
                else:
                    log.exception("could not enqueue %d settled file(s); retrying",
                                  len(ready) - start)
                with self._lock:
                    for path, st in ready[start:]:
                        self._pending[path] = (st.st_size, st.st_mtime_ns, now + RETRY_ENQUEUE_S)
                break
            for path, st in chunk:
                self._forget(path, (st.st_size, st.st_mtime_ns))
            done += len(chunk)
        self.enqueued += done
        return done

    def _forget(self, path: Path, signature: tuple[int, int] | None = None) -> None:
        with self._lock:
            known = self._pending.get(path)
            # A change noted while we enqueued keeps the path pending under its new state.
            if known is not None and (signature is None or known[:2] == signature):
                del self._pending[path]
