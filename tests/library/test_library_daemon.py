"""The library pipeline end to end: real files dropped into the inbox of a running daemon."""
from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections import Counter
from pathlib import Path

import psutil
from helpers import poll_until
from library_media import drop, files_under, jpeg_bytes, pdf_bytes, png_bytes, sha, text_bytes
from library_support import index_rows, tasks_named


def _folders(daemon) -> tuple[Path, Path, Path]:
    data = daemon.config.parent / "data"
    return data / "inbox", data / "library", data / "quarantine"


def _watching(daemon, scans_before: int = 0):
    """Wait until the inbox watcher runs: it enqueues its startup scan once watching."""
    poll_until(lambda: len(tasks_named(daemon.config, "library.scan")) > scans_before,
               timeout=30,
               message=lambda: f"the watcher did not start\n{daemon.read_log()[-3000:]}")
    return daemon


def _wait_ingested(daemon, expected_items: int, timeout: float = 60) -> list[dict]:
    inbox, _, _ = _folders(daemon)
    return poll_until(
        lambda: (not files_under(inbox) and len(rows := index_rows(daemon.config)) ==
                 expected_items and rows),
        timeout=timeout, interval=0.1,
        message=lambda: f"inbox {len(files_under(inbox))} left, "
                        f"{len(index_rows(daemon.config))} indexed\n{daemon.read_log()[-3000:]}")


def test_mixed_drop_lands_once_under_layout_and_duplicates_are_recorded(make_daemon, tmp_path):
    daemon = _watching(make_daemon())
    inbox, library, _ = _folders(daemon)
    staging = tmp_path / "staging"
    expected = {}    # sha → (kind, year, month, set of names it was dropped under)
    plan = []
    for i in range(20):
        taken = dt.datetime(2010 + i % 10, 1 + i % 12, 1 + i, 12, 0, 0)
        plan.append((f"photo_{i}.jpg", jpeg_bytes(i, original=taken.strftime("%Y:%m:%d %H:%M:%S")),
                     None, "image", taken))
    for i in range(10):
        when = dt.datetime(2021, 1 + i, 15, 10, 0)
        plan.append((f"scans/pic_{i}.png", png_bytes(i), when, "image", when))
    for i in range(8):
        when = dt.datetime(2019, 12 - i, 3, 9, 0)
        plan.append((f"doc_{i}.pdf", pdf_bytes(i), when, "document", when))
    for i in range(7):
        when = dt.datetime(2016, 6, 1 + i, 8, 0)
        plan.append((f"notes/note_{i}.txt", text_bytes(i), when, "document", when))
    for n, (name, data, when, kind, taken) in enumerate(list(plan[:5])):
        plan.append((f"copy_of_{n}_{Path(name).name}", data, when, kind, taken))
    assert len(plan) == 50
    for n, (name, data, when, kind, taken) in enumerate(plan):
        drop(inbox, name, data, mtime=when, staging=staging if n % 2 else None)
        entry = expected.setdefault(sha(data), (kind, taken.year, taken.month, set()))
        entry[3].add(Path(name).name)

    rows = _wait_ingested(daemon, expected_items=45)
    assert {r["sha256"] for r in rows} == set(expected)
    for row in rows:
        kind, year, month, names = expected[row["sha256"]]
        assert row["path"] == f"{kind}/{year:04d}/{month:02d}/{row['name']}"
        assert row["kind"] == kind and row["name"] in names
        assert {d["source_name"] for d in row["duplicates"]} == names - {row["source_name"]}
    stored = files_under(library)
    assert len(stored) == 45
    assert Counter(sha(p.read_bytes()) for p in stored) == Counter(set(expected))
    assert not files_under(inbox)
    outcomes = Counter((t["result"] or {}).get("status")
                       for t in tasks_named(daemon.config, "library.ingest"))
    assert (outcomes["ingested"], outcomes["duplicate"]) == (45, 5)   # each drop handled once


def test_file_written_slowly_is_ingested_once_and_complete(make_daemon):
    daemon = _watching(make_daemon())
    inbox, library, _ = _folders(daemon)
    chunks = [bytes([i]) * 50_000 for i in range(20)]
    with open(inbox / "slow.bin", "wb") as f:
        for chunk in chunks:          # 20 chunks over 2 s, like a slow network copy
            f.write(chunk)
            f.flush()
            time.sleep(0.1)
    whole = b"".join(chunks)
    rows = _wait_ingested(daemon, expected_items=1)
    assert rows[0]["sha256"] == sha(whole) and rows[0]["size"] == len(whole)
    assert rows[0]["duplicates"] == []
    stored = files_under(library)
    assert [sha(p.read_bytes()) for p in stored] == [sha(whole)]
    ingested = [t for t in tasks_named(daemon.config, "library.ingest")
                if (t["result"] or {}).get("status") == "ingested"]
    assert len(ingested) == 1


