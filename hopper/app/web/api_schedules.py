"""``/api/schedules``: the recurring entries, their last and next slots; run, pause, resume."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

from hopper.app import scheduler
from hopper.app.web import inputs
from hopper.app.web.api_system import settings_in_force
from hopper.app.web.errors import not_found

bp = Blueprint("api_schedules", __name__)


def _client():
    return current_app.extensions["hopper"]


def _entries() -> tuple[dict, ...]:
    return scheduler.schedules_for(settings_in_force()[0])


def _entry_or_404(name: str) -> dict:
    name = inputs.check_text(name, "name")
    for entry in _entries():
        if entry["name"] == name:
            return entry
    raise not_found(f"no schedule entry {name!r}")


def _described(name: str) -> dict:
    return next(d for d in scheduler.describe(_client().backend, _entries()) if d["name"] == name)


@bp.get("/api/schedules")
def list_schedules():
    """Every entry: ``name``, ``cron`` or ``every``, ``args``, ``paused``, ``last_slot``,
    ``last_task_id``, ``next_slot``."""
    return jsonify(schedules=scheduler.describe(_client().backend, _entries()))


@bp.post("/api/schedules/<name>/run")
def run_schedule(name: str):
    """Enqueue the entry now (recorded as a slot at this moment); 201 with the task id."""
    entry = _entry_or_404(name)
    client = _client()
    task_id = scheduler.enqueue_entry(client.backend, entry, time.time())  # wakes a worker
    return jsonify(id=task_id, schedule=_described(entry["name"])), 201


@bp.post("/api/schedules/<name>/pause")
def pause_schedule(name: str):
    """Pause the entry for every daemon on this database."""
    entry = _entry_or_404(name)
    _client().backend.set_schedule_paused(entry["name"], True)
    return jsonify(_described(entry["name"]))


@bp.post("/api/schedules/<name>/resume")
def resume_schedule(name: str):
    """Resume the entry; its slots count again from now."""
    entry = _entry_or_404(name)
    _client().backend.set_schedule_paused(entry["name"], False)
    return jsonify(_described(entry["name"]))
