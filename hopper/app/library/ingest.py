"""Ingesting one inbox file: check → identify → deduplicate → organize → index → unlink.

Idempotent at every step, because a worker can die anywhere:

- the inbox file is removed only after the index row exists, so until then a
  retry (or the next scan) finds it and starts over;
- organizing hard-links (or copies to a temp name, then links) into a fresh
  name, so a crash leaves either nothing or a complete file; a retry adopts a
  complete file it placed before (same inode, or same size and sha256);
- an index row that already names this drop (same source path and mtime) means
  the previous attempt got as far as the index: only the unlink is left.
"""
from __future__ import annotations

import errno
import logging
import os
import stat
import time
from pathlib import Path

from hopper.app.library import index, organize
from hopper.app.library.identify import Identity, identify_fd, sha256_fd
from hopper.app.library.inbox import (
    inbox_rules,
    printable,
    relative,
    remove_emptied_parents,
    resolve_source,
)
from hopper.app.library.locks import content_lock, try_lock
from hopper.app.library.paths import locks_dir
from hopper.app.library.placed import recheck_placed
from hopper.app.library.quarantine import quarantine
from hopper.app.settings import Settings
from hopper.app.watch.complete import open_for_writing

log = logging.getLogger("hopper.library")

SETTLE_DEADLINE_MIN_S = 30.0


class Problem(Exception):
    """A file that can never be ingested as it is: it goes to the quarantine."""


def ingest(settings: Settings, backend, path: str) -> dict:
    """Ingest the inbox file at ``path`` (absolute or relative to the inbox).

    Returns ``{"status": ...}``: ingested, duplicate, quarantined, missing (gone
    already, e.g. ingested by a concurrent task), busy (another task holds it),
    unsettled (still being written; the watcher or next scan enqueues it again)
    folder or ignored (junk the built-in ignores or ``library.ignore`` name: never
    touched). Raises on transient errors so the task is retried.
    """
    source = resolve_source(settings.inbox, path)
    rel = relative(settings.inbox, source)
    rules = inbox_rules(settings)
    if rules.ignores(source, os.path.isdir(source)):
        return {"status": "ignored", "path": rel}
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return {"status": "missing", "path": rel}
    if stat.S_ISDIR(st.st_mode):
        try:
            os.scandir(source).close()
        except PermissionError as exc:
            return _to_quarantine(settings, source, rel,
                                  f"a folder that cannot be read: {exc.strerror}")
        return {"status": "folder", "path": rel}  # the caller scans it: its files are the input
    try:
        _check_entry(st, source.name)
        fd = _open(source)
    except Problem as exc:
        return _to_quarantine(settings, source, rel, str(exc))
    except FileNotFoundError:
        return {"status": "missing", "path": rel}
    try:
        if not try_lock(fd):
            return {"status": "busy", "path": rel}
        if not _same_entry(source, os.fstat(fd)):
            return {"status": "missing", "path": rel}
        settled = _wait_settled(fd, settings.settle_time)
        if settled is None or (not settings.library_polling and open_for_writing(source)):
            return {"status": "unsettled", "path": rel}
        try:
            if settled.st_size == 0:
                raise Problem("the file is empty (zero bytes)")
            result = _ingest_open(settings, backend, source, rel, fd, settled)
            if not os.path.lexists(source):
                remove_emptied_parents(settings.inbox, source, rules)
            return result
        except Problem as exc:
            return _to_quarantine(settings, source, rel, str(exc))
    finally:
        os.close(fd)


def quarantine_after_failures(settings: Settings, path: str, error: str) -> dict:
    """The last attempt failed: quarantine the file unless another task holds it."""
    source = resolve_source(settings.inbox, path)
    rel = relative(settings.inbox, source)
    if inbox_rules(settings).ignores(source, os.path.isdir(source)):
        return {"status": "ignored", "path": rel}
    if not os.path.lexists(source):
        return {"status": "missing", "path": rel}
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # unreadable or not a file: nobody else can be reading it either
        log.info("quarantining %s without a lock (%s)", printable(rel), exc.strerror)
        fd = None
    try:
        if fd is not None and not try_lock(fd):
            return {"status": "busy", "path": rel}
        return _to_quarantine(settings, source, rel, f"failed every attempt: {error}")
    finally:
        if fd is not None:
            os.close(fd)


