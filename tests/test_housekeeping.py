"""Orphan rescue, retention and schedules."""
from __future__ import annotations

import time

from hopper.app import queue, reaper
from hopper.app.backends.base import NewTask
from hopper.app.scheduler import Scheduler
from helpers import poll_until


def _orphan(client, worker: str, lease_until: float) -> int:
    """A task left running by a worker that no longer heartbeats."""
    (task_id, _), = client.backend.enqueue([NewTask(name="echo", args={"orphan": True})])
    conn = client.backend._conn()
    conn.execute("UPDATE tasks SET status = 'running', attempts = 1, worker = ?, lease_until = ?"
                 " WHERE id = ?", (worker, lease_until, task_id))
    return task_id


def test_task_of_a_worker_on_another_machine_is_rescued_when_its_lease_expires(client):
    task_id = _orphan(client, "elsewhere:4242-beef", lease_until=time.time() - 1)
    assert reaper.rescue_orphans(client.backend, set()) == 1
    task = queue.get_task(task_id)
    assert task["status"] == "queued"
    assert "lease of worker elsewhere:4242-beef expired" in task["error"]


def test_task_with_a_live_lease_on_another_machine_is_left_alone(client):
    task_id = _orphan(client, "elsewhere:4242-beef", lease_until=time.time() + 60)
    assert reaper.rescue_orphans(client.backend, set()) == 0
    assert queue.get_task(task_id)["status"] == "running"


def test_task_of_a_dead_local_worker_is_rescued_at_once(client):
    import socket

    task_id = _orphan(client, f"{socket.gethostname()}:999999-dead", lease_until=time.time() + 60)
    assert reaper.rescue_orphans(client.backend, set()) == 1
    task = queue.get_task(task_id)
    assert task["status"] == "queued" and task["attempts"] == 1


def test_orphan_that_used_its_last_attempt_ends_failed(client):
    task_id = _orphan(client, "elsewhere:1-aaaa", lease_until=time.time() - 1)
    client.backend._conn().execute("UPDATE tasks SET max_attempts = 1 WHERE id = ?", (task_id,))
    reaper.rescue_orphans(client.backend, set())
    assert queue.get_task(task_id)["status"] == "failed"


def test_running_daemon_rescues_an_expired_lease(make_daemon, client):
    make_daemon(workers=1)
    task_id = _orphan(client, "elsewhere:77-cafe", lease_until=time.time() - 1)
    done = queue.wait(task_id, timeout=20)
    assert done["status"] == "succeeded" and done["attempts"] == 2


def test_finished_tasks_past_retention_are_pruned(client):
    old, recent = queue.enqueue("echo", {}), queue.enqueue("echo", {})
    queue.cancel(old)
    queue.cancel(recent)
    client.backend._conn().execute("UPDATE tasks SET finished_at = ? WHERE id = ?",
                                   (time.time() - 90 * 86400, old))
    assert reaper.prune(client.backend, 7 * 86400, 30 * 86400) == 1
    assert queue.get_task(old) is None
    assert queue.get_task(recent) is not None


def test_interval_schedule_enqueues_each_slot_once(client):
    scheduler = Scheduler(({"name": "echo", "every": "10s", "args": {"tick": True}},))
    start = time.time()
    assert scheduler.tick(start) == []
    first = scheduler.tick(start + 10.5)
    assert len(first) == 1 and queue.get_task(first[0])["args"] == {"tick": True}
    assert scheduler.tick(start + 11) == []


def test_cron_schedule_fires_at_the_next_matching_minute(client):
    scheduler = Scheduler(({"name": "echo", "cron": "* * * * *"},))
    assert scheduler.tick(time.time() + 61) != []


def test_daemon_runs_interval_schedules(make_daemon, client):
    make_daemon(workers=1, schedules=[{"name": "echo", "every": "1s", "args": {"beat": 1}}])
    poll_until(lambda: client.backend.counts().get("default", {}).get("succeeded", 0) >= 2,
               timeout=15)


def test_pruning_deletes_in_chunks_and_keeps_what_is_recent(client, monkeypatch):
    from hopper.app.backends import sql

    monkeypatch.setattr(sql, "PRUNE_CHUNK", 5)
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(14)])
    client.backend._conn().execute(
        "UPDATE tasks SET status = 'succeeded', finished_at = ? WHERE id <= ?",
        (time.time() - 30 * 86400, ids[11]))
    assert reaper.prune(client.backend, 7 * 86400, 30 * 86400) == 12
    assert [t["id"] for t in client.backend.list(limit=50)] == ids[:11:-1]


def test_prunes_of_any_size_share_one_statement_text(engine_client, monkeypatch):
    """A statement text per chunk size would keep one more prepared statement of thousands
    of parameters in the connection's cache at every prune (the soak's memory growth)."""
    from hopper.app.backends import sql

    monkeypatch.setattr(sql, "PRUNE_CHUNK", 5)
    backend, statements = engine_client.backend, set()
    real_run = backend._run

    def recording(conn, statement, params=()):
        if statement.startswith("DELETE FROM tasks"):
            statements.add(statement)
        return real_run(conn, statement, params)

    monkeypatch.setattr(backend, "_run", recording)
    for count in (3, 7, 12):
        ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(count)])
        with backend._write() as conn:
            real_run(conn, "UPDATE tasks SET status = 'succeeded', finished_at = ? WHERE id >= ?",
                     (time.time() - 30 * 86400, ids[0]))
        assert reaper.prune(backend, 7 * 86400, 30 * 86400) == count
    assert len(statements) == 1
