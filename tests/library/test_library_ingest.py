"""library.ingest in-process (eager mode): dedup, idempotent retries after a crash at
each step, quarantine of unreadable files and of files that fail every attempt."""
from __future__ import annotations

import errno
import os
import time

import pytest
from library_media import drop, files_under, jpeg_bytes, sha, text_bytes
from library_support import LIBRARY_MODULES

from hopper.app import queue
from hopper.app.library import index, organize
from hopper.app.library import ingest as ingest_mod
from hopper.app.library.ingest import ingest
from hopper.app.library.reindex import reconcile
from hopper.app.library.tasks import INGEST_MAX_ATTEMPTS


class Crash(Exception):
    """Stands for the worker dying at this point."""


def _crash_once(monkeypatch, owner, name):
    real = getattr(owner, name)
    calls = []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, crashing)


def _library_files(lib):
    return files_under(lib.settings.library_root)


def test_duplicate_is_recorded_not_copied(lib):
    data = jpeg_bytes(1, original="2018:03:02 09:08:07")
    drop(lib.settings.inbox, "first.jpg", data)
    drop(lib.settings.inbox, "second.jpg", data)
    first = ingest(lib.settings, lib.backend, "first.jpg")
    second = ingest(lib.settings, lib.backend, "second.jpg")
    assert (first["status"], second["status"]) == ("ingested", "duplicate")
    assert [p.name for p in _library_files(lib)] == ["first.jpg"]
    item = index.get_item(lib.backend, first["item_id"])
    assert [d["source_name"] for d in item["duplicates"]] == ["second.jpg"]
    assert not files_under(lib.settings.inbox)


def test_retry_after_crash_before_indexing_adopts_the_placed_file(lib, monkeypatch):
    drop(lib.settings.inbox, "a.txt", text_bytes(1))
    _crash_once(monkeypatch, index, "upsert_item")
    with pytest.raises(Crash):
        ingest(lib.settings, lib.backend, "a.txt")
    result = ingest(lib.settings, lib.backend, "a.txt")
    assert result["status"] == "ingested"
    assert [p.name for p in _library_files(lib)] == ["a.txt"]      # adopted, not "a-1.txt"
    assert not files_under(lib.settings.inbox)


def test_retry_after_crash_before_unlink_records_no_duplicate(lib, monkeypatch):
    drop(lib.settings.inbox, "a.txt", text_bytes(2))
    _crash_once(monkeypatch, ingest_mod, "_remove_source")
    with pytest.raises(Crash):
        ingest(lib.settings, lib.backend, "a.txt")
    result = ingest(lib.settings, lib.backend, "a.txt")
    assert result["status"] == "ingested"
    assert index.get_item(lib.backend, result["item_id"])["duplicates"] == []
    assert len(_library_files(lib)) == 1 and not files_under(lib.settings.inbox)


def test_crashed_copy_leaves_a_temp_file_that_retry_and_index_remove(lib, monkeypatch):
    data = text_bytes(3)
    drop(lib.settings.inbox, "a.txt", data)
    monkeypatch.setattr(organize, "_link_by_name", _refuse_cross_device)
    _crash_once(monkeypatch, organize, "_link_first_free")   # dies after the copy, before its link
    orphan = lib.settings.library_root / "document" / f"{organize.TEMP_PREFIX}{'ee' * 16}"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"partial")
    with pytest.raises(Crash):
        ingest(lib.settings, lib.backend, "a.txt")
    assert ingest(lib.settings, lib.backend, "a.txt")["status"] == "ingested"
    assert reconcile(lib.settings, lib.backend)["indexed"] == 0
    stored = _library_files(lib)
    assert [sha(p.read_bytes()) for p in stored] == [sha(data)]


def _refuse_cross_device(source, target):
    raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))   # the inbox is elsewhere


def test_unreadable_file_is_quarantined(lib, monkeypatch):
    target = drop(lib.settings.inbox, "locked.txt", text_bytes(4))
    real_open = os.open

    def denying_open(path, flags, *args, **kwargs):
        # Tests run as root, where chmod 000 does not stop reads: refuse like the kernel would.
        if os.fspath(path) == str(target):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(ingest_mod.os, "open", denying_open)
    result = ingest(lib.settings, lib.backend, "locked.txt")
    assert result["status"] == "quarantined" and "unreadable" in result["reason"]
    assert (lib.settings.quarantine / "locked.txt").read_bytes() == text_bytes(4)
    assert "Permission denied" in (lib.settings.quarantine / "locked.txt.reason.txt").read_text()


def test_file_failing_every_attempt_is_quarantined_by_the_last(lib, monkeypatch):
    drop(lib.settings.inbox, "cursed.txt", text_bytes(5))

    def failing(fd, mtime):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ingest_mod, "identify_fd", failing)
    task_id = queue.enqueue("library.ingest", {"path": "cursed.txt"}, max_attempts=1)
    found = queue.get_task(task_id)
    assert found["status"] == "succeeded" and found["result"]["status"] == "quarantined"
    reason = (lib.settings.quarantine / "cursed.txt.reason.txt").read_text()
    assert "failed every attempt" in reason and "Input/output error" in reason
    assert (lib.settings.quarantine / "cursed.txt").read_bytes() == text_bytes(5)


