"""Applying settings.yaml changes live (a watchdog observer on its folder).

Editors and our own PATCH handler replace the file by rename, so the observer
watches the folder and filters for the file's name. A file that fails to load
keeps the last good settings; the error is logged and published.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from hopper.app import settings as settings_mod

log = logging.getLogger("hopper.settings")

DEBOUNCE_S = 0.1
READ_ONLY_EVENTS = ("opened", "closed_no_write")


class SettingsWatcher(FileSystemEventHandler):
    """Calls ``on_change(new)`` or ``on_error(message)`` after the file changes."""

    def __init__(self, path: Path, on_change: Callable[[settings_mod.Settings], None],
                 on_error: Callable[[str], None]):
        self.path = Path(path).resolve()
        self.on_change, self.on_error = on_change, on_error
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()  # file events and SIGHUP may reload at once
        self._observer = Observer()

    def start(self) -> None:
        self._observer.schedule(self, str(self.path.parent), recursive=False)
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(5)
        with self._lock:
            if self._timer:
                self._timer.cancel()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in READ_ONLY_EVENTS:
            return  # someone read the file (GET /api/settings does): nothing changed
        paths = {getattr(event, "src_path", ""), getattr(event, "dest_path", "")}
        if not any(p and Path(p).resolve() == self.path for p in paths):
            return
        with self._lock:  # many events per save: reload once they stop
            if self._timer:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_S, self.reload)
            self._timer.daemon = True
            self._timer.start()

    def reload(self) -> None:
        """Load the file now: apply it, or keep the last good settings and report why not."""
        with self._reload_lock:
            try:
                new = settings_mod.load(self.path)
            except settings_mod.SettingsError as exc:
                log.error("settings change rejected, keeping the last good settings: %s", exc)
                self.on_error(str(exc))
                return
            log.info("settings reloaded from %s", self.path)
            self.on_change(new)
