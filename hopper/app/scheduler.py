"""Recurring tasks from the ``schedules`` setting: each slot enqueued exactly once.

A slot is the due time of an entry: for ``every: 30s`` the multiples of 30 s
since the Unix epoch, for ``cron`` the cron times (UTC). When an entry's latest
slot has come, the scheduler claims ``(name, slot)`` in the database in the same
transaction as the enqueue, so however many daemons share the database, a slot
is enqueued once. Slots missed while no daemon ran collapse into one: only the
latest due slot runs, once, at the next start. A paused entry (recorded in the
database, for every daemon) enqueues nothing; once resumed, its slots count
again from that moment.
"""
from __future__ import annotations

import logging
import math
import time

from hopper.app import defaults, plugins, queue
from hopper.app.backends.base import Backend
from hopper.app.settings import Settings, parse_duration

log = logging.getLogger("hopper.scheduler")


def latest_slot(entry: dict, now: float) -> float:
    """The latest slot of ``entry`` at or before ``now``."""
    if "every" in entry:
        interval = parse_duration(entry["every"])
        return math.floor(now / interval) * interval
    from croniter import croniter  # only cron entries need it; it costs ~50 ms to import

    previous = croniter(str(entry["cron"]), now).get_prev(float)
    candidate = croniter(str(entry["cron"]), previous).get_next(float)
    return candidate if candidate <= now else previous


def next_slot(entry: dict, now: float) -> float:
    """The first slot of ``entry`` after ``now``."""
    if "every" in entry:
        interval = parse_duration(entry["every"])
        return math.floor(now / interval) * interval + interval
    from croniter import croniter

    return croniter(str(entry["cron"]), now).get_next(float)


def is_due(entry: dict, mark: dict | None, now: float) -> float | None:
    """The slot to enqueue now, or None (paused, already done, or before ``since``)."""
    if mark is None or mark["paused"]:
        return None
    slot = latest_slot(entry, now)
    if slot < mark["since"]:
        return None
    if mark["last_slot"] is not None and slot <= mark["last_slot"]:
        return None
    return slot


def enqueue_entry(backend: Backend, entry: dict, slot: float) -> int | None:
    """Enqueue one slot of an entry unless some daemon did already; the task id or None."""
    task = queue.build_task(entry["name"], entry.get("args") or {})
    return backend.enqueue_slot(entry["name"], slot, task)


def describe(backend: Backend, entries: tuple[dict, ...], now: float | None = None) -> list[dict]:
    """The entries as ``GET /api/schedules`` shows them."""
    now = time.time() if now is None else now
    marks = backend.schedule_marks()
    out = []
    for entry in entries:
        mark = marks.get(entry["name"]) or {}
        kind = {"cron": str(entry["cron"])} if "cron" in entry else {
            "every": parse_duration(entry["every"])}
        out.append({"name": entry["name"], **kind, "args": entry.get("args") or {},
                    "paused": bool(mark.get("paused", False)),
                    "last_slot": mark.get("last_slot"), "last_task_id": mark.get("last_task_id"),
                    "next_slot": next_slot(entry, now)})
    return out


def schedules_for(settings: Settings) -> tuple[dict, ...]:
    """The user's schedules plus those plugins add (a user's entry of the same name wins)."""
    return (*settings.schedules, *plugins.schedules(settings))


class Scheduler:
    """Enqueues due slots when ``tick()`` is called; ``wait_s`` says when to call it next."""

    def __init__(self, backend: Backend, entries: tuple[dict, ...]):
        self.backend = backend
        self.entries: tuple[dict, ...] = ()
        self._registered: set[str] = set()
        self.update(entries)

    def update(self, entries: tuple[dict, ...]) -> None:
        """Replace the schedule (live settings change)."""
        self.entries = tuple(entries)

    def tick(self, now: float | None = None) -> list[int]:
        """Enqueue every entry whose latest slot is due and not yet enqueued; the new ids."""
        now = time.time() if now is None else now
        new = [e["name"] for e in self.entries if e["name"] not in self._registered]
        if new:
            self.backend.register_schedules(new, now)
            self._registered.update(new)
        marks = self.backend.schedule_marks()
        ids = []
        for entry in self.entries:
            slot = is_due(entry, marks.get(entry["name"]), now)
            if slot is None:
                continue
            try:
                task_id = enqueue_entry(self.backend, entry, slot)
            except ValueError as exc:
                log.error("schedule %s not enqueued: %s", entry["name"], exc)
                continue
            if task_id is not None:
                ids.append(task_id)
        return ids

    def wait_s(self, now: float | None = None) -> float:
        """Seconds until the next slot of any entry (at most SCHEDULER_MAX_SLEEP_S)."""
        now = time.time() if now is None else now
        soonest = min((next_slot(e, now) for e in self.entries), default=math.inf)
        return max(0.0, min(defaults.SCHEDULER_MAX_SLEEP_S, soonest - now))
