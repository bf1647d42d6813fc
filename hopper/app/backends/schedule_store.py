"""Schedules and daemons in the database: what the scheduler and reaper share
across every daemon on one database.

``schedule_runs`` has one row per enqueued slot of an entry, keyed by
``(name, slot)``: inserting that row is the claim, so a slot is enqueued once
however many daemons see it come due. ``schedule_state`` says whether an entry
is paused and since when its slots count.
"""
from __future__ import annotations

import time

from hopper.app.backends.base import NewTask
from hopper.app.backends.sql_parts import SqlParts
from hopper.app.defaults import DAEMON_STALE_S, LIVE_WORKER_AGE_S

_CLAIM_SLOT = ("INSERT INTO schedule_runs (name, slot, task_id, created_at) VALUES (?, ?, NULL, ?)"
               " ON CONFLICT (name, slot) DO NOTHING RETURNING name")
_MARKS = """
SELECT s.name, s.paused, s.since,
       (SELECT max(r.slot) FROM schedule_runs r WHERE r.name = s.name),
       (SELECT r.task_id FROM schedule_runs r WHERE r.name = s.name ORDER BY r.slot DESC LIMIT 1)
  FROM schedule_state s
"""


class ScheduleStore(SqlParts):
    """Mixed into the SQL backend (uses its ``_write``, ``_run`` and ``_read``)."""

    # -- schedules ---------------------------------------------------------------
    def schedule_marks(self) -> dict[str, dict]:
        """``{name: {paused, since, last_slot, last_task_id}}`` of every known entry."""
        return {name: {"paused": bool(paused), "since": since, "last_slot": last_slot,
                       "last_task_id": last_task}
                for name, paused, since, last_slot, last_task in self._read(_MARKS)}

    def register_schedules(self, names: list[str], now: float) -> None:
        """Record entries seen for the first time: their slots count from ``now``."""
        with self._write() as conn:
            self._run_many(conn, "INSERT INTO schedule_state (name, paused, since, updated_at)"
                                 " VALUES (?, 0, ?, ?) ON CONFLICT (name) DO NOTHING",
                           [(name, now, now) for name in names])

    def enqueue_slot(self, name: str, slot: float, task: NewTask) -> int | None:
        """Enqueue ``task`` for one slot of an entry unless some daemon already did;
        the new task's id, or None."""
        now = time.time()
        with self._write() as conn:
            if self._run(conn, _CLAIM_SLOT, (name, slot, now)).fetchone() is None:
                return None
            task_id, _ = self._insert_one(conn, task, now)
            self._run(conn, "UPDATE schedule_runs SET task_id = ? WHERE name = ? AND slot = ?",
                      (task_id, name, slot))
            self._wake_listeners(conn)
        return task_id

    def set_schedule_paused(self, name: str, paused: bool) -> None:
        """Pause or resume an entry; a resumed entry's slots count from now."""
        now = time.time()
        with self._write() as conn:
            self._run(conn, "INSERT INTO schedule_state (name, paused, since, updated_at)"
                            " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                            " paused = excluded.paused, updated_at = excluded.updated_at,"
                            " since = CASE WHEN excluded.paused = 0 AND schedule_state.paused = 1"
                            " THEN excluded.since ELSE schedule_state.since END",
                      (name, int(paused), now, now))

    # -- daemons -----------------------------------------------------------------
    def beat_daemon(self, daemon_id: str, host: str, pid: int, started_at: float) -> None:
        """Register or heartbeat one running daemon."""
        with self._write() as conn:
            self._run(conn, "INSERT INTO daemons (id, host, pid, started_at, heartbeat_at)"
                            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                            " heartbeat_at = excluded.heartbeat_at",
                      (daemon_id, host, pid, started_at, self.now()))

    def remove_daemon(self, daemon_id: str) -> None:
        """Forget a daemon that stopped cleanly."""
        with self._write() as conn:
            self._run(conn, "DELETE FROM daemons WHERE id = ?", (daemon_id,))

    def stale_daemons(self) -> list[str]:
        """Ids of daemons whose heartbeat stopped: their workers are gone."""
        return [r[0] for r in self._read("SELECT id FROM daemons WHERE heartbeat_at < ?",
                                         (self.now() - DAEMON_STALE_S,))]

    def live_daemons(self) -> list[dict]:
        """Daemons with a fresh heartbeat."""
        names = ("id", "host", "pid", "started_at", "heartbeat_at")
        rows = self._read(f"SELECT {', '.join(names)} FROM daemons WHERE heartbeat_at >= ?"
                          " ORDER BY started_at", (self.now() - LIVE_WORKER_AGE_S,))
        return [dict(zip(names, r, strict=True)) for r in rows]
