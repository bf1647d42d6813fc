"""``library.verify``: the index is corrected after the fact when a placed file changes.

On a network share (``library.polling``) only settle time tells a complete file, so a
copy that pauses longer than the settle time can be ingested half-written, and the
writer then goes on writing into the file now in the library (the same inode). After
each ingest there, this task looks at the library file again: if its size or mtime
moved since it was hashed, it is identified again once it has settled and recorded
by the placement-time check's own code (:func:`placed.correct_placed`), so the index
says what the disk holds. Off polling, the placement-time check is enough: the kernel
reports a writer still holding the file, so it is never placed half-written.
"""
from __future__ import annotations

import logging
import os
import time

from hopper.app import queue
from hopper.app.library import index
from hopper.app.library.placed import correct_placed
from hopper.app.registry import task

log = logging.getLogger("hopper.library")

VERIFY_ROUNDS = 20          # a file still changing after this many settle times is left as is


def schedule(item_id: int, path: str, settle_time: float, rounds: int = 0) -> int | None:
    """Enqueue a check of the item at library ``path`` one settle time from now."""
    st = os.lstat(queue.client().settings.library_root / path)
    return queue.enqueue("library.verify", {"item_id": item_id, "mtime_ns": st.st_mtime_ns,
                                            "rounds": rounds},
                         delay=max(1.0, 2 * settle_time))


@task(name="library.verify", queue="library", max_attempts=3, backoff=1.0)
def library_verify(item_id: int, mtime_ns: int, rounds: int = 0) -> dict:
    """Hash the item's file again if it changed since ``mtime_ns``; follow it while it
    keeps changing (at most VERIFY_ROUNDS settle times)."""
    client = queue.client()
    settings, backend = client.settings, client.backend
    item = index.find_item(backend, item_id)
    if item is None:
        return {"status": "gone", "item_id": item_id}
    path = settings.library_root / item["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"status": "gone", "item_id": item_id}
    if st.st_size == item["size"] and st.st_mtime_ns == mtime_ns:
        return {"status": "unchanged", "item_id": item_id}
    if time.time() - st.st_mtime < settings.settle_time and rounds < VERIFY_ROUNDS:
        schedule(item_id, item["path"], settings.settle_time, rounds + 1)  # still written to
        return {"status": "changing", "item_id": item_id}
    changed = correct_placed(settings, backend, item)
    if changed is not None and changed.get("status") == "duplicate":
        return {"status": "duplicate", "item_id": item_id, "of": changed["item_id"]}
    if rounds < VERIFY_ROUNDS:
        schedule(item_id, item["path"], settings.settle_time, rounds + 1)  # writes may go on
    if changed is None:
        return {"status": "same content", "item_id": item_id}
    return {"status": "updated", "item_id": item_id, "sha256": changed["sha256"]}
