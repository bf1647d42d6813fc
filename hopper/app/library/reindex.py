"""Keeping the index true to the files under ``library.root``.

- :func:`reconcile` (the ``library.index`` continuation after each scan) is
  incremental: it indexes files nobody indexed (placed by hand, or by an
  attempt that died before its index write), forgets rows whose file is gone,
  removes temp files left by crashed copies, removes the lock folder an earlier
  layout kept in the root, and prunes old empty inbox folders.
- :func:`reindex` (``python run.py library reindex``) identifies every file again
  and rebuilds the item table, keeping each found file's id and added time.
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Iterator

from hopper.app.library import index
from hopper.app.library.identify import identify_path
from hopper.app.library.inbox import excluded_folders, inbox_rules, prune_empty_folders
from hopper.app.library.index_rebuild import rebuild
from hopper.app.library.locks import content_lock
from hopper.app.library.organize import TEMP_PREFIX, is_temp_name
from hopper.app.library.paths import LEGACY_LOCK_FOLDER, locks_dir
from hopper.app.settings import Settings

log = logging.getLogger("hopper.library")

EMPTY_FOLDER_AGE_S = 600.0


def library_files(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """``(relative path, path, lstat)`` of every entry under the root (except a legacy
    lock folder at its top), in a stable order; temp files are included (callers sweep them)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not (d == LEGACY_LOCK_FOLDER and Path(dirpath) == root))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # removed while walking
            yield path.relative_to(root).as_posix(), path, st


def _sweep_temp(locks: Path, path: Path) -> bool:
    """Remove a crashed copy's temp file. Its name carries the content's sha256
    prefix, and a copy in progress holds that content's lock, so holding the lock
    proves the file is a leftover."""
    sha_prefix = path.name[len(TEMP_PREFIX):]
    with content_lock(locks, sha_prefix):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False  # its own retry cleaned it up first
    log.info("removed the leftover temp file %s", path)
    return True


def _candidates(settings: Settings):
    """Regular library files, after sweeping temp files; symlinks and others are reported."""
    for rel, path, st in library_files(settings.library_root):
        if is_temp_name(path.name):
            _sweep_temp(locks_dir(settings), path)
        elif not stat.S_ISREG(st.st_mode):
            log.warning("ignoring %s in the library: not a regular file", rel)
        else:
            yield rel, path, st


def _remove_legacy_locks(root: Path) -> None:
    """Lock files now live in the data folder; an earlier layout's folder in the root goes.
    Only empty ``NN.lock`` files are removed, so a user's folder of that name stays."""
    folder = root / LEGACY_LOCK_FOLDER
    if folder.is_symlink() or not folder.is_dir():
        return
    entries = list(folder.iterdir())
    if all(e.name.endswith(".lock") and e.is_file() and not e.is_symlink()
           and e.stat().st_size == 0 for e in entries):
        shutil.rmtree(folder)
        log.info("removed the old lock folder %s from the library root", folder)


def reconcile(settings: Settings, backend) -> dict:
    """Make the index match the files under the root, incrementally."""
    root = settings.library_root
    if not root.is_dir():
        return {"indexed": 0, "forgotten": 0, "pruned_folders": 0}
    known = index.indexed_paths(backend)
    seen: set[str] = set()
    added = 0
    _remove_legacy_locks(root)
    for rel, path, st in _candidates(settings):
        seen.add(rel)
        # A file written after its row was (a writer that kept the inode) is identified again.
        if rel in known and known[rel][2] == st.st_size and st.st_mtime <= known[rel][3]:
            continue
        identity = identify_path(path)
        if rel in known and known[rel][1] == identity.sha256:
            continue
        holder = index.item_by_sha(backend, identity.sha256)
        if holder is not None and holder["path"] != rel and (root / holder["path"]).is_file():
            log.warning("%s duplicates the indexed %s; not indexed twice", rel, holder["path"])
            continue
        if rel in known and holder is None:
            log.warning("%s changed since it was indexed; identified again", rel)
            index.replace_content(backend, known[rel][0], identity)  # its id stays
        else:
            index.upsert_item(backend, rel, identity, None)
        added += 1
    gone = [item_id for rel, (item_id, *_) in known.items() if rel not in seen]
    forgotten = index.delete_items(backend, gone)
    pruned = 0
    if settings.inbox.is_dir():
        pruned = prune_empty_folders(settings.inbox, excluded_folders(settings),
                                     EMPTY_FOLDER_AGE_S, time.time(), inbox_rules(settings))
    return {"indexed": added, "forgotten": forgotten, "pruned_folders": pruned}


def reindex(settings: Settings, backend) -> int:
    """Rebuild the index from the files under the root; return how many are indexed.

    Ids and added times survive (matched by path, then by content), and so do drop
    origins; files are identified again, so a better parser takes effect. Only
    rows whose file is gone are removed.
    """
    root = settings.library_root
    sources = index.sources_by_sha(backend)
    entries: list = []
    by_sha: dict[str, list] = {}
    for rel, path, _ in (_candidates(settings) if root.is_dir() else ()):
        identity = identify_path(path)
        if identity.sha256 in by_sha:
            log.warning("%s duplicates %s; indexing the first only", rel, by_sha[identity.sha256])
            continue
        by_sha[identity.sha256] = rel
        origin = sources.get(identity.sha256)
        entries.append((rel, identity, index.Source(*origin) if origin else None))
    summary = rebuild(backend, entries)
    log.info("reindex: %(indexed)d file(s), %(kept)d kept their id, %(added)d new,"
             " %(removed)d gone", summary)
    return summary["indexed"]
