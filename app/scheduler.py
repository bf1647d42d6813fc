"""Recurring tasks from the ``schedules`` setting (cron or a fixed interval).

Each due slot is enqueued with a unique key naming the slot, so two daemons
sharing a database enqueue a slot once while it is unfinished.
"""
from __future__ import annotations

import logging
import time

from hopper.app import queue
from hopper.app.settings import parse_duration

log = logging.getLogger("hopper.scheduler")


class Scheduler:
    """Enqueues due schedule entries when ``tick()`` is called (about once a second)."""

    def __init__(self, entries: tuple[dict, ...]):
        self.entries: list[dict] = []
        self.update(entries)

    def update(self, entries: tuple[dict, ...]) -> None:
        """Replace the schedule; each entry's next run is computed from now."""
        now = time.time()
        self.entries = [{**e, "_next": self._next(e, now)} for e in entries]

    @staticmethod
    def _next(entry: dict, after: float) -> float:
        if "every" in entry:
            return after + parse_duration(entry["every"])
        from croniter import croniter  # only cron entries need it; it costs ~50 ms to import

        return croniter(str(entry["cron"]), after).get_next(float)

    def tick(self, now: float | None = None) -> list[int]:
        """Enqueue every entry that is due; return the task ids."""
        now = time.time() if now is None else now
        ids = []
        for entry in self.entries:
            if now < entry["_next"]:
                continue
            slot = int(entry["_next"])
            entry["_next"] = self._next(entry, now)
            try:
                ids.append(queue.enqueue(entry["name"], entry.get("args") or {},
                                         unique_key=f"schedule:{entry['name']}:{slot}"))
            except ValueError as exc:
                log.error("schedule %s not enqueued: %s", entry["name"], exc)
        return ids