def _check_entry(st: os.stat_result, name: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise Problem("the file is a symlink; only regular files are ingested")
    if not stat.S_ISREG(st.st_mode):
        raise Problem("not a regular file"
                      " (a named pipe, socket or device cannot be read as a file)")
    try:
        organize.sanitize_name(name)
    except organize.UnsafeName as exc:
        raise Problem(str(exc)) from None


def _open(source: Path) -> int:
    # O_NONBLOCK: if the entry was swapped for a FIFO since lstat, open must not hang.
    try:
        return os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except PermissionError as exc:
        raise Problem(f"unreadable: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EACCES, errno.EISDIR):
            raise Problem(f"cannot be opened as a file: {exc.strerror}") from None
        raise


def _same_entry(source: Path, fst: os.stat_result) -> bool:
    """True while the inbox name still refers to the inode we opened."""
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _wait_settled(fd: int, settle: float) -> os.stat_result | None:
    """The file's stat once it has not changed for ``settle`` seconds, or None
    when it keeps changing past the deadline (a slow copy: it is enqueued again)."""
    previous = os.fstat(fd)
    if time.time() - previous.st_mtime >= settle:
        return previous
    deadline = time.monotonic() + max(SETTLE_DEADLINE_MIN_S, 10 * settle)
    while time.monotonic() < deadline:
        time.sleep(settle)  # waiting for a writer is the point here
        current = os.fstat(fd)
        if (current.st_size, current.st_mtime_ns) == (previous.st_size, previous.st_mtime_ns):
            return current
        previous = current
    return None


def _ingest_open(settings: Settings, backend, source: Path, rel: str, fd: int,
                 st: os.stat_result) -> dict:
    identity = identify_fd(fd, st.st_mtime)
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        return {"status": "unsettled", "path": rel}  # written to while we read it
    origin = index.Source(source.name, rel, st.st_mtime_ns)
    root = settings.library_root
    root.mkdir(parents=True, exist_ok=True)
    with content_lock(locks_dir(settings), identity.sha256):
        item = index.item_by_sha(backend, identity.sha256)
        if item is not None and _holds(root / item["path"], identity.size):
            if (item["source_path"], item["source_mtime_ns"]) != (rel, st.st_mtime_ns):
                index.add_duplicate(backend, identity.sha256, origin, identity.size)
                status = "duplicate"
            else:
                status = "ingested"  # a previous attempt indexed it; only the unlink was left
            _remove_source(source, st)
            return {"status": status, "path": rel, "item_id": item["id"], "sha256": identity.sha256,
                    "kind": identity.kind, "mime": identity.mime}
        try:
            target = organize.render(settings.layout, identity, source.name)
            folder = organize.ensure_folder(root, target.parent)
        except organize.UnsafeName as exc:
            raise Problem(str(exc)) from None
        final = _adopt(folder, target.name, st, identity)
        if final is None:
            final = _place(fd, source, folder, target.name, identity.sha256, st)
            if final is None:
                return {"status": "unsettled", "path": rel}  # changed in place: try again later
        library_path = final.relative_to(root).as_posix()
        item_id = index.upsert_item(backend, library_path, identity, origin)
        _remove_source(source, st)
    log.info("ingested %s as %s", printable(rel), library_path)
    result = {"status": "ingested", "path": rel, "item_id": item_id,
              "library_path": library_path, "sha256": identity.sha256, "kind": identity.kind,
              "mime": identity.mime}
    # After the content lock is released: re-identifying takes the lock of the new content.
    changed = recheck_placed(settings, backend, library_path, item_id, st, identity, origin)
    return {**result, **changed} if changed else result


def _place(fd: int, source: Path, folder: Path, name: str, sha256: str,
           st: os.stat_result) -> Path | None:
    """Place the opened file in the library; None (nothing placed) when its content
    changed since it was identified, so no file is indexed under a stale hash."""
    try:
        final = organize.place(fd, source, folder, name, sha256)
    except organize.ContentChanged as exc:
        log.info("%s changed while it was placed (%s); it will be ingested again",
                 printable(source.name), exc)
        return None
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        os.unlink(final)  # a link to an inode written to since it was hashed
        organize.fsync_dir(folder)
        return None
    return final


def _holds(path: Path, size: int) -> bool:
    """True if the indexed file is still there (a file deleted by hand is re-created)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


def _adopt(folder: Path, name: str, st: os.stat_result, identity: Identity) -> Path | None:
    """A file this content already got in ``folder`` from an attempt that died before
    indexing it: the source's own inode (hard link), or equal size and sha256."""
    for candidate in organize.candidates(name):
        path = folder / candidate
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            return None  # names are taken in order: past the first free one there is nothing
        if not stat.S_ISREG(found.st_mode) or found.st_size != identity.size:
            continue
        if (found.st_dev, found.st_ino) == (st.st_dev, st.st_ino):
            return path
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if sha256_fd(fd)[0] == identity.sha256:
                return path
        finally:
            os.close(fd)
    return None


def _remove_source(source: Path, st: os.stat_result) -> None:
    """Unlink the inbox name, unless someone dropped a new file under it meanwhile.

    No fsync of the inbox folder: an unlink lost in a power cut brings the file
    back, and re-ingesting it finds its own index row and only unlinks again.
    """
    if _same_entry(source, st):
        os.unlink(source)


def _to_quarantine(settings: Settings, source: Path, rel: str, reason: str) -> dict:
    try:
        target = quarantine(source, settings.quarantine, reason, rel)
    except FileNotFoundError:
        return {"status": "missing", "path": rel}
    return {"status": "quarantined", "path": rel, "reason": reason,
            "quarantine_path": target.name}
