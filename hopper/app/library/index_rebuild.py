"""Rebuilding the item table from the files found under the root, keeping ids.

Links to ``/library/<id>`` must survive ``library reindex``: a found file keeps the
id and added time of the row that had its path, else of the row that had its
content (a file moved by hand); only rows whose file is gone are deleted. All of
it is one transaction, so readers see the old index or the new one.
"""
from __future__ import annotations

import time

from hopper.app.backends.protocols import Tables
from hopper.app.library.identify import Identity
from hopper.app.library.index import _UPSERT, THUMBNAIL_NONE, Source, _values

Entry = tuple[str, Identity, Source | None]
_ROW = ("id", "path", "sha256", "created_at", "thumbnail", "thumbnail_reason",
        "source_name", "source_path", "source_mtime_ns")
_UPDATE = (
    "UPDATE library_items SET path = ?, name = ?, sha256 = ?, mime = ?, kind = ?, size = ?,"
    " taken_at = ?, taken_at_source = ?, width = ?, height = ?, camera = ?, source_name = ?,"
    " source_path = ?, source_mtime_ns = ?, created_at = ?, updated_at = ?, latitude = ?,"
    " longitude = ?, duration = ?, pages = ?, codec = ?, thumbnail = ?, thumbnail_reason = ?"
    " WHERE id = ?")
CHUNK = 500


def _match(rows: list[dict], entries: list[Entry]) -> tuple[list[tuple[dict, Entry]], list[Entry]]:
    """Pair each entry with the row of its path, then of its content; the rest are new."""
    by_path = {r["path"]: r for r in rows}
    by_sha = {r["sha256"]: r for r in rows}
    used: set[int] = set()
    matched: list[tuple[dict, Entry]] = []
    pending: list[Entry] = []
    for entry in entries:
        row = by_path.get(entry[0])
        if row is not None and row["id"] not in used:
            used.add(row["id"])
            matched.append((row, entry))
        else:
            pending.append(entry)
    new: list[Entry] = []
    for entry in pending:
        row = by_sha.get(entry[1].sha256)
        if row is not None and row["id"] not in used:
            used.add(row["id"])
            matched.append((row, entry))
        else:
            new.append(entry)
    return matched, new


def _update_values(row: dict, entry: Entry, now: float) -> tuple:
    path, identity, source = entry
    if source is None and row["source_path"] is not None:
        source = Source(row["source_name"], row["source_path"], row["source_mtime_ns"])
    values = list(_values(path, path.rsplit("/", 1)[-1], identity, source, now,
                          created=row["created_at"]))
    if row["sha256"] == identity.sha256 and values[-2] != THUMBNAIL_NONE:
        values[-2:] = [row["thumbnail"], row["thumbnail_reason"]]  # the same content's preview
    return (*values, row["id"])


def rebuild(backend: Tables, entries: list[Entry]) -> dict:
    """Make the item table hold exactly ``entries`` (path, identity, drop origin or None),
    keeping the id and added time of every entry matched to a row by path or content.
    Returns ``{"indexed", "kept", "added", "removed"}``."""
    now = time.time()
    rows = [dict(zip(_ROW, r, strict=True)) for r in backend.fetch(
        f"SELECT {', '.join(_ROW)} FROM library_items")]
    matched, new = _match(rows, entries)
    kept_ids = {row["id"] for row, _ in matched}
    gone = [r["id"] for r in rows if r["id"] not in kept_ids]
    moving = [row["id"] for row, (path, identity, _) in matched
              if (row["path"], row["sha256"]) != (path, identity.sha256)]
    with backend.transaction() as conn:
        for i in range(0, len(gone), CHUNK):
            chunk = gone[i:i + CHUNK]
            marks = ",".join("?" * len(chunk))
            backend.run(conn, f"DELETE FROM library_items WHERE id IN ({marks})", chunk)
        # Paths and contents are unique: park the rows that change either under names no
        # file can have first, so swapping two files' names never collides midway.
        backend.run_many(conn, "UPDATE library_items SET path = ?, sha256 = ? WHERE id = ?",
                         [(f"//reindex/{i}", f"reindex-{i}", i) for i in moving])
        backend.run_many(conn, _UPDATE, [_update_values(row, entry, now)
                                         for row, entry in matched])
        backend.run_many(conn, _UPSERT.rsplit(" RETURNING", 1)[0],
                         [_values(path, path.rsplit("/", 1)[-1], identity, source, now)
                          for path, identity, source in new])
    return {"indexed": len(entries), "kept": len(matched), "added": len(new),
            "removed": len(gone)}
