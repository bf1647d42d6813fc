"""Orphan rescue and retention, on both engines."""
from __future__ import annotations

import time

from hopper.app import defaults, queue, reaper
from hopper.app.backends.base import NewTask


def _sql(client, statement: str, params: tuple = ()) -> None:
    """One write statement (``?`` placeholders) on the engine under test."""
    with client.backend.transaction() as conn:
        client.backend.run(conn, statement, params)


def _orphan(client, worker: str, lease_until: float) -> int:
    """A task left running by a worker that no longer heartbeats."""
    (task_id, _), = client.backend.enqueue([NewTask(name="echo", args={"orphan": True})])
    _sql(client, "UPDATE tasks SET status = 'running', attempts = 1, worker = ?, lease_until = ?,"
                 " started_at = ? WHERE id = ?", (worker, lease_until, time.time(), task_id))
    return task_id


def test_task_whose_lease_expired_is_rescued(engine_client):
    task_id = _orphan(engine_client, "elsewhere:4242-beef", lease_until=time.time() - 1)
    assert reaper.rescue_orphans(engine_client.backend, set()) == 1
    task = queue.get_task(task_id)
    assert task["status"] == "queued"
    assert "lease of worker elsewhere:4242-beef expired" in task["error"]
    assert [(h["attempt"], h["kind"]) for h in task["history"]] == [(1, "lost")]


def test_task_with_a_live_lease_of_an_unknown_daemon_is_left_alone(engine_client):
    task_id = _orphan(engine_client, "elsewhere:4242-beef", lease_until=time.time() + 60)
    assert reaper.rescue_orphans(engine_client.backend, set()) == 0
    assert queue.get_task(task_id)["status"] == "running"


def test_task_of_a_daemon_whose_heartbeat_stopped_is_rescued_at_once(engine_client):
    backend = engine_client.backend
    backend.beat_daemon("d1ed", "box", 4242, time.time() - 60)
    _sql(engine_client, "UPDATE daemons SET heartbeat_at = ? WHERE id = 'd1ed'",
         (time.time() - 30,))
    task_id = _orphan(engine_client, "box:4242-d1ed-0001", lease_until=time.time() + 60)
    assert reaper.rescue_orphans(backend, set(), "0ther") == 1
    task = queue.get_task(task_id)
    assert task["status"] == "queued" and task["attempts"] == 1


def test_task_of_a_live_daemon_is_left_alone_even_on_the_same_host_with_a_dead_pid(
        engine_client):
    """Two containers with one host name: the other daemon's pid means nothing here."""
    backend = engine_client.backend
    backend.beat_daemon("a11ve", "box", 999999, time.time())
    task_id = _orphan(engine_client, "box:999999-a11ve-0001", lease_until=time.time() + 60)
    assert reaper.rescue_orphans(backend, set(), "0ther") == 0
    assert queue.get_task(task_id)["status"] == "running"


def test_own_worker_no_longer_in_the_pool_is_rescued_at_once(engine_client):
    task_id = _orphan(engine_client, "box:999999-5e1f-0001", lease_until=time.time() + 60)
    assert reaper.rescue_orphans(engine_client.backend, {"box:1-5e1f-0002"}, "5e1f") == 1
    assert queue.get_task(task_id)["status"] == "queued"


def test_orphan_that_used_its_last_attempt_ends_failed(engine_client):
    task_id = _orphan(engine_client, "elsewhere:1-aaaa", lease_until=time.time() - 1)
    _sql(engine_client, "UPDATE tasks SET max_attempts = 1 WHERE id = ?", (task_id,))
    reaper.rescue_orphans(engine_client.backend, set())
    assert queue.get_task(task_id)["status"] == "failed"


def test_running_daemon_rescues_an_expired_lease(make_daemon, database, engine_client):
    make_daemon(workers=1, database=database)
    task_id = _orphan(engine_client, "elsewhere:77-cafe", lease_until=time.time() - 1)
    done = queue.wait(task_id, timeout=20)
    assert done["status"] == "succeeded" and done["attempts"] == 2


def test_finished_tasks_past_retention_are_pruned(engine_client):
    old, recent = queue.enqueue("echo", {}), queue.enqueue("echo", {})
    queue.cancel(old)
    queue.cancel(recent)
    _sql(engine_client, "UPDATE tasks SET finished_at = ? WHERE id = ?",
         (time.time() - 90 * 86400, old))
    assert reaper.prune(engine_client.backend, 7 * 86400, 30 * 86400) == 1
    assert queue.get_task(old) is None
    assert queue.get_task(recent) is not None


def test_pruning_deletes_in_chunks_and_keeps_what_is_recent(engine_client, monkeypatch):
    monkeypatch.setattr(defaults, "PRUNE_CHUNK", 5)
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(14)])
    _sql(engine_client, "UPDATE tasks SET status = 'succeeded', finished_at = ? WHERE id <= ?",
         (time.time() - 30 * 86400, ids[11]))
    assert reaper.prune(engine_client.backend, 7 * 86400, 30 * 86400) == 12
    assert [t["id"] for t in engine_client.backend.list(limit=50)] == ids[:11:-1]


def test_pruning_a_task_deletes_its_attempt_history(engine_client):
    task_id = _orphan(engine_client, "elsewhere:1-aaaa", lease_until=time.time() - 1)
    _sql(engine_client, "UPDATE tasks SET max_attempts = 1 WHERE id = ?", (task_id,))
    reaper.rescue_orphans(engine_client.backend, set())
    _sql(engine_client, "UPDATE tasks SET finished_at = ? WHERE id = ?",
         (time.time() - 90 * 86400, task_id))
    assert reaper.prune(engine_client.backend, 7 * 86400, 30 * 86400) == 1
    assert engine_client.backend.fetch("SELECT count(*) FROM task_attempts") == [(0,)]


def test_prunes_of_any_size_share_one_statement_text(engine_client, monkeypatch):
    """A statement text per chunk size would keep one more prepared statement of thousands
    of parameters in the connection's cache at every prune (the soak's memory growth)."""
    monkeypatch.setattr(defaults, "PRUNE_CHUNK", 5)
    backend, statements = engine_client.backend, set()
    real_run = backend._run

    def recording(conn, statement, params=()):
        if statement.startswith("DELETE FROM tasks"):
            statements.add(statement)
        return real_run(conn, statement, params)

    monkeypatch.setattr(backend, "_run", recording)
    for count in (3, 7, 12):
        ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(count)])
        _sql(engine_client, "UPDATE tasks SET status = 'succeeded', finished_at = ? WHERE id >= ?",
             (time.time() - 30 * 86400, ids[0]))
        assert reaper.prune(backend, 7 * 86400, 30 * 86400) == count
    assert len(statements) == 1
