"""``/api/queues``: what each queue holds and does, and pausing or resuming one."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from hopper.app import queue as queue_mod
from hopper.app import settings as settings_mod
from hopper.app.defaults import QUEUE_THROUGHPUT_MINUTES
from hopper.app.web.api_system import settings_in_force
from hopper.app.web.errors import bad_request

bp = Blueprint("api_queues", __name__)
log = logging.getLogger("hopper.web")

ACTIONS = ("pause", "resume")


def _backend():
    return current_app.extensions["hopper"].backend


def queue_overview() -> dict[str, dict]:
    """Per queue: counts by status, running, this daemon's concurrency, paused,
    and tasks finished per minute over the last QUEUE_THROUGHPUT_MINUTES."""
    backend = _backend()
    counts, paused = backend.counts(), backend.paused_queues()
    throughput = backend.queue_throughput(QUEUE_THROUGHPUT_MINUTES)
    limits = settings_in_force()[0].queue_limits
    out = {}
    for name in sorted({*counts, *paused, *limits}):
        minutes = throughput.get(name, [])
        out[name] = {
            "counts": counts.get(name, {}),
            "running": counts.get(name, {}).get("running", 0),
            "concurrency": limits.get(name),
            "paused": name in paused,
            "paused_at": paused.get(name),
            "throughput": {
                "succeeded_per_minute": _per_minute(minutes, "succeeded"),
                "failed_per_minute": _per_minute(minutes, "failed"),
                "minutes": minutes,
            },
        }
    return out


def _per_minute(minutes: list[dict], status: str) -> float:
    return round(sum(m[status] for m in minutes) / QUEUE_THROUGHPUT_MINUTES, 3)


@bp.get("/api/queues")
def queues():
    """Every queue that has tasks, is paused or has a concurrency here."""
    return jsonify(queues=queue_overview(), window_minutes=QUEUE_THROUGHPUT_MINUTES)


@bp.post("/api/queues/<name>/<action>")
def pause_or_resume(name: str, action: str):
    """Pause or resume a queue for every daemon on this database."""
    if action not in ACTIONS:
        raise bad_request("unknown queue action",
                          f"use POST /api/queues/<name>/pause or /resume, not {action!r}")
    try:
        settings_mod.check_queue_name(name)
    except settings_mod.SettingsError as exc:
        raise bad_request("invalid queue name", str(exc)) from None
    if action == "pause":
        changed = queue_mod.pause_queue(name)
    else:
        changed = queue_mod.resume_queue(name)
    if changed:
        log.info("queue %s %s", name, "paused" if action == "pause" else "resumed")
    return jsonify(name=name, paused=action == "pause", changed=changed)
