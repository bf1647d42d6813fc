"""The PostgreSQL backend: the same contract, and workers on several "machines"."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hopper.app import queue
from hopper.app.backends.base import TaskConflict
from daemons import Daemon, write_settings
from helpers import enqueue_from_processes, poll_until


def test_enqueue_get_and_unique_key(pg_client):
    first = queue.enqueue("echo", {"x": 1}, unique_key="pg-k")
    assert queue.enqueue("echo", {"x": 2}, unique_key="pg-k") == first
    task = queue.get_task(first)
    assert task["status"] == "queued" and task["args"] == {"x": 1}


def test_batch_enqueue_returns_ids_in_order(pg_client):
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(50)])
    assert [queue.get_task(i)["args"]["i"] for i in ids] == list(range(50))


def test_cancel_then_retry(pg_client):
    task_id = queue.enqueue("echo", {})
    assert queue.cancel(task_id)["status"] == "cancelled"
    with pytest.raises(TaskConflict):
        queue.cancel(task_id)
    assert queue.retry(task_id)["status"] == "queued"


def test_migrations_are_safe_to_apply_twice(pg_client):
    assert pg_client.backend.migrate() == []


def test_eight_processes_enqueueing_one_unique_key_get_one_task(pg_client, pg_settings):
    assert len(enqueue_from_processes(pg_settings, "the-one")) == 1
    assert pg_client.backend.counts() == {"default": {"queued": 1}}


def test_daemon_on_postgres_runs_a_thousand_tasks_once_each(make_daemon, pg_client, pg_settings):
    make_daemon(config=pg_settings)
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(1000)])
    poll_until(lambda: pg_client.backend.counts()["default"] == {"succeeded": 1000}, timeout=60,
               message=lambda: str(pg_client.backend.counts()))
    assert all(queue.get_task(t)["attempts"] == 1 for t in ids[::50])


def test_killed_worker_on_postgres_loses_no_task(make_daemon, pg_client, pg_settings):
    make_daemon(config=pg_settings)
    task_id = queue.enqueue("sleep", {"seconds": 1.5})
    running = poll_until(lambda: (t := queue.get_task(task_id))["status"] == "running" and t,
                         timeout=20)
    os.kill(int(running["worker"].split(":")[1].split("-")[0]), signal.SIGKILL)
    done = queue.wait(task_id, timeout=30)
    assert done["status"] == "succeeded" and done["attempts"] == 2


def test_parent_settles_once_with_children_finishing_on_two_machines(pg_client, pg_url,
                                                                     tmp_path):
    # Two worker-only daemons, each with its own settings folder, one database.
    daemons = []
    for host in ("a", "b"):
        folder = tmp_path / host
        folder.mkdir()
        daemons.append(Daemon(write_settings(folder, database=pg_url, workers=2), "worker"))
    try:
        for daemon in daemons:
            daemon.start()
        log = tmp_path / "fan.log"
        parent = queue.wait(queue.enqueue("fan_out", {"children": 200, "log": str(log)}),
                            timeout=90)
        assert parent["status"] == "succeeded"
        assert parent["progress"] == {"done": 200, "total": 200}
        continuation = Path(f"{log}.continuation")
        poll_until(continuation.exists, timeout=20)
        assert len(continuation.read_text().splitlines()) == 1
        workers = {t["worker"] for t in queue.client().backend.list(name="child", limit=500)}
        assert len(workers) > 1
    finally:
        for daemon in daemons:
            daemon.stop()
            daemon.kill_everything()

