"""Library pipeline tasks: ``library.ingest``, ``library.scan``, ``library.index``,
``library.thumbnail`` and ``library.export``."""
from __future__ import annotations

import logging
import re
import traceback

from hopper.app import queue
from hopper.app.backends.base import ATTEMPT_LOST, ATTEMPT_TIMEOUT
from hopper.app.defaults import EXPORT_TIMEOUT_S, THUMBNAIL_TIMEOUT_S
from hopper.app.library import export, index
from hopper.app.library import ingest as ingest_mod
from hopper.app.library.inbox import (
    OutsideInbox,
    excluded_folders,
    inbox_rules,
    ingest_request,
    printable,
    resolve_source,
    walk,
)
from hopper.app.library.paths import thumbnails_dir
from hopper.app.library.reindex import reconcile
from hopper.app.library.thumbnails import (
    Undecodable,
    make_previews,
    preview_path,
    prune_orphans,
    thumbnail_path,
)
from hopper.app.registry import task

log = logging.getLogger("hopper.library")

INGEST_MAX_ATTEMPTS = 3
INGEST_TIMEOUT_S = 3600.0     # the last line of defence; identify never reads unbounded headers
ENQUEUE_CHUNK = 1000
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        log.error("library.ingest %s: earlier attempts never returned (%s)", printable(path),
                  poison)
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
    if result["status"] == "ingested" and index.has_preview_kind(result.get("kind", ""),
                                                                 result.get("mime", "")):
        enqueue_thumbnails([result["sha256"]])
    if result["status"] == "ingested" and settings.library_polling and "library_path" in result:
        # Settle time alone decided the file was complete: look again once it has passed.
        from hopper.app.library import verify

        result["verify_task"] = verify.schedule(result["item_id"], result["library_path"],
                                                settings.settle_time)
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
                for path, st in walk(start, excluded_folders(settings), inbox_rules(settings))]
    for i in range(0, len(requests), ENQUEUE_CHUNK):
        queue.enqueue_many(requests[i:i + ENQUEUE_CHUNK])
    return {"files": len(requests), "folder": folder or "."}


@task(name="library.index", queue="library", max_attempts=3, backoff=2.0)
def library_index(parent_id: int | None = None, parent_status: str | None = None) -> dict:
    """After a scan: reconcile the index with the library folder (index unindexed
    files, forget vanished ones, sweep crashed copies' temp files), queue the
    thumbnails images lack and remove those of contents no longer indexed."""
    settings, backend = _context()
    summary = reconcile(settings, backend)
    summary["thumbnails_queued"] = enqueue_thumbnails(index.images_without_thumbnail(backend))
    summary["thumbnails_removed"] = prune_orphans(
        thumbnails_dir(settings), lambda shas: index.indexed_shas(backend, shas))
    return {"scan_task": parent_id, "scan_status": parent_status, **summary}


def enqueue_thumbnails(shas: list[str]) -> int:
    """Queue ``library.thumbnail`` for these contents (once each while unfinished)."""
    requests = [{"name": "library.thumbnail", "args": {"sha256": sha},
                 "unique_key": f"library.thumbnail:{sha}"} for sha in shas]
    for i in range(0, len(requests), ENQUEUE_CHUNK):
        queue.enqueue_many(requests[i:i + ENQUEUE_CHUNK])
    return len(requests)


@task(name="library.thumbnail", queue="library", max_attempts=3, backoff=2.0,
      timeout=THUMBNAIL_TIMEOUT_S)
def library_thumbnail(sha256: str) -> dict:
    """Make the thumbnail and large preview of the item holding this content (an image,
    a video's frame from a tenth of the way in, a PDF's first page).

    The task succeeds either way; ``result.thumbnail`` says ``ready`` or ``none`` with
    the ``reason``. A file that cannot be decoded gets none: the item is marked so and
    stays in the library. So does a file whose every attempt failed or whose earlier
    attempts hung or killed their worker, so nothing is retried forever.
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
    settings, backend = _context()
    item = index.item_by_sha(backend, sha256)
    if item is None:
        return {"status": "missing", "sha256": sha256}
    reason = index.no_preview_reason(item["kind"], item["mime"])
    if reason is not None:
        return _no_preview(backend, item, reason)
    folder = thumbnails_dir(settings)
    thumb, preview = thumbnail_path(folder, sha256), preview_path(folder, sha256)
    if thumb.is_file() and preview.is_file():  # made before, e.g. before a reindex
        index.set_thumbnail(backend, sha256, index.THUMBNAIL_READY)
        return {"status": "ready", "thumbnail": "ready", "item_id": item["id"], "reused": True}
    row = _current_row()
    reason = _poison_error(row)
    if reason is None:
        try:
            width, height = make_previews(settings.library_root / item["path"], item["mime"],
                                          item["kind"], thumb, preview)
        except Undecodable as exc:
            reason = f"cannot be decoded: {exc}"
        except FileNotFoundError:
            return {"status": "missing", "sha256": sha256, "item_id": item["id"]}
        except Exception as exc:  # retried; the last attempt records that there is none
            if not _is_last_attempt(row):
                raise
            reason = printable("".join(traceback.format_exception_only(exc)).strip())
        else:
            index.set_thumbnail(backend, sha256, index.THUMBNAIL_READY)
            return {"status": "ready", "thumbnail": "ready", "item_id": item["id"],
                    "width": width, "height": height}
    log.warning("no thumbnail for %s: %s", printable(item["path"]), reason)
    return _no_preview(backend, item, printable(reason))


def _no_preview(backend, item: dict, reason: str) -> dict:
    index.set_thumbnail(backend, item["sha256"], index.THUMBNAIL_NONE, reason)
    return {"status": "none", "thumbnail": "none", "reason": reason, "item_id": item["id"]}


@task(name="library.export", queue="library", max_attempts=3, backoff=2.0,
      timeout=EXPORT_TIMEOUT_S)
def library_export() -> dict:
    """Write the index as CSV under ``data/artifacts/``; the artifact is its path there.

    On the library queue: the file must be written where the web server serving
    ``/api/tasks/<id>/artifact`` can read it, which is a ``serve`` daemon.
    """
    settings, backend = _context()
    name = export.export_name(queue.current_task_id())
    rows = export.write_csv(backend, settings.artifacts_dir, name)
    return {"artifact": name, "rows": rows}