def test_earlier_attempts_fail_and_are_retried(lib, monkeypatch):
    drop(lib.settings.inbox, "flaky.txt", text_bytes(6))
    _crash_once(monkeypatch, ingest_mod, "identify_fd")
    task_id = queue.enqueue("library.ingest", {"path": "flaky.txt"}, max_attempts=3)
    found = queue.get_task(task_id)
    assert found["status"] == "queued" and found["attempts"] == 1 and "Crash" in found["error"]
    assert files_under(lib.settings.inbox) and not files_under(lib.settings.quarantine)


@pytest.mark.parametrize("path", ["/etc/hostname", "../outside.txt", "sub/../../outside.txt"])
def test_ingest_refuses_paths_outside_the_inbox(lib, path):
    outside = lib.settings.inbox.parent / "outside.txt"
    outside.write_text("keep me")
    task_id = queue.enqueue("library.ingest", {"path": path}, max_attempts=1)
    found = queue.get_task(task_id)
    assert found["status"] == "failed" and "not inside the inbox" in found["error"]
    assert outside.read_text() == "keep me" and os.path.exists("/etc/hostname")
    assert not files_under(lib.settings.quarantine) and not _library_files(lib)


def test_deleted_library_file_is_placed_again_not_counted_as_duplicate(lib):
    data = text_bytes(7)
    drop(lib.settings.inbox, "a.txt", data)
    first = ingest(lib.settings, lib.backend, "a.txt")
    (lib.settings.library_root / first["library_path"]).unlink()
    drop(lib.settings.inbox, "again.txt", data)
    second = ingest(lib.settings, lib.backend, "again.txt")
    assert second["status"] == "ingested" and second["item_id"] == first["item_id"]
    assert [sha(p.read_bytes()) for p in _library_files(lib)] == [sha(data)]


def test_name_that_cannot_be_stored_is_quarantined_byte_for_byte(lib):
    raw_name = os.fsdecode(b"caf\xe9 \xff.jpg")          # not UTF-8: no database can hold it
    data = jpeg_bytes(9)
    (lib.settings.inbox / raw_name).write_bytes(data)
    task_id = queue.enqueue("library.ingest", {"path": raw_name})
    found = queue.get_task(task_id)
    assert found["result"]["status"] == "quarantined" and "UTF-8" in found["result"]["reason"]
    stored = [p for p in files_under(lib.settings.quarantine) if not p.name.endswith(".reason.txt")]
    assert [p.read_bytes() for p in stored] == [data]
    assert not files_under(lib.settings.inbox) and not _library_files(lib)


def test_file_whose_attempts_hung_is_quarantined_by_the_last_attempt(tmp_path, monkeypatch):
    from daemons import write_settings

    from hopper.app import settings as settings_mod
    from hopper.app.backends.base import ATTEMPT_TIMEOUT
    from hopper.app.execute import current_task_id
    from hopper.app.library.tasks import library_ingest

    config = write_settings(tmp_path, tasks={"modules": LIBRARY_MODULES})  # not eager
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    client = queue.configure(settings_mod.load(config))
    client.settings.inbox.mkdir(parents=True)
    drop(client.settings.inbox, "bomb.png", text_bytes(10))
    task_id = queue.enqueue("library.ingest", {"path": "bomb.png"})
    # Every attempt but the last one was stopped by the supervisor past its timeout.
    while client.backend.claim_ids("w", [task_id], 60)[0].attempts < INGEST_MAX_ATTEMPTS:
        client.backend.fail_attempt(task_id, "w", "timed out after 3600s", time.time(),
                                    kind=ATTEMPT_TIMEOUT)
    token = current_task_id.set(task_id)
    try:
        result = library_ingest("bomb.png")
    finally:
        current_task_id.reset(token)
    assert result["status"] == "quarantined"
    reason = (client.settings.quarantine / "bomb.png.reason.txt").read_text()
    assert "timed out after 3600s" in reason
    assert (client.settings.quarantine / "bomb.png").read_bytes() == text_bytes(10)


def test_folder_that_cannot_be_listed_is_quarantined_whole(lib, monkeypatch):
    locked = lib.settings.inbox / "locked-album"
    drop(lib.settings.inbox, "locked-album/p.txt", text_bytes(11))
    real_scandir = os.scandir

    def denying_scandir(path="."):
        # Tests run as root, where chmod 000 does not stop listing: refuse like the kernel would.
        if os.fspath(path) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denying_scandir)
    task_id = queue.enqueue("library.scan", {})
    assert queue.get_task(task_id)["result"]["files"] == 1
    assert (lib.settings.quarantine / "locked-album" / "p.txt").read_bytes() == text_bytes(11)
    assert "cannot be read" in (lib.settings.quarantine / "locked-album.reason.txt").read_text()
