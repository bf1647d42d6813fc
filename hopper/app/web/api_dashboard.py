"""``POST /api/tasks/bulk`` and ``GET /api/throughput``: what the dashboard's
bulk actions and charts call."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

from hopper.app.backends.base import STATUSES
from hopper.app.backends.task_queries import BULK_ACTIONS, BULK_LIMIT
from hopper.app.web import inputs
from hopper.app.web.errors import bad_request

bp = Blueprint("api_dashboard", __name__)

FILTER_KEYS = ("status", "name", "queue", "q")
MAX_THROUGHPUT_MINUTES = 1440


def _backend():
    return current_app.extensions["hopper"].backend


def _bulk_ids(body: dict) -> list[int] | None:
    ids = body.get("ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not ids or len(ids) > BULK_LIMIT:
        raise bad_request("invalid ids", f"ids must be a list of 1 to {BULK_LIMIT} task ids")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= inputs.INT64_MAX
           for i in ids):
        raise bad_request("invalid ids", "each id must be a positive integer")
    return sorted(set(ids), reverse=True)


def _bulk_filter(body: dict) -> dict | None:
    raw = body.get("filter")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request("invalid filter",
                          f"filter must be an object with {', '.join(FILTER_KEYS)}")
    unknown = sorted(set(raw) - set(FILTER_KEYS))
    if unknown:
        raise bad_request("invalid filter", f"unknown filter key(s): {', '.join(unknown)}")
    given = {k: inputs.field_text(raw, k, 500) for k in FILTER_KEYS}
    chosen = {k: v for k, v in given.items() if v is not None}
    if any("\x00" in v for v in chosen.values()):
        raise bad_request("invalid filter", "filter text cannot contain NUL characters")
    if not chosen:
        # "Everything" is never the meaning of an empty filter (sidekiq #3243).
        raise bad_request("empty filter", f"name at least one of {', '.join(FILTER_KEYS)}")
    if chosen.get("status") is not None and chosen["status"] not in STATUSES:
        raise bad_request("invalid filter", f"status must be one of {', '.join(STATUSES)}")
    return chosen


@bp.post("/api/tasks/bulk")
def bulk():
    """Retry, cancel or delete the given tasks or those matching a filter."""
    body = inputs.json_body()
    if not isinstance(body, dict):
        raise bad_request("invalid request", "the body must be a JSON object")
    unknown = sorted(set(body) - {"action", "ids", "filter", "dry_run"})
    if unknown:
        raise bad_request("unknown field", f"unknown field(s): {', '.join(unknown)}")
    action = body.get("action")
    if not isinstance(action, str) or action not in BULK_ACTIONS:
        raise bad_request("invalid action", f"action must be one of {', '.join(BULK_ACTIONS)}")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("invalid dry_run", "dry_run must be true or false")
    ids, filter_ = _bulk_ids(body), _bulk_filter(body)
    if (ids is None) == (filter_ is None):
        raise bad_request("invalid selection", "give either ids or filter, not both")
    result = _backend().bulk(action, ids=ids, filter=filter_, dry_run=dry_run)  # wakes workers
    return jsonify(**result, limit=BULK_LIMIT)


@bp.get("/api/throughput")
def throughput():
    """Per minute and queue over the last ``minutes`` (default 60): tasks
    succeeded, failed, picked up, and the mean pickup latency in milliseconds."""
    minutes = inputs.query_int("minutes", 60, 1, MAX_THROUGHPUT_MINUTES)
    now = time.time()
    rows = _backend().minutes(now - minutes * 60)
    for row in rows:
        picked = row["picked"]
        row["pickup_ms"] = round(row.pop("pickup_sum") / picked * 1000, 2) if picked else None
    return jsonify(minutes=rows, window_minutes=minutes, now=now)
