"""The library index: ``library_items`` and ``library_duplicates`` (migrations 0002, and
0006 on SQLite / 0005 on PostgreSQL for the camera, thumbnail state and date indexes,
0011 for GPS, duration, pages, codec and the reason an item has no preview).

The web API reads it through :func:`search_items` and :func:`get_item`; the
pipeline writes it through the other functions. Each write is one short
transaction on the backend's connection.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from hopper.app.backends.protocols import Tables
from hopper.app.library.identify import Identity

ITEM_COLUMNS = ("id", "path", "name", "sha256", "mime", "kind", "size", "taken_at",
                "taken_at_source", "width", "height", "camera", "thumbnail", "source_name",
                "source_path", "source_mtime_ns", "created_at", "updated_at", "latitude",
                "longitude", "duration", "pages", "codec", "thumbnail_reason")
THUMBNAIL_PENDING = "pending"  # not made yet (NULL in the table)
THUMBNAIL_READY = "ready"    # the thumbnail and preview exist under data/thumbnails
THUMBNAIL_NONE = "none"      # not a visual kind, or cannot be decoded: none, ever (see reason)
VISUAL_KINDS = ("image", "video")
VISUAL_MIMES = ("application/pdf",)
_COLS = ", ".join(ITEM_COLUMNS)
MAX_LIMIT = 500


@dataclass(frozen=True)
class Source:
    """Where a file came from: its name and path relative to the inbox, and its mtime."""

    name: str
    path: str
    mtime_ns: int


def has_preview_kind(kind: str, mime: str) -> bool:
    """True for the contents a preview is made of: images, videos and PDFs."""
    return kind in VISUAL_KINDS or mime in VISUAL_MIMES


def _item(row: Iterable[Any]) -> dict:
    item = dict(zip(ITEM_COLUMNS, row, strict=True))
    item["thumbnail"] = item["thumbnail"] or THUMBNAIL_PENDING
    # A visual kind with no preview could not be decoded: pages say so from this
    # field, never from the reason's wording.
    item["previewable"] = has_preview_kind(item["kind"], item["mime"])
    return item


def _duplicates(backend: Tables, shas: list[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {sha: [] for sha in shas}
    if not shas:
        return out
    marks = ",".join("?" * len(shas))
    for sha, name, path, size, created in backend.fetch(
            "SELECT sha256, source_name, source_path, size, created_at FROM library_duplicates"
            f" WHERE sha256 IN ({marks}) ORDER BY id", shas):
        out[sha].append({"source_name": name, "source_path": path, "size": size,
                         "created_at": created})
    return out


class CursorGone(LookupError):
    """The item a page cursor points at is no longer indexed."""


def search_items(backend: Tables, q: str | None = None, kind: str | None = None, limit: int = 50,
                 cursor: int | None = None, taken_from: str | None = None,
                 taken_before: str | None = None) -> list[dict]:
    """Indexed items, newest capture first (ties: newest id first).

    ``q`` matches the name, source name or path (case-insensitive substring);
    ``kind`` filters exactly; ``taken_from`` (inclusive) and ``taken_before``
    (exclusive) bound ``taken_at`` as ISO text; ``cursor`` is the id of the last
    item of the previous page (CursorGone when that item was removed meanwhile).
    """
    clauses: list[str] = []
    params: list[Any] = []
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # lower() on both sides: LIKE is case-insensitive in SQLite, not in PostgreSQL.
        clauses.append("(lower(name) LIKE lower(?) ESCAPE '\\'"
                       " OR lower(source_name) LIKE lower(?) ESCAPE '\\'"
                       " OR lower(path) LIKE lower(?) ESCAPE '\\')")
        params += [pattern] * 3
    if kind:
        clauses.append("kind = ?")
        params.append(kind)
    if taken_from:
        clauses.append("taken_at >= ?")
        params.append(taken_from)
    if taken_before:
        clauses.append("taken_at < ?")
        params.append(taken_before)
    if cursor is not None:
        rows = backend.fetch("SELECT taken_at FROM library_items WHERE id = ?", (int(cursor),))
        if not rows:
            raise CursorGone(f"item {cursor} is no longer in the library;"
                             " start from the first page")
        # Row values keep the (taken_at, id) index usable on both engines.
        clauses.append("(taken_at, id) < (?, ?)")
        params += [rows[0][0], int(cursor)]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    limit = max(1, min(int(limit), MAX_LIMIT))
    items = [_item(r) for r in backend.fetch(
        f"SELECT {_COLS} FROM library_items {where} ORDER BY taken_at DESC, id DESC LIMIT ?",
        (*params, limit))]
    dups = _duplicates(backend, [i["sha256"] for i in items])
    for item in items:
        item["duplicates"] = dups[item["sha256"]]
    return items


def timeline(backend: Tables, kind: str | None = None) -> list[tuple[str, int]]:
    """``[("YYYY-MM", count), ...]`` newest month first, from the per-month counters the
    migration's triggers keep (a few hundred rows, whatever the library's size)."""
    where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
    rows = backend.fetch(
        f"SELECT month, sum(items) FROM library_months {where} GROUP BY month"
        " HAVING sum(items) > 0 ORDER BY month DESC", params)
    return [(month, int(count)) for month, count in rows]


def iter_items(backend: Tables, page: int = 1000) -> Iterator[dict]:
    """Every item in id order, read a page at a time (exports of any size)."""
    last = 0
    while True:
        rows = backend.fetch(f"SELECT {_COLS} FROM library_items WHERE id > ? ORDER BY id LIMIT ?",
                             (last, page))
        items = [_item(r) for r in rows]
        dups = _duplicates(backend, [i["sha256"] for i in items])
        for item in items:
            item["duplicates"] = dups[item["sha256"]]
            yield item
        if len(rows) < page:
            return
        last = items[-1]["id"]


def set_thumbnail(backend: Tables, sha256: str, state: str, reason: str | None = None) -> int:
    """Record the thumbnail state (and why there is none) of the item holding this
    content; rows changed."""
    with backend.transaction() as conn:
        return backend.run(conn, "UPDATE library_items SET thumbnail = ?, thumbnail_reason = ?"
                           " WHERE sha256 = ?", (state, reason, sha256)).rowcount


def indexed_shas(backend: Tables, shas: list[str]) -> set[str]:
    """Which of these contents have an item."""
    if not shas:
        return set()
    marks = ",".join("?" * len(shas))
    return {sha for (sha,) in backend.fetch(
        f"SELECT sha256 FROM library_items WHERE sha256 IN ({marks})", shas)}


def images_without_thumbnail(backend: Tables) -> list[str]:
    """Contents whose preview was never attempted (a partial index): images, videos, PDFs."""
    rows = backend.fetch("SELECT sha256 FROM library_items WHERE thumbnail IS NULL ORDER BY id")
    return [sha for (sha,) in rows]


def find_item(backend: Tables, item_id: int) -> dict | None:
    """One indexed item, or None (what serving its file or pictures needs)."""
    rows = backend.fetch(f"SELECT {_COLS} FROM library_items WHERE id = ?", (item_id,))
    return _item(rows[0]) if rows else None


def get_item(backend: Tables, item_id: int) -> dict | None:
    """One indexed item with its duplicate sources, or None."""
    item = find_item(backend, item_id)
    if item is not None:
        item["duplicates"] = _duplicates(backend, [item["sha256"]])[item["sha256"]]
    return item


def item_by_sha(backend: Tables, sha256: str) -> dict | None:
    """The item holding this content, or None."""
    rows = backend.fetch(f"SELECT {_COLS} FROM library_items WHERE sha256 = ?", (sha256,))
    return _item(rows[0]) if rows else None


def no_preview_reason(kind: str, mime: str) -> str | None:
    """Why content of this kind gets no preview at all (not a visual kind), else None."""
    if has_preview_kind(kind, mime):
        return None
    return f"no preview for {mime}"


def _values(path: str, name: str, identity: Identity, source: Source | None, now: float,
            created: float | None = None) -> tuple:
    reason = no_preview_reason(identity.kind, identity.mime)
    return (path, name, identity.sha256, identity.mime, identity.kind, identity.size,
            identity.taken_at.isoformat(), identity.taken_at_source, identity.width,
            identity.height, identity.camera, source.name if source else None,
            source.path if source else None, source.mtime_ns if source else None,
            now if created is None else created, now, identity.latitude, identity.longitude,
            identity.duration, identity.pages, identity.codec,
            THUMBNAIL_NONE if reason else None, reason)


_UPSERT = (
    "INSERT INTO library_items (path, name, sha256, mime, kind, size, taken_at, taken_at_source,"
    " width, height, camera, source_name, source_path, source_mtime_ns, created_at, updated_at,"
    " latitude, longitude, duration, pages, codec, thumbnail, thumbnail_reason)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (sha256) DO UPDATE SET path = excluded.path, name = excluded.name,"
    " mime = excluded.mime, kind = excluded.kind, size = excluded.size,"
    " taken_at = excluded.taken_at, taken_at_source = excluded.taken_at_source,"
    " width = excluded.width, height = excluded.height, camera = excluded.camera,"
    " latitude = excluded.latitude, longitude = excluded.longitude,"
    " duration = excluded.duration, pages = excluded.pages, codec = excluded.codec,"
    " source_name = COALESCE(library_items.source_name, excluded.source_name),"
    " source_path = COALESCE(library_items.source_path, excluded.source_path),"
    " source_mtime_ns = COALESCE(library_items.source_mtime_ns, excluded.source_mtime_ns),"
    " updated_at = excluded.updated_at"
    " RETURNING id"
)


def upsert_item(backend: Tables, path: str, identity: Identity, source: Source | None) -> int:
    """Record (or move) the item for this content at ``path``; return its id."""
    name = path.rsplit("/", 1)[-1]
    with backend.transaction() as conn:
        # A stale row for another content at this path (file replaced by hand) goes.
        backend.run(conn, "DELETE FROM library_items WHERE path = ? AND sha256 != ?",
                    (path, identity.sha256))
        return backend.run(conn, _UPSERT,
                           _values(path, name, identity, source, time.time())).fetchone()[0]


def replace_content(backend: Tables, item_id: int, identity: Identity) -> int:
    """The file of item ``item_id`` changed in place: record its new content and facts,
    keeping the id, path and drop origin; its preview is made again. Rows changed."""
    reason = no_preview_reason(identity.kind, identity.mime)
    with backend.transaction() as conn:
        return backend.run(
            conn, "UPDATE library_items SET sha256 = ?, mime = ?, kind = ?, size = ?,"
            " taken_at = ?, taken_at_source = ?, width = ?, height = ?, camera = ?,"
            " latitude = ?, longitude = ?, duration = ?, pages = ?, codec = ?, thumbnail = ?,"
            " thumbnail_reason = ?, updated_at = ? WHERE id = ?",
            (identity.sha256, identity.mime, identity.kind, identity.size,
             identity.taken_at.isoformat(), identity.taken_at_source, identity.width,
             identity.height, identity.camera, identity.latitude, identity.longitude,
             identity.duration, identity.pages, identity.codec,
             THUMBNAIL_NONE if reason else None, reason, time.time(), item_id)).rowcount


def add_duplicate(backend: Tables, sha256: str, source: Source, size: int) -> None:
    """Record a dropped copy of existing content (idempotent for the same drop)."""
    with backend.transaction() as conn:
        backend.run(
            conn, "INSERT INTO library_duplicates (sha256, source_name, source_path,"
            " source_mtime_ns, size, created_at) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (sha256, source.name, source.path, source.mtime_ns, size, time.time()))


def indexed_paths(backend: Tables) -> dict[str, tuple[int, str, int, float]]:
    """Every indexed path, in one read: {path: (id, sha256, size, updated_at)}."""
    rows = backend.fetch("SELECT path, id, sha256, size, updated_at FROM library_items")
    return {path: (item_id, sha, size, updated) for path, item_id, sha, size, updated in rows}


def delete_items(backend: Tables, item_ids: list[int]) -> int:
    """Forget items whose files are gone; their duplicate records stay (keyed by content)."""
    if not item_ids:
        return 0
    marks = ",".join("?" * len(item_ids))
    with backend.transaction() as conn:
        return backend.run(conn, f"DELETE FROM library_items WHERE id IN ({marks})",
                           list(item_ids)).rowcount


def replace_all(backend: Tables, entries: list[tuple[str, Identity, Source | None]]) -> int:
    """Swap the whole item table for ``entries`` in one transaction (benchmarks' fixtures;
    ``library reindex`` keeps ids through :mod:`hopper.app.library.index_rebuild`)."""
    now = time.time()
    with backend.transaction() as conn:
        backend.run(conn, "DELETE FROM library_items")
        backend.run_many(conn, _UPSERT.rsplit(" RETURNING", 1)[0],
                         [_values(path, path.rsplit("/", 1)[-1], identity, source, now)
                          for path, identity, source in entries])
    return len(entries)


def sources_by_sha(backend: Tables) -> dict[str, tuple[str, str, int]]:
    """Known drop origins per content, kept across a reindex: {sha: (name, path, mtime_ns)}."""
    rows = backend.fetch(
        "SELECT sha256, source_name, source_path, source_mtime_ns FROM library_items"
        " WHERE source_path IS NOT NULL")
    return {sha: (name, path, mtime) for sha, name, path, mtime in rows}
