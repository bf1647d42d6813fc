"""The library browser's pages: ``/library`` (timeline, search, thumbnail grid) and
``/library/<id>`` (one item). The views in ``ui.py`` call these.

The first page of the grid and the timeline are rendered here, so the browser
works without JavaScript; ``library.js`` adds "load more" from the API and the
export button. Nothing here writes: every state change goes through the API.
"""
from __future__ import annotations

import calendar
import datetime as dt

from flask import abort, current_app, render_template, request

from hopper.app.defaults import LIBRARY_PAGE_SIZE as PAGE_SIZE
from hopper.app.library import index
from hopper.app.library.labels import kind_label, shows_in_browser
from hopper.app.library.periods import InvalidPeriod, period_end, period_start
from hopper.app.web import inputs
from hopper.app.web.errors import ApiError

KINDS = ("image", "video", "audio", "document", "other")
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def human_size(size: int | None) -> str:
    """``1536`` → ``1.5 KiB``."""
    if size is None:
        return "—"
    value, unit = float(size), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{int(value)} bytes" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def taken(taken_at: str | None) -> str:
    """``2021-03-04T05:06:07`` → ``2021-03-04 05:06``."""
    return taken_at.replace("T", " ")[:16] if taken_at else "—"


def duration(seconds: float | None) -> str:
    """``75.4`` → ``1:15``; ``3725`` → ``1:02:05``."""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def position(latitude: float, longitude: float) -> str:
    """``48.8584, 2.2945`` → ``48.85840° N, 2.29450° E``."""
    return (f"{abs(latitude):.5f}° {'N' if latitude >= 0 else 'S'},"
            f" {abs(longitude):.5f}° {'E' if longitude >= 0 else 'W'}")


TAKEN_SOURCES = {"exif:DateTimeOriginal": "the camera's capture time (EXIF)",
                 "exif:DateTime": "the EXIF date",
                 "video:creation_time": "the video's creation time",
                 "pdf:CreationDate": "the PDF's creation date",
                 "mtime": "the file's modification time",
                 "ingest": "the time it was ingested (its own dates were in the future)"}


def _filters() -> dict:
    args = request.args
    kind = args.get("kind") or ""
    return {"q": (args.get("q") or "").strip(), "kind": kind if kind in KINDS else "",
            "taken_from": (args.get("taken_from") or "").strip(),
            "taken_to": (args.get("taken_to") or "").strip()}


def _timeline(backend, filters: dict) -> list[dict]:
    """Years (newest first) with their months, each with its filter link values."""
    years: list[dict] = []
    for month, count in index.timeline(backend):
        year, number = int(month[:4]), int(month[5:7])
        if not years or years[-1]["year"] != year:
            years.append({"year": year, "count": 0, "months": [],
                          "from": f"{year:04d}-01-01", "to": f"{year:04d}-12-31"})
        last_day = calendar.monthrange(year, number)[1]
        entry = {"month": number, "name": calendar.month_name[number], "count": count,
                 "from": f"{month}-01", "to": f"{month}-{last_day:02d}"}
        entry["current"] = (filters["taken_from"], filters["taken_to"]) == (entry["from"],
                                                                             entry["to"])
        years[-1]["months"].append(entry)
        years[-1]["count"] += count
    for shown in years:
        shown["current"] = (filters["taken_from"], filters["taken_to"]) == (shown["from"],
                                                                            shown["to"])
        shown["open"] = shown["current"] or any(m["current"] for m in shown["months"])
    if years and not any(y["open"] for y in years):
        years[0]["open"] = True
    return years


def library_page():
    """The grid page; a bad date shows its error with a 400 and an empty grid."""
    backend = current_app.extensions["hopper"].backend
    filters = _filters()
    error, items, next_cursor, status, limit = None, [], None, 200, PAGE_SIZE
    try:
        limit = inputs.query_int("limit", PAGE_SIZE, 1, inputs.MAX_LIMIT)
        cursor = inputs.query_int("cursor")
        start, end = filters["taken_from"], filters["taken_to"]
        bounds = {"taken_from": period_start(start) if start else None,
                  "taken_before": period_end(end) if end else None}
        rows = index.search_items(backend, q=filters["q"] or None, kind=filters["kind"] or None,
                                  limit=limit + 1, cursor=cursor, **bounds)
        items = rows[:limit]
        next_cursor = items[-1]["id"] if len(rows) > limit else None
    except (InvalidPeriod, index.CursorGone) as exc:
        error, status = str(exc), 400
    except ApiError as exc:
        error, status = str(exc.detail), 400
    timeline = _timeline(backend, filters)
    total = sum(y["count"] for y in timeline)
    active = {k: v for k, v in filters.items() if v}
    return render_template("library.html", items=items, next_cursor=next_cursor, total=total,
                           filters=filters, active=active, kinds=KINDS, timeline=timeline,
                           error=error, page_size=limit, human_size=human_size,
                           taken=taken, kind_label=kind_label, duration=duration), status


def item_page(item_id: int):
    """One item: large preview (a player for videos), metadata, duplicates, download."""
    found = None
    if item_id <= inputs.INT64_MAX:
        found = index.get_item(current_app.extensions["hopper"].backend, item_id)
    if found is None:
        abort(404, f"no library item {item_id}")
    added = dt.datetime.fromtimestamp(found["created_at"]).isoformat(sep=" ", timespec="minutes")
    return render_template("library_item.html", item=found, added=added, human_size=human_size,
                           taken=taken, taken_source=TAKEN_SOURCES.get(found["taken_at_source"],
                                                                       "unknown"),
                           kind_label=kind_label, duration=duration, position=position,
                           full_size=shows_in_browser(found["mime"]))
