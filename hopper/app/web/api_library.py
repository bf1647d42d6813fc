"""``/api/library``: search the index, its timeline, one item, its thumbnail, large
preview and file (with HTTP Range requests, so a video player can seek)."""
from __future__ import annotations

import os
import stat

from flask import Blueprint, current_app, jsonify, request, send_file

from hopper.app.defaults import THUMBNAIL_MAX_AGE_S
from hopper.app.library import index
from hopper.app.library.labels import kind_label
from hopper.app.library.paths import thumbnails_dir
from hopper.app.library.periods import InvalidPeriod, period_end, period_start
from hopper.app.library.thumbnails import MIME as THUMBNAIL_MIME
from hopper.app.library.thumbnails import preview_path, thumbnail_path
from hopper.app.web import inputs
from hopper.app.web.errors import bad_request, not_found

bp = Blueprint("api_library", __name__)

# Thumbnails are named by content: the bytes behind a URL change only when the
# item's content does, so browsers may keep them (THUMBNAIL_MAX_AGE_S) without asking.


def _client():
    return current_app.extensions["hopper"]


def _period(name: str, bound) -> str | None:
    raw = inputs.query_text(name)
    if raw is None:
        return None
    try:
        return bound(raw)
    except InvalidPeriod as exc:
        raise bad_request(f"invalid {name}", str(exc)) from None


@bp.get("/api/library")
def search():
    """Indexed items, newest capture first, filtered by ``q`` (name), ``kind`` and
    ``taken_from`` / ``taken_to`` (a year, month, day or time; both inclusive)."""
    limit = inputs.query_limit()
    try:
        items = index.search_items(_client().backend, q=inputs.query_text("q"),
                                   kind=inputs.query_text("kind"), limit=limit + 1,
                                   cursor=inputs.query_int("cursor"),
                                   taken_from=_period("taken_from", period_start),
                                   taken_before=_period("taken_to", period_end))
    except index.CursorGone as exc:
        raise bad_request("invalid cursor", str(exc)) from None
    # One item beyond the page says whether another page exists.
    page = [_labelled(i) for i in items[:limit]]
    next_cursor = page[-1]["id"] if len(items) > limit else None
    return jsonify(items=page, next_cursor=next_cursor)


@bp.get("/api/library/timeline")
def timeline():
    """Item counts per year and month, newest first (optionally of one ``kind``)."""
    years: list[dict] = []
    total = 0
    for month, count in index.timeline(_client().backend, kind=inputs.query_text("kind")):
        year = int(month[:4])
        if not years or years[-1]["year"] != year:
            years.append({"year": year, "count": 0, "months": []})
        years[-1]["count"] += count
        years[-1]["months"].append({"month": int(month[5:7]), "count": count})
        total += count
    return jsonify(total=total, years=years)


def _labelled(item: dict) -> dict:
    item["label"] = kind_label(item["mime"], item["kind"])  # "PDF", "Word", "MP4"...
    return item


def _item_or_404(raw_id: str, with_duplicates: bool = False) -> dict:
    item_id = inputs.path_id(raw_id, "library item")
    lookup = index.get_item if with_duplicates else index.find_item
    found = lookup(_client().backend, item_id)
    if found is None:
        raise not_found(f"no library item {item_id}")
    return found


@bp.get("/api/library/<raw_id>")
def item(raw_id: str):
    """One indexed item with its duplicates."""
    return jsonify(_labelled(_item_or_404(raw_id, with_duplicates=True)))


def _picture(raw_id: str, where, what: str):
    found = _item_or_404(raw_id)
    path = where(thumbnails_dir(_client().settings), found["sha256"])
    if found["thumbnail"] != index.THUMBNAIL_READY or not path.is_file():
        state = "not made yet"
        if found["thumbnail"] == index.THUMBNAIL_NONE:
            state = found["thumbnail_reason"] or "none"
        raise not_found(f"no {what}", f"item {found['id']}: {state}")
    return send_file(path, mimetype=THUMBNAIL_MIME, max_age=THUMBNAIL_MAX_AGE_S)


@bp.get("/api/library/<raw_id>/thumbnail")
def thumbnail(raw_id: str):
    """The item's 320 px thumbnail; 404 (with the reason) while it is not made yet or
    when it has none."""
    return _picture(raw_id, thumbnail_path, "thumbnail")


@bp.get("/api/library/<raw_id>/preview")
def preview(raw_id: str):
    """The item's large (1,600 px) preview; 404 like the thumbnail."""
    return _picture(raw_id, preview_path, "preview")


@bp.get("/api/library/<raw_id>/file")
def original(raw_id: str):
    """The original file under its name in the library: a download, or shown in the
    browser with ``?inline=1``. Answers Range requests (206), so videos seek."""
    found = _item_or_404(raw_id)
    root = _client().settings.library_root
    try:
        # O_NOFOLLOW and a regular-file check: a symlink placed in the library by hand
        # must not serve whatever it points at.
        fd = os.open(root / found["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise not_found("file missing", f"{found['path']}: {exc.strerror}") from None
    stream = os.fdopen(fd, "rb")
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        stream.close()
        raise not_found("file missing", f"{found['path']} is not a regular file")
    inline = request.args.get("inline") in ("1", "true")
    response = send_file(stream, mimetype=found["mime"], as_attachment=not inline,
                         download_name=found["name"], max_age=0, etag=found["sha256"],
                         last_modified=st.st_mtime, conditional=False)
    # A file object carries no size, so Flask cannot answer ranges or conditionals by
    # itself: give it the size (the body is seekable, so a range reads only its bytes).
    response.content_length = st.st_size
    return response.make_conditional(request, accept_ranges=True, complete_length=st.st_size)
