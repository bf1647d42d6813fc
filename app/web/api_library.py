"""``/api/library``: search the library index and read one item."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from hopper.app.library import index
from hopper.app.web import inputs
from hopper.app.web.errors import not_found

bp = Blueprint("api_library", __name__)


@bp.get("/api/library")
def search():
    """Indexed items, newest first, filtered by ``q`` (text) and ``kind``."""
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
    found = index.get_item(current_app.extensions["hopper"].backend, item_id)
    if found is None:
        raise not_found(f"no library item {item_id}")
    return jsonify(found)
