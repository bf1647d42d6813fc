"""The index never disagrees with the disk: checking a placed file against its row.

A writer that still held the file when it was hashed (a copy that paused longer
than the settle time, a sync tool rewriting in place) may write into the very
inode now in the library. Right after placing, the file at its library path is
checked against the size and mtime it was identified with; if it changed it is
identified again, under the lock of its new content, and deduplicated again: a
file that now equals another item's content becomes a recorded duplicate.
"""
from __future__ import annotations

import logging
import os
import stat

from hopper.app.library import index
from hopper.app.library.identify import Identity, identify_fd
from hopper.app.library.inbox import printable
from hopper.app.library.locks import content_lock
from hopper.app.library.organize import fsync_dir
from hopper.app.library.paths import locks_dir
from hopper.app.settings import Settings

log = logging.getLogger("hopper.library")

RECHECK_ROUNDS = 3  # a file still changing after this many identifications is left to reconcile


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def _identify_again(path) -> tuple[Identity, tuple[int, int]] | None:
    """A fresh identity of the file at ``path`` and the stat it holds for, or None if
    the file is gone, not a regular file, or changed again while it was read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return None
        fresh = identify_fd(fd, before.st_mtime)
        if _stamp(os.fstat(fd)) != _stamp(before):
            return None
        return fresh, _stamp(before)
    finally:
        os.close(fd)


def recheck_placed(settings: Settings, backend, library_path: str, item_id: int,
                   identified: os.stat_result, identity: Identity,
                   origin: index.Source) -> dict | None:
    """Compare the placed file with what was indexed; re-identify it if it changed.

    Returns None when the index is right, else the changes to the ingest result
    (``sha256``, ``kind``, ``mime``, ``reidentified``, or ``status: duplicate``)."""
    path = settings.library_root / library_path
    stamp = _stamp(identified)
    first = identity
    for _ in range(RECHECK_ROUNDS):
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            return None  # moved away by hand meanwhile: the next reconcile forgets it
        if _stamp(now) == stamp:
            break
        found = _identify_again(path)
        if found is None:
            continue  # still being written: look again
        fresh, stamp = found
        if fresh.sha256 == identity.sha256:
            return None  # touched, same content
        log.warning("%s changed after it was hashed (%s -> %s); identified again",
                    printable(library_path), identity.sha256[:12], fresh.sha256[:12])
        changed = _record(settings, backend, library_path, item_id, fresh, origin)
        if changed.get("status") == "duplicate":
            return changed
        identity = fresh
    else:
        log.warning("%s keeps changing; the next reconcile identifies it again",
                    printable(library_path))
    if identity is first:
        return None
    return {"sha256": identity.sha256, "kind": identity.kind, "mime": identity.mime,
            "reidentified": True}


def correct_placed(settings: Settings, backend, item: dict) -> dict | None:
    """After the fact (``library.verify``, polling mode): the file of indexed ``item``
    changed after its placement-time check. It is identified again and recorded the
    way :func:`recheck_placed` records a change (new facts, preview made again, or a
    duplicate of content already held). None when the content is the same, the file is
    gone, or it changed again while it was read (the caller looks again later)."""
    found = _identify_again(settings.library_root / item["path"])
    if found is None:
        return None
    fresh, _ = found
    if fresh.sha256 == item["sha256"]:
        return None
    log.warning("%s changed after it was indexed (%s -> %s); identified again",
                printable(item["path"]), item["sha256"][:12], fresh.sha256[:12])
    origin = index.Source(item["source_name"], item["source_path"], item["source_mtime_ns"])
    changed = _record(settings, backend, item["path"], item["id"], fresh, origin)
    return changed or {"sha256": fresh.sha256, "kind": fresh.kind, "mime": fresh.mime,
                       "reidentified": True}


def _record(settings: Settings, backend, library_path: str, item_id: int, fresh: Identity,
            origin: index.Source) -> dict:
    path = settings.library_root / library_path
    with content_lock(locks_dir(settings), fresh.sha256):
        holder = index.item_by_sha(backend, fresh.sha256)
        if holder is not None and holder["id"] != item_id:
            held = settings.library_root / holder["path"]
            if held.is_file() and held.stat().st_size == fresh.size:
                # Now a copy of content already in the library: keep the one copy.
                index.add_duplicate(backend, fresh.sha256, origin, fresh.size)
                index.delete_items(backend, [item_id])
                os.unlink(path)
                fsync_dir(path.parent)
                return {"status": "duplicate", "item_id": holder["id"], "sha256": fresh.sha256,
                        "kind": fresh.kind, "mime": fresh.mime, "reidentified": True}
            index.delete_items(backend, [holder["id"]])  # its file is gone: this one holds it
        index.replace_content(backend, item_id, fresh)
    return {}
