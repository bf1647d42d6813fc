"""The inbox on a real daemon: junk left alone byte for byte, a download renamed
into place ingested once under its final name, emptied folders removed, and a
file still open for writing not ingested until it is complete."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from daemons import write_settings
from helpers import poll_until
from junk_set import JUNK

from hopper.app.settings import load


def _index(config: Path) -> list[tuple[str, str, int, str]]:
    """(path, sha256, size, source_path) of every indexed item."""
    db = load(config).database[len("sqlite:///"):]
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT path, sha256, size, source_path FROM library_items"
                                " ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def inbox_daemon(tmp_path, make_daemon):
    def start(**library):
        config = write_settings(tmp_path, library={"settle_time": "300ms", **library})
        daemon = make_daemon(config=config)
        inbox = load(config).inbox
        poll_until(inbox.is_dir, timeout=60)   # the inbox watcher makes it when it starts
        return daemon, config, inbox, load(config).library_root
    return start


def test_the_junk_set_stays_in_the_inbox_byte_for_byte(inbox_daemon):
    _, config, inbox, _ = inbox_daemon()
    for rel, data in JUNK.items():
        (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
        (inbox / rel).write_bytes(data)
    (inbox / "DCIM" / "real.txt").write_bytes(b"a real file beside the junk")
    poll_until(lambda: len(_index(config)) == 1, timeout=60)
    poll_until(lambda: not (inbox / "DCIM" / "real.txt").exists(), timeout=60)
    assert _tree(inbox) == JUNK
    assert (inbox / ".stfolder").is_dir()   # a sync marker folder is never removed


def test_a_download_renamed_to_its_final_name_is_ingested_once_under_it(inbox_daemon):
    daemon, config, inbox, root = inbox_daemon()
    part = inbox / "holiday.txt.part"
    part.write_bytes(b"first half ")
    deadline = time.monotonic() + 1.0   # past the 300 ms settle time: seen, and left alone
    while time.monotonic() < deadline:
        assert part.read_bytes() == b"first half " and not _index(config)
        time.sleep(0.05)
    with open(part, "ab") as f:
        f.write(b"second half")
    os.rename(part, inbox / "holiday.txt")
    rows = poll_until(lambda: _index(config), timeout=60)
    assert [(r[0].rsplit("/", 1)[-1], r[3]) for r in rows] == [("holiday.txt", "holiday.txt")]
    assert rows[0][1] == hashlib.sha256(b"first half second half").hexdigest()
    assert not part.exists() and not (inbox / "holiday.txt").exists()


def test_emptied_inbox_folders_are_removed_but_not_the_inbox_or_a_folder_with_junk(
        inbox_daemon):
    _, config, inbox, _ = inbox_daemon()
    (inbox / "DCIM" / "100APPLE").mkdir(parents=True)
    (inbox / "DCIM" / "100APPLE" / "a.txt").write_bytes(b"a")
    (inbox / "NAS" / "share").mkdir(parents=True)
    (inbox / "NAS" / "share" / "b.txt").write_bytes(b"b")
    (inbox / "NAS" / ".DS_Store").write_bytes(b"junk")
    poll_until(lambda: len(_index(config)) == 2, timeout=60)
    # Each ingest removes the folders it emptied, after its own move: wait for both.
    poll_until(lambda: not (inbox / "DCIM").exists() and not (inbox / "NAS" / "share").exists(),
               timeout=60, message=lambda: f"inbox holds {sorted(_tree(inbox))}")
    assert inbox.is_dir()
    assert sorted(_tree(inbox)) == ["NAS/.DS_Store"]


def _slow_copy(path: Path, data: bytes, pause: float) -> threading.Thread:
    """A writer holding ``path`` open, writing it in three parts with pauses."""
    def run():
        third = len(data) // 3
        with open(path, "wb") as f:
            for start in (0, third, 2 * third):
                f.write(data[start:start + third] if start < 2 * third else data[start:])
                f.flush()
                if start < 2 * third:
                    time.sleep(pause)  # the writer's own pace, not a test wait
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_file_still_open_for_writing_is_ingested_only_complete(inbox_daemon):
    _, config, inbox, root = inbox_daemon(settle_time="1s")
    data = os.urandom(300_000)
    writer = _slow_copy(inbox / "big.bin", data, pause=3.0)
    rows = poll_until(lambda: _index(config), timeout=60)
    writer.join()
    path, sha, size, _ = rows[0]
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert hashlib.sha256((root / path).read_bytes()).hexdigest() == sha


def test_on_polling_a_file_ingested_mid_copy_is_corrected_in_the_index(inbox_daemon):
    # Polling stands for a network share: settle time alone decides, so the copy is
    # ingested after its first part; library.verify then brings the index in line.
    _, config, inbox, root = inbox_daemon(settle_time="1s", polling=True)
    data = os.urandom(300_000)
    writer = _slow_copy(inbox / "big.bin", data, pause=3.0)
    writer.join()
    expected = hashlib.sha256(data).hexdigest()
    rows = poll_until(lambda: [r for r in _index(config) if r[1] == expected], timeout=60,
                      message=lambda: f"index: {_index(config)}")
    path, sha, size, _ = rows[0]
    assert size == len(data) and len(_index(config)) == 1
    assert hashlib.sha256((root / path).read_bytes()).hexdigest() == sha
