"""The task state machine on both engines: retry of a parent, outcomes the database
refuses, settling deep trees across daemons, attempt history, eager mode."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from helpers import poll_until

from hopper.app import defaults, queue
from hopper.app import settings as settings_mod
from hopper.app.backends.base import Outcome


def _continuations(log: Path) -> list[str]:
    marker = Path(f"{log}.continuation")
    return marker.read_text().splitlines() if marker.exists() else []


def test_retrying_a_failed_parent_reruns_only_its_failed_child_and_continues_once_more(
        make_daemon, database, engine_client, tmp_path):
    make_daemon(workers=2, database=database)
    log, broken = tmp_path / "fan.log", tmp_path / "broken"
    broken.write_text("the cause")
    parent_id = queue.enqueue("fan_out_fragile",
                              {"children": 3, "log": str(log), "broken": str(broken)})
    assert queue.wait(parent_id, timeout=30)["status"] == "failed"
    poll_until(lambda: _continuations(log) == [f"continuation {parent_id} failed"], timeout=20)

    broken.unlink()  # the cause is fixed
    assert queue.retry(parent_id)["status"] == "waiting"
    parent = queue.wait(parent_id, timeout=30)
    assert parent["status"] == "succeeded" and parent["error"] is None
    assert parent["children"] == {"succeeded": 3}
    poll_until(lambda: len(_continuations(log)) == 2, timeout=20)
    assert _continuations(log) == [f"continuation {parent_id} failed",
                                   f"continuation {parent_id} succeeded"]
    assert sorted(log.read_text().splitlines()) == ["child 0", "child 0", "child 1", "child 2"]


def test_retrying_a_parent_that_failed_before_any_child_runs_it_again(engine_client):
    task_id = queue.enqueue("fan_out", {"children": 2, "log": "unused"})
    queue.cancel(task_id)
    assert queue.retry(task_id)["status"] == "queued"


def test_an_error_with_a_nul_byte_is_recorded_escaped_and_the_task_fails(
        make_daemon, database, engine_client):
    make_daemon(workers=1, database=database)
    task = queue.wait(queue.enqueue("fails_with_nul"), timeout=10)
    assert task["status"] == "failed" and task["attempts"] == 2
    assert "ValueError: a\\x00b" in task["error"]
    assert [h["attempt"] for h in task["history"]] == [1, 2]


def test_a_result_too_large_is_cut_with_a_note(make_daemon, database, engine_client):
    make_daemon(workers=1, database=database)
    task = queue.wait(queue.enqueue("big_result", {"size": defaults.MAX_RESULT_BYTES + 10}),
                      timeout=20)
    assert task["status"] == "succeeded"
    assert task["result"]["truncated"] is True
    assert f"more than the {defaults.MAX_RESULT_BYTES} bytes stored" in task["result"]["note"]
    assert task["result"]["head"].startswith('{"data": "xxx')


def _refuse_results_over(client, database: str, limit: int) -> None:
    """Make the database itself refuse a result longer than ``limit`` characters."""
    backend = client.backend
    if database.startswith("sqlite"):
        backend._conn().setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limit)
        return
    with backend.transaction() as conn:
        conn.execute("CREATE FUNCTION refuse_big() RETURNS trigger AS $$ BEGIN"
                     f" IF length(NEW.result) > {limit} THEN RAISE EXCEPTION 'result too long'"
                     " USING ERRCODE = '22001'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
        conn.execute("CREATE TRIGGER refuse_big BEFORE UPDATE ON tasks FOR EACH ROW"
                     " EXECUTE FUNCTION refuse_big()")


def test_an_outcome_the_database_refuses_loses_no_other_outcome_of_its_batch(
        engine_client, database):
    backend = engine_client.backend
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i}} for i in range(3)])
    claimed = backend.finish_and_claim("w", [], [], 3, 30)
    assert sorted(c.id for c in claimed) == ids
    _refuse_results_over(engine_client, database, 5000)
    now = time.time()
    outcomes = [Outcome(ids[0], True, now, now, result='{"i": 0}'),
                Outcome(ids[1], True, now, now, result='"' + "y" * 6000 + '"'),
                Outcome(ids[2], True, now, now, result='{"i": 2}')]
    backend.finish_and_claim("w", outcomes, [], 0, 30)
    first, refused, last = (queue.get_task(i) for i in ids)
    assert (first["status"], first["result"]) == ("succeeded", {"i": 0})
    assert (last["status"], last["result"]) == ("succeeded", {"i": 2})
    assert refused["status"] == "failed" and refused["attempts"] == 1
    assert "could not be stored" in refused["error"]
    assert [h["kind"] for h in refused["history"]] == ["unstorable"]


def test_a_three_level_tree_settles_each_root_once_with_two_daemons(
        daemons_on_engine, engine_client):
    daemons_on_engine(2, workers=2)
    roots = queue.enqueue_many([{"name": "tree_root", "args": {"mids": 10, "leaves": 20}}
                                for _ in range(10)])
    for root in roots:
        assert queue.wait(root, timeout=120)["status"] == "succeeded"
    backend = engine_client.backend
    done = poll_until(lambda: (d := [t for t in backend.list(name="tree_done", limit=100)
                                     if t["status"] == "succeeded"]) and len(d) == 10 and d,
                      timeout=30)
    assert sorted(t["args"]["parent_id"] for t in done) == sorted(roots)
    assert {t["args"]["parent_status"] for t in done} == {"succeeded"}
    assert len(backend.list(name="tree_done", limit=100)) == 10
    assert engine_client.backend.counts()["default"].get("failed") is None


def test_history_keeps_each_failed_attempt_and_the_last_one(make_daemon, database,
                                                           engine_client, tmp_path):
    make_daemon(workers=1, database=database)
    task = queue.wait(queue.enqueue("flaky", {"log": str(tmp_path / "a.log"), "failures": 2}),
                      timeout=30)
    history = task["history"]
    assert [h["attempt"] for h in history] == [1, 2, 3]
    assert "planned failure 1" in history[0]["error"]
    assert "planned failure 2" in history[1]["error"]
    assert history[2]["error"] is None and history[2]["finished_at"] == task["finished_at"]
    assert [h["kind"] for h in history] == ["error", "error", None]
    assert all(h["worker"] and h["started_at"] <= h["finished_at"] for h in history)
    assert history[0]["finished_at"] <= history[1]["started_at"]


def test_eager_mode_runs_only_what_it_enqueues(engine_client, engine_settings, monkeypatch,
                                               tmp_path):
    waiting = queue.enqueue("echo", {"queued": "before"})
    monkeypatch.setenv("HOPPER_EAGER", "1")
    queue.configure(settings_mod.load(engine_settings))
    parent = queue.get_task(queue.enqueue("fan_out", {"children": 2,
                                                      "log": str(tmp_path / "e.log")}))
    assert parent["status"] == "succeeded" and parent["children"] == {"succeeded": 2}
    assert queue.get_task(waiting)["status"] == "queued"
    assert _continuations(tmp_path / "e.log") == [f"continuation {parent['id']} succeeded"]
