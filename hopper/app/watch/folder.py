"""One watched folder: file events → (once complete) the entry's tasks.

A new or changed file is started once it has been unchanged for the entry's
``settle_time`` and no process on this machine holds it open for writing (on a
polling entry, settle time alone decides). Started files are recorded (path,
size, mtime), so a file seen again in the same state starts nothing; a move
inside the folder renames the record and starts ``on_moved``; a delete forgets
it and starts ``on_deleted``. Paths a task marked quiet (``hopper.quiet``,
``hopper.moved``) update the record but start nothing.
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
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from hopper.app.backends import connection_lost
from hopper.app.watch.complete import open_for_writing
from hopper.app.watch.entries import WatchEntry
from hopper.app.watch.stats import EntryStats
from hopper.app.watch.store import WatchStore

log = logging.getLogger("hopper.watch")

POLL_INTERVAL_S = 1.0
# Moves and deletes wait this long before they are acted on, so a task that calls
# hopper.moved() just after its own rename is still heard first.
EVENT_DELAY_S = 0.5
RETRY_ENQUEUE_S = 2.0

Enqueue = Callable[[list[dict]], list[int]]


class FolderMissing(OSError):
    """The entry's folder does not exist, is not a folder, or cannot be read."""


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "FolderWatcher"):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = Path(os.fsdecode(event.src_path))
        if kind == "moved":
            self.watcher.moved(src, Path(os.fsdecode(event.dest_path)), event.is_directory)
        elif kind == "deleted":
            self.watcher.deleted(src)
        elif kind in ("created", "modified", "closed"):
            if event.is_directory and kind != "created":
                return  # a folder's own mtime: its files raise their own events
            self.watcher.saw(src, event.is_directory, new=kind == "created")


