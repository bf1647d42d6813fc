"""InboxWatcher in-process: settle detection, polling fallback, ignored own outputs;
and ``python run.py library reindex``."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from daemons import REPO, write_settings
from helpers import poll_until
from library_media import drop, text_bytes
from library_support import index_rows

from hopper.app import settings as settings_mod
from hopper.app.library import watcher as watcher_mod
from hopper.app.library.ingest import ingest
from hopper.app.library.watcher import InboxWatcher


class Recorder:
    def __init__(self):
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, requests):
        with self.lock:
            self.requests += requests
        return list(range(len(requests)))

    def paths(self):
        with self.lock:
            return [r["args"]["path"] for r in self.requests]


@pytest.fixture
def watched(tmp_path):
    config = write_settings(tmp_path, library={"settle_time": "300ms"})
    settings = settings_mod.load(config)
    started = []

    def start(**kwargs):
        recorder = Recorder()
        w = InboxWatcher(settings, enqueue=recorder, **kwargs)
        w.start(startup_scan=False)
        started.append(w)
        return w, recorder, settings

    yield start
    for w in started:
        w.stop()


def test_file_is_enqueued_once_after_its_size_stops_changing(watched):
    w, recorder, settings = watched()
    path = settings.inbox / "growing.bin"
    with open(path, "wb") as f:
        for _ in range(8):             # keeps changing for longer than the settle time
            f.write(b"x" * 10_000)
            f.flush()
            time.sleep(0.1)
            assert recorder.paths() == []
    poll_until(lambda: recorder.paths() == ["growing.bin"], timeout=10)
    key = recorder.requests[0]["unique_key"]
    assert key.startswith("library.ingest:growing.bin:80000:")
    poll_until(lambda: w.pending() == 0, timeout=5)  # forgotten once the enqueue returned


def test_polling_observer_is_used_when_native_events_are_unavailable(watched, monkeypatch):
    class NoInotify(watcher_mod.Observer):
        def schedule(self, *args, **kwargs):
            raise OSError(24, "inotify instance limit reached")

    monkeypatch.setattr(watcher_mod, "Observer", NoInotify)
    w, recorder, settings = watched()
    assert w.mode == "polling"
    drop(settings.inbox, "sub/dir/late.txt", b"hello")
    poll_until(lambda: recorder.paths() == ["sub/dir/late.txt"], timeout=15)


def test_folder_moved_in_brings_its_files(watched, tmp_path):
    w, recorder, settings = watched()
    outside = tmp_path / "album"
    for i in range(3):
        drop(outside, f"deep/p{i}.txt", text_bytes(i))
    os.rename(outside, settings.inbox / "album")
    poll_until(lambda: sorted(recorder.paths()) == [f"album/deep/p{i}.txt" for i in range(3)],
               timeout=10)


def test_own_outputs_and_removals_are_ignored(tmp_path):
    config = write_settings(tmp_path, library={"root": "data/inbox/library",
                                               "quarantine": "data/inbox/quarantine"})
    settings = settings_mod.load(config)
    recorder = Recorder()
    w = InboxWatcher(settings, enqueue=recorder)
    w.start(startup_scan=False)
    try:
        drop(settings.inbox, "real.txt", b"input")
        poll_until(lambda: recorder.paths() == ["real.txt"], timeout=10)
        drop(settings.library_root, "document/2024/01/real.txt", b"output")
        drop(settings.quarantine, "bad.txt", b"output")
        drop(settings.library_root, "document/.hopper-tmp-abc", b"temp")
        os.unlink(settings.inbox / "real.txt")
        time.sleep(3 * settings.settle_time)   # give a wrongly-noted path time to settle
        w.check()
        assert recorder.paths() == ["real.txt"] and w.ignored_events > 0
    finally:
        w.stop()


def test_reindex_rebuilds_the_index_from_library_files(lib):
    for i in range(3):
        drop(lib.settings.inbox, f"n{i}.txt", text_bytes(300 + i))
        ingest(lib.settings, lib.backend, f"n{i}.txt")
    before = {r["sha256"]: r for r in index_rows(lib.settings.path)}
    drop(lib.settings.library_root, "document/by-hand.txt", b"placed by hand")
    with lib.backend._write() as conn:
        conn.execute("DELETE FROM library_items WHERE source_name = 'n0.txt'")
        conn.execute("UPDATE library_items SET size = 1 WHERE source_name = 'n1.txt'")
    out = subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(lib.settings.path),
                          "library", "reindex"], capture_output=True, text=True, timeout=60,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "tests")})
    assert out.returncode == 0, out.stderr
    assert "indexed 4 file(s)" in out.stdout
    after = {r["sha256"]: r for r in index_rows(lib.settings.path)}
    assert set(before) < set(after) and len(after) == 4
    for sha, row in before.items():
        assert (after[sha]["path"], after[sha]["size"]) == (row["path"], row["size"])
    assert after[before_sha(before, "n2.txt")]["source_name"] == "n2.txt"


def before_sha(rows: dict, source_name: str) -> str:
    return next(sha for sha, r in rows.items() if r["source_name"] == source_name)


def test_hidden_names_outside_the_built_in_ignores_are_still_input(watched):
    w, recorder, settings = watched()
    drop(settings.inbox, ".hopper-tmp-mine.txt", b"a user's file, whatever its name")
    drop(settings.inbox, ".DS_Store", b"a built-in ignore: left alone")
    poll_until(lambda: recorder.paths() == [".hopper-tmp-mine.txt"], timeout=10)
    assert w.ignored_events >= 1


def test_supervisor_schedules_the_recurring_library_scan(tmp_path):
    from hopper.app.daemon import schedules_for

    hourly = settings_mod.load(write_settings(tmp_path, library={"rescan_interval": "1h"}))
    assert {"name": "library.scan", "every": 3600.0} in schedules_for(hourly)
    off = settings_mod.load(write_settings(tmp_path, library={"rescan_interval": 0}))
    assert all(e["name"] != "library.scan" for e in schedules_for(off))


def test_files_stay_pending_while_the_database_refuses_and_are_enqueued_later(tmp_path):
    settings = settings_mod.load(write_settings(tmp_path, library={"settle_time": "100ms"}))
    recorder, failures = Recorder(), []

    def flaky_enqueue(requests):
        if not failures:
            failures.append(len(requests))
            raise OSError("database is locked")
        return recorder(requests)

    w = InboxWatcher(settings, enqueue=flaky_enqueue)
    w.start(startup_scan=False)
    try:
        for i in range(3):
            drop(settings.inbox, f"f{i}.txt", text_bytes(i))
        poll_until(lambda: sorted(recorder.paths()) == [f"f{i}.txt" for i in range(3)], timeout=15)
        # The watcher forgets the files once the enqueue has returned, on its own thread.
        poll_until(lambda: w.pending() == 0, timeout=5, message=lambda: f"{w.pending()} pending")
        assert failures, "the enqueue never failed, so nothing was retried"
    finally:
        w.stop()
