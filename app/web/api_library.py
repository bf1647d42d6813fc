"""``/api/library``: search the library index and read one item.

The index lives in ``app.library.index`` (table ``library_items``). It is
imported inside the views so the rest of the API keeps working, and these two
endpoints answer 503, when that module is missing or fails to import.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from app.web import inputs
from app.web.errors import ApiError, not_found

bp = Blueprint("api_library", __name__)
log = logging.getLogger("hopper.web")


def library_index():
    """The library index module; ApiError 503 when it cannot be imported."""
    try:
        from app.library import index
    except ImportError as exc:
        log.warning("library index unavailable: %s", exc)
        raise ApiError(503, "library index unavailable", str(exc)) from None
    return index


@bp.get("/api/library")
def search():
    """Indexed items, newest first, filtered by ``q`` (text) and ``kind``."""
    index = library_index()
    limit = inputs.query_limit()
    items = index.search_items(current_app.extensions["hopper"].backend,
                               q=inputs.query_text("q"), kind=inputs.query_text("kind"),
                               limit=limit + 1, cursor=inputs.query_int("cursor"))
    # One item beyond the page says whether another page exists.
    page = items[:limit]
    next_cursor = page[-1]["id"] if len(items) > limit else None
    return jsonify(items=page, next_cursor=next_cursor)


@bp.get("/api/library/<raw_id>")
def item(raw_id: str):
    """One indexed item."""
    item_id = inputs.path_id(raw_id, "library item")
    found = library_index().get_item(current_app.extensions["hopper"].backend, item_id)
    if found is None:
        raise not_found(f"no library item {item_id}")
    return jsonify(found)
