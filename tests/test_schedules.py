"""Schedules: each slot enqueued once across daemons, missed slots collapse into one,
pausing recorded in the database; on both engines."""
from __future__ import annotations

import math
import time

from helpers import poll_until

from hopper.app import queue
from hopper.app.scheduler import Scheduler, latest_slot, next_slot

EVERY_10S = {"name": "echo", "every": "10s", "args": {"tick": True}}


def _next_boundary(interval: float) -> float:
    return math.floor(time.time() / interval) * interval + interval


def test_interval_slots_are_multiples_of_the_interval_since_the_epoch():
    assert latest_slot(EVERY_10S, 1_000_007.5) == 1_000_000.0
    assert next_slot(EVERY_10S, 1_000_007.5) == 1_000_010.0


def test_cron_slots_are_the_cron_times():
    entry = {"name": "echo", "cron": "0 3 * * *"}
    day = 86400 * 20000  # 2024-10-04 00:00 UTC
    assert latest_slot(entry, day + 5 * 3600) == day + 3 * 3600
    assert latest_slot(entry, day + 3 * 3600) == day + 3 * 3600
    assert next_slot(entry, day + 3 * 3600) == day + 86400 + 3 * 3600


def test_each_slot_is_enqueued_once_by_any_number_of_schedulers(engine_client):
    start = _next_boundary(10) - 10 + 0.5   # half a second into a slot
    first = Scheduler(engine_client.backend, (EVERY_10S,))
    second = Scheduler(engine_client.backend, (EVERY_10S,))
    assert first.tick(start) == []           # slots count from when the entry was first seen
    due = start + 10
    ids = first.tick(due) + second.tick(due) + first.tick(due + 1)
    assert len(ids) == 1 and queue.get_task(ids[0])["args"] == {"tick": True}
    later = second.tick(due + 10)             # the next slot, from the other scheduler
    assert len(later) == 1 and later[0] != ids[0]
    assert engine_client.backend.schedule_marks()["echo"]["last_slot"] == latest_slot(
        EVERY_10S, due + 10)


def test_slots_missed_while_no_daemon_ran_run_once(engine_client):
    entry = {"name": "echo", "cron": "0 3 * * *", "args": {"nightly": True}}
    now = time.time()
    backend = engine_client.backend
    backend.register_schedules(["echo"], now - 5 * 86400)
    before = Scheduler(backend, (entry,)).tick(now - 4 * 86400)  # the last run before
    assert len(before) == 1
    assert backend.schedule_marks()["echo"]["last_slot"] == latest_slot(entry, now - 4 * 86400)
    scheduler = Scheduler(backend, (entry,))   # a new start, days later
    ids = scheduler.tick(now) + scheduler.tick(now + 1)
    assert len(ids) == 1
    assert backend.schedule_marks()["echo"]["last_slot"] == latest_slot(entry, now)


def test_a_paused_entry_enqueues_nothing_until_resumed(engine_client):
    backend = engine_client.backend
    scheduler = Scheduler(backend, (EVERY_10S,))
    scheduler.tick()
    backend.set_schedule_paused("echo", True)
    assert backend.schedule_marks()["echo"]["paused"] is True
    assert scheduler.tick(time.time() + 10) == []
    backend.set_schedule_paused("echo", False)
    resumed = scheduler.tick(next_slot(EVERY_10S, time.time()) + 0.1)
    assert len(resumed) == 1 and queue.get_task(resumed[0])["name"] == "echo"


def test_two_daemons_enqueue_each_one_second_slot_once(daemons_on_engine, engine_client):
    daemons_on_engine(2, workers=1,
                      schedules=[{"name": "echo", "every": "1s", "args": {"beat": 1}}])
    backend = engine_client.backend
    started = time.time()
    poll_until(lambda: time.time() - started > 8 and backend.schedule_marks().get("echo"),
               timeout=30, interval=0.5)
    runs = backend.fetch("SELECT slot, task_id FROM schedule_runs WHERE name = 'echo'")
    slots = sorted(slot for slot, _ in runs)
    tasks = backend.list(name="echo", limit=100)
    assert len(slots) >= 6
    assert all(slot == int(slot) for slot in slots)
    assert len(tasks) == len(slots) == len({task_id for _, task_id in runs})
    assert sorted(t["id"] for t in tasks) == sorted(task_id for _, task_id in runs)


def test_a_cron_slot_missed_during_downtime_runs_once_at_start(make_daemon, database,
                                                               engine_client):
    backend = engine_client.backend
    entry = {"name": "echo", "cron": "0 3 * * *", "args": {"missed": True}}
    backend.register_schedules(["echo"], time.time() - 5 * 86400)
    Scheduler(backend, (entry,)).tick(time.time() - 4 * 86400)  # ran, then the daemon stopped
    make_daemon(workers=1, database=database, schedules=[entry])
    slot = latest_slot(entry, time.time())
    poll_until(lambda: backend.schedule_marks()["echo"]["last_slot"] == slot, timeout=30)
    task_id = backend.schedule_marks()["echo"]["last_task_id"]
    assert queue.wait(task_id, timeout=20)["status"] == "succeeded"
    beat = backend.live_daemons()[0]["heartbeat_at"]
    poll_until(lambda: backend.live_daemons()[0]["heartbeat_at"] > beat + 2, timeout=20)
    assert len(backend.list(name="echo", limit=10)) == 2  # the run before the downtime, and this
