"""Library pipeline tasks: ``library.ingest``, ``library.scan`` and ``library.index``."""
from __future__ import annotations

import logging
import traceback

from hopper.app import queue
from hopper.app.backends.base import ATTEMPT_LOST, ATTEMPT_TIMEOUT
from hopper.app.library import ingest as ingest_mod
from hopper.app.library.inbox import OutsideInbox, printable, excluded_folders, ingest_request, resolve_source, walk
from hopper.app.library.reindex import reconcile
from hopper.app.registry import task

log = logging.getLogger("hopper.library")

INGEST_MAX_ATTEMPTS = 3
INGEST_TIMEOUT_S = 3600.0     # the last line of defence; identify never reads unbounded headers
ENQUEUE_CHUNK = 1000


def _context():
    c = queue.client()
    return c.settings, c.backend


# How an attempt ends when it never returned: the file may be what hangs or
# kills a worker (a decompression bomb, a parser crash).
NO_RETURN_KINDS = (ATTEMPT_TIMEOUT, ATTEMPT_LOST)


def _current_row() -> dict | None:
    task_id = queue.current_task_id()
    return queue.client().backend.get(task_id) if task_id is not None else None


def _is_last_attempt(row: dict | None) -> bool:
    return row is None or row["attempts"] >= row["max_attempts"]


def _poison_error(row: dict | None) -> str | None:
    """On the last attempt, the previous attempt's error if that attempt hung or died
    with the file in hand: such a file is quarantined instead of tried once more."""
    if not _is_last_attempt(row) or row is None or row["attempts"] < 2:
        return None
    previous = [h for h in row["history"] if h["attempt"] == row["attempts"] - 1]
    if previous and previous[-1]["kind"] in NO_RETURN_KINDS:
        return previous[-1]["error"]
    return None


@task(name="library.ingest", queue="library", max_attempts=INGEST_MAX_ATTEMPTS, backoff=1.0,
      timeout=INGEST_TIMEOUT_S)
def library_ingest(path: str) -> dict:
    """Identify, deduplicate, organize and index one inbox file.

    A failure is retried; the last failing attempt quarantines the file with the
    error as its reason, so a file is never left failing silently. A file whose
    earlier attempts timed out or killed their worker is quarantined by the last
    attempt before it is read again.
    """
    settings, backend = _context()
    row = _current_row()  # attempts and the last error: fixed for this attempt
    poison = _poison_error(row)
    if poison is not None:
        log.error("library.ingest %s: earlier attempts never returned (%s)", printable(path), poison)
        return ingest_mod.quarantine_after_failures(settings, path, poison)
    try:
        result = ingest_mod.ingest(settings, backend, path)
    except OutsideInbox:
        raise  # not a dropped file: refuse to touch it, and say so in the task's error
    except Exception as exc:  # any failure: retried, and on the last attempt quarantined
        if not _is_last_attempt(row):
            # Re-raised with a printable text: an undecodable file name in the message
            # could not be stored as the task's error.
            raise RuntimeError(printable(traceback.format_exc())) from None
        error = printable("".join(traceback.format_exception_only(exc)).strip())
        log.error("library.ingest %s failed its last attempt: %s", printable(path), error)
        return ingest_mod.quarantine_after_failures(settings, path, error)
    if result["status"] == "folder":
        result["scan_task"] = queue.enqueue("library.scan", {"folder": result["path"]},
                                            unique_key=f"library.scan:{result['path']}")
    return result


@task(name="library.scan", queue="library", max_attempts=3, backoff=1.0,
      continuation="library.index")
def library_scan(folder: str | None = None) -> dict:
    """Enqueue one ``library.ingest`` child per file in the inbox (or one folder of it).

    The children's unique keys (path, size, mtime) make a file already queued
    by the watcher count once; this task's progress is its children done/total,
    and ``library.index`` runs once when the last child finishes.
    """
    settings, _ = _context()
    inbox = settings.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    start = resolve_source(inbox, folder) if folder else inbox
    parent = queue.current_task_id()
    requests = [ingest_request(inbox, path, st, parent_id=parent)
                for path, st in walk(start, excluded_folders(settings))]
    for i in range(0, len(requests), ENQUEUE_CHUNK):
        queue.enqueue_many(requests[i:i + ENQUEUE_CHUNK])
    return {"files": len(requests), "folder": folder or "."}


@task(name="library.index", queue="library", max_attempts=3, backoff=2.0)
def library_index(parent_id: int | None = None, parent_status: str | None = None) -> dict:
    """After a scan: reconcile the index with the library folder (index unindexed
    files, forget vanished ones, sweep crashed copies' temp files)."""
    settings, backend = _context()
    summary = reconcile(settings, backend)
    return {"scan_task": parent_id, "scan_status": parent_status, **summary}
