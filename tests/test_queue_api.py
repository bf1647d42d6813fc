"""The Python API against a real database (SQLite and PostgreSQL), without a daemon."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from helpers import enqueue_from_processes

from hopper.app import queue
from hopper.app.backends.base import TaskConflict


def _task_count(engine_client) -> int:
    return sum(sum(c.values()) for c in engine_client.backend.counts().values())


def test_enqueue_returns_an_id_and_stores_a_queued_task(engine_client):
    task_id = queue.enqueue("echo", {"x": 1}, priority=3)
    task = queue.get_task(task_id)
    assert task["status"] == "queued"
    assert task["args"] == {"x": 1}
    assert task["priority"] == 3
    assert task["attempts"] == 0


@pytest.mark.parametrize("name, args, options, message", [
    ("no_such_task", {}, {}, "unknown task name"),
    ("echo", [1, 2], {}, "args must be a JSON object"),
    ("echo", {"x": object()}, {}, "not JSON-serializable"),
    ("echo", {}, {"priority": "high"}, "priority must be an integer"),
    ("echo", {}, {"priority": 2**70}, "priority must be an integer from"),
    ("echo", {"x": float("nan")}, {}, "not JSON-serializable"),
    ("echo", {}, {"timeout": -1}, "timeout must be a positive number"),
    ("echo", {}, {"max_attempts": 0}, "max_attempts must be an integer"),
    ("echo", {}, {"delay": -5}, "delay must be a non-negative"),
    ("echo", {}, {"run_after": "tomorrow-ish"}, "run_after must be"),
    ("echo", {}, {"colour": "red"}, "unknown enqueue option"),
])
def test_bad_enqueue_raises_value_error_and_writes_nothing(engine_client, name, args, options,
                                                           message):
    with pytest.raises(ValueError, match=message):
        queue.enqueue(name, args, **options)
    assert _task_count(engine_client) == 0


def test_a_bad_task_in_a_batch_writes_none_of_the_batch(engine_client):
    with pytest.raises(ValueError):
        queue.enqueue_many([{"name": "echo", "args": {}}, {"name": "nope"}])
    assert _task_count(engine_client) == 0


def test_batch_enqueue_returns_consecutive_ids_in_order(engine_client):
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(100)])
    assert [queue.get_task(i)["args"]["i"] for i in ids] == list(range(100))


def test_duplicate_unique_key_returns_the_existing_task(engine_client):
    first = queue.enqueue("echo", {}, unique_key="k1")
    assert queue.enqueue("echo", {"other": True}, unique_key="k1") == first
    assert _task_count(engine_client) == 1


def test_unique_key_is_free_again_once_the_task_finished(engine_client):
    first = queue.enqueue("echo", {}, unique_key="k2")
    queue.cancel(first)
    assert queue.enqueue("echo", {}, unique_key="k2") != first


def test_get_task_of_an_unknown_id_is_none(engine_client):
    assert queue.get_task(987654) is None


def test_wait_raises_timeout_error_while_nobody_runs_the_task(engine_client):
    task_id = queue.enqueue("echo", {})
    with pytest.raises(TimeoutError):
        queue.wait(task_id, timeout=0.1)


def test_cancel_of_a_finished_task_is_a_conflict(engine_client):
    task_id = queue.enqueue("echo", {})
    queue.cancel(task_id)
    with pytest.raises(TaskConflict):
        queue.cancel(task_id)


def test_retry_requeues_a_cancelled_task(engine_client):
    task_id = queue.enqueue("echo", {})
    queue.cancel(task_id)
    assert queue.retry(task_id)["status"] == "queued"


def test_migrations_are_recorded_and_safe_to_apply_twice(engine_client):
    assert engine_client.backend.migrate() == []
    versions = [r[0] for r in engine_client.backend.fetch("SELECT version FROM schema_migrations")]
    assert sorted(versions) == sorted(set(versions)) and min(versions) == 1


def test_sqlite_runs_in_wal_mode_with_full_sync_by_default(client):
    conn = client.backend._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


class TestEagerMode:
    @pytest.fixture
    def eager(self, engine_client, monkeypatch):
        monkeypatch.setenv("HOPPER_EAGER", "1")
        from hopper.app import settings

        return queue.configure(settings.load(engine_client.settings.path))

    def test_enqueue_runs_the_task_in_the_calling_process(self, eager):
        task = queue.get_task(queue.enqueue("echo", {"now": 1}))
        assert task["status"] == "succeeded" and task["result"] == {"now": 1}

    def test_async_tasks_run_on_an_event_loop(self, eager):
        task = queue.get_task(queue.enqueue("async_add", {"a": 2, "b": 3}))
        assert task["result"] == {"sum": 5}

    def test_a_failing_task_records_the_traceback(self, eager):
        task = queue.get_task(queue.enqueue("always_fails", {}, max_attempts=1))
        assert task["status"] == "failed"
        assert "ValueError: this task always fails" in task["error"]

    def test_children_run_and_the_continuation_follows(self, eager, tmp_path):
        log = tmp_path / "fan.log"
        parent = queue.get_task(queue.enqueue("fan_out", {"children": 3, "log": str(log)}))
        assert parent["status"] == "succeeded"
        assert parent["progress"] == {"done": 3, "total": 3}
        assert len((tmp_path / "fan.log.continuation").read_text().splitlines()) == 1


def test_an_error_naming_an_undecodable_file_is_recorded_readably(engine_client, monkeypatch):
    monkeypatch.setenv("HOPPER_EAGER", "1")
    from hopper.app import settings

    queue.configure(settings.load(engine_client.settings.path))
    task = queue.get_task(queue.enqueue("fail_with_name", {"name_bytes": "6e6f2dff2e6a7067"}))
    assert task["status"] == "failed"
    assert "no-\\udcff.jpg" in task["error"]


def test_eight_processes_enqueueing_one_unique_key_get_one_task(engine_client, engine_settings):
    assert len(enqueue_from_processes(engine_settings, "the-one")) == 1
    assert engine_client.backend.counts() == {"default": {"queued": 1}}


def test_enqueue_waits_for_a_held_write_lock_then_stores_the_task(client):
    holder = sqlite3.connect(client.backend.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    result: list[int] = []
    enqueuer = threading.Thread(target=lambda: result.append(queue.enqueue("echo", {"n": 1})))
    enqueuer.start()
    enqueuer.join(0.5)
    assert enqueuer.is_alive() and result == []  # blocked behind the other writer
    holder.execute("COMMIT")
    enqueuer.join(30)
    holder.close()
    assert queue.get_task(result[0])["args"] == {"n": 1}


def test_enqueue_args_keep_their_json_types_and_unicode(engine_client):
    args = {"n": 1, "f": 1.5, "s": "é\u2603", "l": [None, True], "d": {"k": "v"}}
    assert queue.get_task(queue.enqueue("echo", args))["args"] == args


def test_enqueue_of_a_self_containing_object_raises_value_error(engine_client):
    args: dict = {}
    args["me"] = args
    with pytest.raises(ValueError, match="not JSON-serializable"):
        queue.enqueue("echo", args)
    assert _task_count(engine_client) == 0


def test_enqueue_many_returns_ids_in_request_order_on_both_engines(engine_client):
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(2500)])
    assert len(set(ids)) == 2500
    picked = (0, 999, 1000, 2499)
    assert [queue.get_task(ids[i])["args"]["i"] for i in picked] == list(picked)