class FolderWatcher:
    """Watches one entry's folder; ``check()`` starts what is due."""

    def __init__(self, entry: WatchEntry, store: WatchStore, enqueue: Enqueue,
                 stats: EntryStats | None = None):
        self.entry = entry
        self.folder = entry.path
        self.store = store
        self._enqueue = enqueue
        self.stats = stats or EntryStats()
        self.rules = entry.rules()
        self.mode: str | None = None
        self._pending: dict[Path, tuple[int, int, float]] = {}   # path → size, mtime_ns, since
        self._events: list[tuple[float, str, Path, Path | None]] = []   # due, kind, src, dst
        self._lock = threading.Lock()
        self._observer: BaseObserver | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Start the observer; FolderMissing when the folder cannot be watched."""
        try:
            st = os.stat(self.folder)
            if not stat.S_ISDIR(st.st_mode):
                raise FolderMissing(f"{self.folder} is not a folder")
            os.scandir(self.folder).close()
        except FolderMissing:
            raise
        except OSError as exc:
            raise FolderMissing(f"{self.folder}: {exc.strerror or exc}") from exc
        handler = _Handler(self)
        if not self.entry.polling:
            observer = Observer()
            try:
                observer.schedule(handler, str(self.folder), recursive=self.entry.recursive)
                observer.start()
                self._observer, self.mode = observer, "watching"
                return
            except OSError as exc:  # inotify limits reached: polling still works
                log.warning("native file events unavailable for %s (%s); polling", self.folder, exc)
        observer = PollingObserver(timeout=POLL_INTERVAL_S)
        observer.schedule(handler, str(self.folder), recursive=self.entry.recursive)
        observer.start()
        self._observer, self.mode = observer, "polling"

    def stop(self) -> None:
        """Stop the observer (files still settling are found by the next rescan)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None

    def alive(self) -> bool:
        """False once the folder is gone from under a running observer."""
        return self._observer is not None and self._observer.is_alive() and self.folder.is_dir()

    # -- events ------------------------------------------------------------
    def _rel(self, path: Path) -> str | None:
        try:
            rel = path.relative_to(self.folder).as_posix()
        except ValueError:
            return None
        if rel in ("", "."):
            return None
        if not self.entry.recursive and "/" in rel:
            return None
        return rel

    def saw(self, path: Path, is_directory: bool = False, new: bool = True) -> None:
        """Note activity on ``path``; a folder's files are noted one by one. ``new``: the
        path appeared (an ignored file is counted once, not at each write)."""
        rel = self._rel(path)
        if rel is None:
            return
        if self.rules.ignores(path, is_directory):
            if new:
                self.stats.add("ignored")
            return
        if is_directory:
            for child in self._files_below(path):
                self.saw(child)
            return
        if not self.entry.wants(rel):
            return
        st = _regular_file(path)
        if st is None:
            return
        signature = (st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._pending.get(path)
            if known is None or known[:2] != signature:
                if known is None:
                    self.stats.add("seen")
                self._pending[path] = (*signature, time.monotonic())

    def moved(self, src: Path, dst: Path, is_directory: bool = False) -> None:
        """A rename seen live; acted on after EVENT_DELAY_S."""
        with self._lock:
            self._pending.pop(src, None)
            self._events.append((time.monotonic() + EVENT_DELAY_S, "moved", src, dst))
        _ = is_directory

    def deleted(self, path: Path) -> None:
        """A removal seen live; acted on after ``delete_delay``."""
        with self._lock:
            self._pending.pop(path, None)
            self._events.append((time.monotonic() + self.delete_delay, "deleted", path, None))

    @property
    def delete_delay(self) -> float:
        """How long a removal waits before it counts. A move into a folder created just
        before it reaches inotify as a removal and a new file (the new folder was not
        watched yet); the new file, started after its settle time, is recognised as
        the moved one while the removed name is still on record."""
        return 2 * self.entry.settle_time + 2 * EVENT_DELAY_S + 1.0

    def _files_below(self, folder: Path):
        for dirpath, dirnames, filenames in os.walk(folder):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not self.rules.ignores(here / d, True)]
            if not self.entry.recursive and here != self.folder:
                continue
            for name in filenames:
                yield here / name

    # -- rescan ------------------------------------------------------------
    def rescan(self) -> dict:
        """Catch up with the folder as it is: files new or changed since they were
        started become pending (due at once), recorded files that are gone get
        ``on_deleted``. Returns counts."""
        recorded = self.store.recorded(self.entry.key)
        present: set[str] = set()
        due = time.monotonic() - self.entry.settle_time
        pending = 0
        for path in self._files_below(self.folder):
            rel = self._rel(path)
            if rel is None or self.rules.ignores(path):
                continue
            if not self.entry.wants(rel):
                continue
            st = _regular_file(path)
            if st is None:
                continue
            present.add(rel)
            known = recorded.get(rel)
            if known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
                continue
            with self._lock:
                if path not in self._pending:
                    self.stats.add("seen")
                    self._pending[path] = (st.st_size, st.st_mtime_ns, due)
                    pending += 1
        vanished = [rel for rel in recorded if rel not in present]
        # Not forgotten at once: a file moved while no daemon watched is also a new file
        # here, due now, and is recognised as the moved one first (see delete_delay).
        for rel in vanished:
            self.deleted(self.folder / rel)
        return {"pending": pending, "vanished": len(vanished)}

    # -- acting ------------------------------------------------------------
    def check(self, now: float | None = None) -> int:
        """Act on due moves and deletes, then start every pending file that is
        complete; how many tasks were enqueued."""
        now = time.monotonic() if now is None else now
        started = self._act_on_events(now)
        with self._lock:
            items = list(self._pending.items())
        ready: list[tuple[Path, str, os.stat_result]] = []
        for path, (size, mtime_ns, since) in items:
            if now - since < self.entry.settle_time:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                self._drop(path)
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or (
                    self.mode != "polling" and open_for_writing(path)):
                with self._lock:
                    self._pending[path] = (st.st_size, st.st_mtime_ns, now)
                continue
            rel = self._rel(path)
            if rel is not None:
                ready.append((path, rel, st))
            else:
                self._drop(path)
        if ready:
            started += self._start(ready, now)
        return started

    def _start(self, ready: list[tuple[Path, str, os.stat_result]], now: float) -> int:
        entry = self.entry
        recorded = self.store.recorded(entry.key)
        quiet = self.store.quiet_among([str(p) for p, _, _ in ready])
        silent: list[tuple[str, int, int, int | None]] = []
        requests: list[dict] = []
        fresh: list[tuple[Path, str, os.stat_result]] = []
        started = 0
        for path, rel, st in ready:
            known = recorded.get(rel)
            if known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
                self._drop(path, (st.st_size, st.st_mtime_ns))
                continue  # started already in this state (a repeated event, a rescan)
            origin = self._moved_from(recorded, rel, st) if known is None else None
            if origin is not None:
                # A recorded file whose name is gone, same size and mtime: a move whose
                # event comes late (inotify pairs a rename into a new folder slowly).
                started += self._moved(self.folder / origin, path)
                recorded = self.store.recorded(entry.key)
                self._drop(path, (st.st_size, st.st_mtime_ns))
                continue
            if str(path) in quiet:
                log.debug("%s: %s written by a task (quiet)", entry.key, rel)
                self.store.unhush([str(path)])
                silent.append((rel, st.st_size, st.st_mtime_ns, None))
                self._drop(path, (st.st_size, st.st_mtime_ns))
                continue
            prefix = entry.unique_prefix or f"watch:{entry.task}"
            request = {"name": entry.task,
                       "args": {"path": str(path), "size": st.st_size, "mtime": st.st_mtime},
                       "unique_key": f"{prefix}:{path}:{st.st_size}:{st.st_mtime_ns}"}
            if entry.queue:
                request["queue"] = entry.queue
            requests.append(request)
            fresh.append((path, rel, st))
        self.store.record(entry.key, silent)
        if not requests:
            return started
        try:
            ids = self._enqueue(requests)
        except Exception as exc:  # database busy or down: the files stay pending, retried
            with self._lock:
                for path, _, st in fresh:
                    self._pending[path] = (st.st_size, st.st_mtime_ns, now + RETRY_ENQUEUE_S)
            if connection_lost(exc):
                raise  # the host says so once per outage (outage.py), not per retry
            log.exception("%s: could not start %d settled file(s); retrying", entry.key,
                          len(requests))
            return 0
        self.store.record(entry.key, [(rel, st.st_size, st.st_mtime_ns, task_id)
                                      for (_, rel, st), task_id in zip(fresh, ids, strict=True)])
        for path, _, st in fresh:
            self._drop(path, (st.st_size, st.st_mtime_ns))
        self.stats.add("started", len(fresh))
        return started + len(fresh)

    def _moved_from(self, recorded, rel: str, st: os.stat_result) -> str | None:
        """The recorded path ``rel`` was moved from, judged by size and mtime (a rename
        keeps both) and the old name being gone; None for a new file."""
        for old, known in recorded.items():
            if (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns) and old != rel \
                    and not os.path.lexists(self.folder / old):
                return old
        return None

    def _act_on_events(self, now: float) -> int:
        with self._lock:
            due = [e for e in self._events if e[0] <= now]
            self._events = [e for e in self._events if e[0] > now]
        started = 0
        for _, kind, src, dst in due:
            if kind == "moved" and dst is not None:
                started += self._moved(src, dst)
            else:
                rel = self._rel(src)
                if os.path.lexists(src):
                    continue  # back again (replaced): its own events say what it is now
                if rel is not None and not self.rules.ignores(src):
                    quiet = self.store.quiet_among([str(src)])
                    self.store.unhush(list(quiet))
                    started += self._forget_file(rel, bool(quiet))
        return started

    def _moved(self, src: Path, dst: Path) -> int:
        entry = self.entry
        src_rel, dst_rel = self._rel(src), self._rel(dst)
        if dst_rel is None or self.rules.ignores(dst):
            # Moved out of the folder (or into an ignored name): it is gone from here.
            if src_rel is None:
                return 0
            quiet = self.store.quiet_among([str(src)])
            self.store.unhush(list(quiet))
            return self._forget_file(src_rel, bool(quiet))
        if src_rel is None:
            self.saw(dst, dst.is_dir())
            return 0
        moved = self.store.rename(entry.key, src_rel, dst_rel)
        if not moved:
            # Never started (a download renamed from x.part to its final name, a file
            # still settling): the destination is a new file.
            known = self.store.get(entry.key, dst_rel)
            if known is None or dst.is_dir():
                self.saw(dst, dst.is_dir())
            return 0
        quiet = self.store.quiet_among([str(src), str(dst)])
        if quiet:
            self.store.unhush(list(quiet))
            log.debug("%s: %s moved to %s by a task (quiet)", entry.key, src_rel, dst_rel)
            return 0
        if not entry.on_moved:
            return 0
        requests = []
        for old in moved:
            new = dst_rel + old[len(src_rel):]
            request = {"name": entry.on_moved,
                       "args": {"src_path": str(self.folder / old), "path": str(self.folder / new)}}
            if entry.queue:
                request["queue"] = entry.queue
            requests.append(request)
        self._enqueue(requests)
        self.stats.add("started", len(requests))
        return len(requests)

    def _forget_file(self, rel: str, quiet: bool) -> int:
        gone = self.store.forget(self.entry.key, rel)
        if not gone or quiet or not self.entry.on_deleted:
            return 0
        requests = []
        for old in gone:
            request = {"name": self.entry.on_deleted, "args": {"path": str(self.folder / old)}}
            if self.entry.queue:
                request["queue"] = self.entry.queue
            requests.append(request)
        self._enqueue(requests)
        self.stats.add("started", len(requests))
        return len(requests)

    def _drop(self, path: Path, signature: tuple[int, int] | None = None) -> None:
        with self._lock:
            known = self._pending.get(path)
            if known is not None and (signature is None or known[:2] == signature):
                del self._pending[path]

    def pending(self) -> int:
        """How many files are waiting to settle."""
        with self._lock:
            return len(self._pending)


def _regular_file(path: Path) -> os.stat_result | None:
    """The file's own stat (a symlink is not followed), or None when it is gone or
    is not a regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None
