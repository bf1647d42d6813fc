"""A dropped file is never lost or mislabelled: races between hashing and placing a file,
two quarantines of one name at once, durable new library folders."""
from __future__ import annotations

import datetime as dt
import errno
import os
import threading
from pathlib import Path

from library_media import drop, files_under, sha, text_bytes

from hopper.app.library import index, organize
from hopper.app.library import ingest as ingest_mod
from hopper.app.library.ingest import ingest
from hopper.app.library.quarantine import quarantine

LAST_YEAR = dt.datetime.now() - dt.timedelta(days=365)   # settled long ago: no waiting


def _replace_after_identify(monkeypatch, inbox_file: Path, new_content: bytes) -> None:
    """A sync tool swaps the inbox file (write elsewhere, rename over) right after it was hashed."""
    real = ingest_mod.identify_fd

    def identify_then_replace(fd, *args, **kwargs):
        identity = real(fd, *args, **kwargs)
        staged = inbox_file.with_name(".sync-" + inbox_file.name)
        staged.write_bytes(new_content)
        os.replace(staged, inbox_file)
        return identity

    monkeypatch.setattr(ingest_mod, "identify_fd", identify_then_replace)


def _stored(lib) -> list[tuple[bytes, str]]:
    """(content, indexed sha256) of every file in the library."""
    rows = {path: sha256 for path, (_id, sha256, *_) in index.indexed_paths(lib.backend).items()}
    root = lib.settings.library_root
    return [(p.read_bytes(), rows.get(p.relative_to(root).as_posix()))
            for p in files_under(root)]


def test_file_replaced_between_hash_and_link_is_placed_as_hashed(lib, monkeypatch):
    old, new = text_bytes(11), text_bytes(12)
    source = drop(lib.settings.inbox, "notes.txt", old, mtime=LAST_YEAR)
    _replace_after_identify(monkeypatch, source, new)
    result = ingest(lib.settings, lib.backend, "notes.txt")
    assert result["status"] == "ingested" and result["sha256"] == sha(old)
    assert _stored(lib) == [(old, sha(old))]
    assert source.read_bytes() == new   # the newer file waits in the inbox, not lost


def test_file_replaced_between_hash_and_copy_is_copied_as_hashed(lib, monkeypatch):
    old, new = text_bytes(13), text_bytes(14)
    source = drop(lib.settings.inbox, "notes.txt", old, mtime=LAST_YEAR)
    monkeypatch.setattr(organize, "_link_by_name", _refuse_cross_device)
    _replace_after_identify(monkeypatch, source, new)
    result = ingest(lib.settings, lib.backend, "notes.txt")
    assert result["status"] == "ingested" and result["sha256"] == sha(old)
    assert _stored(lib) == [(old, sha(old))]
    assert source.read_bytes() == new


def test_the_replacing_file_is_ingested_next_under_its_own_hash(lib, monkeypatch):
    old, new = text_bytes(15), text_bytes(16)
    source = drop(lib.settings.inbox, "notes.txt", old, mtime=LAST_YEAR)
    _replace_after_identify(monkeypatch, source, new)
    ingest(lib.settings, lib.backend, "notes.txt")
    monkeypatch.undo()
    os.utime(source, (LAST_YEAR.timestamp(), LAST_YEAR.timestamp()))
    assert ingest(lib.settings, lib.backend, "notes.txt")["status"] == "ingested"
    assert sorted(_stored(lib)) == sorted([(old, sha(old)), (new, sha(new))])
    assert not files_under(lib.settings.inbox)


def test_file_written_in_place_while_copied_is_not_placed(lib, monkeypatch):
    source = drop(lib.settings.inbox, "log.txt", text_bytes(17), mtime=LAST_YEAR)
    monkeypatch.setattr(organize, "_link_by_name", _refuse_cross_device)
    real_copy = organize._copy_hashing

    def append_then_copy(src, dst):   # a writer appends to the same inode mid-copy
        with open(source, "ab") as f:
            f.write(b"one more line\n")
        return real_copy(src, dst)

    monkeypatch.setattr(organize, "_copy_hashing", append_then_copy)
    assert ingest(lib.settings, lib.backend, "log.txt")["status"] == "unsettled"
    assert files_under(lib.settings.library_root) == []
    assert source.read_bytes() == text_bytes(17) + b"one more line\n"


def _refuse_cross_device(source, target):
    raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))   # the inbox is elsewhere


def _meet_at_first_link(monkeypatch, parties: int) -> None:
    """Hold each thread at its first hard link until all have reached theirs."""
    barrier, real_link, seen = threading.Barrier(parties, timeout=10), os.link, threading.local()

    def link(*args, **kwargs):
        if not getattr(seen, "met", False):
            seen.met = True
            barrier.wait()
        return real_link(*args, **kwargs)

    monkeypatch.setattr(os, "link", link)


def _reasons(folder: Path) -> dict[str, str]:
    return {p.name[:-len(".reason.txt")]: p.read_text() for p in folder.glob("*.reason.txt")}


def test_two_files_of_one_name_quarantined_at_once_keep_both_files_and_reasons(tmp_path,
                                                                               monkeypatch):
    inbox, folder = tmp_path / "inbox", tmp_path / "quarantine"
    sources = {who: drop(inbox, f"{who}/broken.txt", f"from {who}".encode())
               for who in ("alice", "bob")}
    _meet_at_first_link(monkeypatch, parties=2)
    errors = []

    def run(who):
        try:
            quarantine(sources[who], folder, f"{who}'s reason", f"{who}/broken.txt")
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(who,)) for who in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    monkeypatch.undo()
    assert errors == []
    assert sorted(p.name for p in folder.iterdir()) == [
        "broken-1.txt", "broken-1.txt.reason.txt", "broken.txt", "broken.txt.reason.txt"]
    for name, reason in _reasons(folder).items():
        who = (folder / name).read_text().removeprefix("from ")
        assert f"file: {who}_broken.txt\n" in reason and f"reason: {who}'s reason\n" in reason


def test_quarantine_never_replaces_an_earlier_file_or_a_reason_left_alone(tmp_path):
    folder = tmp_path / "quarantine"
    folder.mkdir()
    (folder / "x.bin").write_bytes(b"earlier")
    (folder / "x.bin.reason.txt").write_text("earlier reason\n")
    (folder / "x-1.bin.reason.txt").write_text("reason of a quarantine that crashed\n")
    source = drop(tmp_path / "inbox", "x.bin", b"new")
    target = quarantine(source, folder, "new reason")
    assert target.name == "x-2.bin" and target.read_bytes() == b"new"
    assert "reason: new reason\n" in (folder / "x-2.bin.reason.txt").read_text()
    assert (folder / "x.bin").read_bytes() == b"earlier"
    assert (folder / "x.bin.reason.txt").read_text() == "earlier reason\n"
    assert (folder / "x-1.bin.reason.txt").read_text() == "reason of a quarantine that crashed\n"
    assert not source.exists()


def test_a_new_library_folder_is_fsynced_into_its_parent(tmp_path, monkeypatch):
    root = tmp_path / "library"
    (root / "image").mkdir(parents=True)
    synced = []
    monkeypatch.setattr(organize, "fsync_dir", lambda folder: synced.append(Path(folder)))
    organize.ensure_folder(root, organize.check_relative("image/2018/03"))
    assert synced == [root / "image", root / "image" / "2018"]
    synced.clear()
    organize.ensure_folder(root, organize.check_relative("image/2018/03"))
    assert synced == []   # nothing new, nothing to sync