def test_unsafe_inputs_end_in_quarantine_with_a_reason(make_daemon, tmp_path):
    daemon = _watching(make_daemon())
    inbox, library, quarantine = _folders(daemon)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("not for the library")
    before = {p: p.stat().st_mtime_ns for p in files_under(tmp_path)
              if "data" not in p.relative_to(tmp_path).parts[:1]}
    os.symlink(secret, inbox / "link.txt")
    (inbox / "empty.jpg").write_bytes(b"")
    (inbox / "..\\..\\escape.txt").write_text("trying to climb out")
    os.mkfifo(inbox / "unreadable.pipe")   # open() would block forever: never read

    def quarantined():
        names = {p.name for p in files_under(quarantine)}
        wanted = {"link.txt", "empty.jpg", "..\\..\\escape.txt", "unreadable.pipe"}
        return wanted | {n + ".reason.txt" for n in wanted} <= names

    poll_until(quarantined, timeout=30, message=lambda: f"{files_under(quarantine)}\n"
                                                        f"{daemon.read_log()[-2000:]}")
    reasons = {p.name: p.read_text() for p in quarantine.glob("*.reason.txt")}
    assert "symlink" in reasons["link.txt.reason.txt"]
    assert "zero bytes" in reasons["empty.jpg.reason.txt"]
    assert "escape" in reasons["..\\..\\escape.txt.reason.txt"]
    assert "not a regular file" in reasons["unreadable.pipe.reason.txt"]
    assert (quarantine / "link.txt").is_symlink()
    assert os.readlink(quarantine / "link.txt") == str(secret)
    assert not files_under(inbox) and not files_under(library)
    after = {p: p.stat().st_mtime_ns for p in files_under(tmp_path)
             if "data" not in p.relative_to(tmp_path).parts[:1]}
    assert set(after) - set(before) <= {p for p in after if p.name.startswith("daemon-")}
    assert secret.read_text() == "not for the library"


def test_kill_9_of_the_whole_daemon_mid_ingest_loses_nothing(make_daemon, tmp_path):
    daemon = _watching(make_daemon())
    inbox, library, quarantine = _folders(daemon)
    staging = tmp_path / "staging"
    contents = {f"batch/file_{i:03d}.dat": os.urandom(512) + f"{i}".encode() * 100
                for i in range(500)}
    for name, data in contents.items():
        drop(inbox, name, data, staging=staging)
    poll_until(lambda: len(index_rows(daemon.config)) >= 60, timeout=60, interval=0.01)
    tree = [psutil.Process(daemon.process.pid), *daemon.tree()]
    for proc in tree:                      # everything at once: supervisor, workers, gunicorn
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    daemon.process.wait(10)
    psutil.wait_procs(tree, timeout=10)
    left_in_inbox = len(files_under(inbox))

    restarted = make_daemon(config=daemon.config)
    rows = _wait_ingested(restarted, expected_items=500, timeout=90)
    assert left_in_inbox > 0, "the kill came after everything was ingested; the test proved nothing"
    stored = Counter(sha(p.read_bytes()) for p in files_under(library))
    assert stored == Counter({sha(d) for d in contents.values()})       # each exactly once
    assert {r["sha256"] for r in rows} == set(stored)
    assert not [p for p in files_under(library) if p.name.startswith(".hopper-tmp-")]
    assert not files_under(quarantine)


def test_files_dropped_while_stopped_are_ingested_at_next_start(make_daemon):
    daemon = _watching(make_daemon())
    assert daemon.stop() == 0
    inbox, library, _ = _folders(daemon)
    dropped = {f"offline_{i}.txt": text_bytes(100 + i) for i in range(10)}
    for name, data in dropped.items():
        drop(inbox, name, data)
    restarted = _watching(make_daemon(config=daemon.config), scans_before=1)
    rows = _wait_ingested(restarted, expected_items=10)
    assert {r["sha256"] for r in rows} == {sha(d) for d in dropped.values()}


def test_startup_scan_is_a_parent_whose_continuation_runs_once(make_daemon):
    daemon = make_daemon(start=False)
    inbox, _, _ = _folders(daemon)
    for i in range(6):
        drop(inbox, f"waiting_{i}.txt", text_bytes(200 + i))
    daemon.start()
    _wait_ingested(daemon, expected_items=6)
    index_tasks = poll_until(lambda: [t for t in tasks_named(daemon.config, "library.index")
                                      if t["status"] == "succeeded"], timeout=20)
    scans = [t for t in tasks_named(daemon.config, "library.scan") if t["result"]
             and t["result"]["files"] == 6]
    assert len(scans) == 1
    scan = scans[0]
    from hopper.app.backends import open_backend
    from hopper.app.settings import load

    backend = open_backend(load(daemon.config).database)
    try:
        detail = backend.get(scan["id"])
    finally:
        backend.close()
    assert detail["status"] == "succeeded"
    assert detail["progress"] == {"done": 6, "total": 6}
    assert len(index_tasks) == 1 and index_tasks[0]["args"]["parent_id"] == scan["id"]


def test_polling_watcher_ingests_when_configured(make_daemon):
    daemon = _watching(make_daemon(library={"polling": True}))
    inbox, _, _ = _folders(daemon)
    drop(inbox, "polled/a.txt", text_bytes(400))
    rows = _wait_ingested(daemon, expected_items=1)
    assert rows[0]["sha256"] == sha(text_bytes(400))
    assert "polling events" in daemon.read_log()
