"""Task semantics against a real daemon: real worker processes, on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from helpers import poll_until

from hopper.app import queue


def _pid_of(worker_id: str) -> int:
    return int(worker_id.split(":", 1)[1].split("-", 1)[0])


def _running(task_id: int) -> dict | None:
    task = queue.get_task(task_id)
    return task if task["status"] == "running" else None


def test_a_thousand_echo_tasks_all_succeed_once_with_their_args(
        make_daemon, database, engine_client):
    make_daemon(database=database, workers=2)
    ids = queue.enqueue_many([{"name": "echo", "args": {"i": i, "s": f"v{i}"}}
                              for i in range(1000)])
    queue.wait(ids[-1], timeout=60)
    poll_until(lambda: engine_client.backend.counts()["default"] == {"succeeded": 1000}, timeout=60,
               message=lambda: str(engine_client.backend.counts()))
    for i, task_id in enumerate(ids):
        task = queue.get_task(task_id)
        assert task["result"] == {"i": i, "s": f"v{i}"}
        assert task["attempts"] == 1


def test_each_task_body_runs_exactly_once(make_daemon, database, engine_client, tmp_path):
    make_daemon(database=database, workers=2)
    log = tmp_path / "runs.log"
    ids = queue.enqueue_many([{"name": "record", "args": {"log": str(log), "label": str(i)}}
                              for i in range(300)])
    poll_until(lambda: all(queue.get_task(i)["status"] == "succeeded" for i in ids[-5:]),
               timeout=60)
    poll_until(lambda: engine_client.backend.counts()["default"].get("succeeded") == 300,
               timeout=30)
    labels = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(labels, key=int) == [str(i) for i in range(300)]


def test_async_task_runs_in_a_worker(make_daemon, database, engine_client):
    make_daemon(database=database, workers=1)
    task = queue.wait(queue.enqueue("async_add", {"a": 40, "b": 2}), timeout=20)
    assert task["status"] == "succeeded" and task["result"] == {"sum": 42}


def test_killed_worker_loses_no_task_and_is_replaced(make_daemon, database, engine_client):
    daemon = make_daemon(database=database, workers=2)
    task_id = queue.enqueue("sleep", {"seconds": 2})
    running = poll_until(lambda: _running(task_id), timeout=20)
    victim = _pid_of(running["worker"])
    os.kill(victim, signal.SIGKILL)

    done = queue.wait(task_id, timeout=30)
    assert done["status"] == "succeeded"
    assert done["attempts"] == 2
    assert "worker process died" in done["error"]
    pids = poll_until(lambda: (p := daemon.worker_pids()) and len(p) == 2 and p, timeout=10)
    assert victim not in pids


def test_higher_priority_runs_first_then_oldest(make_daemon, database, engine_client, tmp_path):
    make_daemon(database=database, workers=1)
    log = tmp_path / "order.log"
    blocker = queue.enqueue("sleep", {"seconds": 1})
    poll_until(lambda: _running(blocker), timeout=20)
    for label, priority in [("p0-a", 0), ("p5-a", 5), ("p1", 1), ("p5-b", 5), ("p10", 10),
                            ("p0-b", 0)]:
        queue.enqueue("record", {"log": str(log), "label": label}, priority=priority)
    poll_until(lambda: log.exists() and len(log.read_text().splitlines()) == 6, timeout=20)
    order = [line.split()[0] for line in log.read_text().splitlines()]
    assert order == ["p10", "p5-a", "p5-b", "p1", "p0-a", "p0-b"]


def test_delayed_task_does_not_start_before_its_run_after(
        make_daemon, database, engine_client, tmp_path):
    make_daemon(database=database, workers=1)
    log = tmp_path / "delay.log"
    not_before = time.time() + 1.5
    delayed = queue.enqueue("record", {"log": str(log), "label": "late"}, run_after=not_before)
    queue.enqueue("record", {"log": str(log), "label": "now"})
    queue.wait(delayed, timeout=20)
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [label for label, _, _ in lines] == ["now", "late"]
    assert float(lines[1][2]) >= not_before


def test_failing_task_retries_with_growing_backoff_then_succeeds(
        make_daemon, database, engine_client, tmp_path):
    make_daemon(database=database, workers=1)
    log = tmp_path / "attempts.log"
    task = queue.wait(queue.enqueue("flaky", {"log": str(log), "failures": 2}), timeout=30)
    assert task["status"] == "succeeded"
    assert task["attempts"] == 3
    assert "planned failure 2" in task["error"]
    times = [float(t) for t in log.read_text().split()]
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    assert first_gap >= 0.2  # the task's backoff base
    assert second_gap > first_gap


def test_task_failing_every_attempt_ends_failed_with_its_traceback(
        make_daemon, database, engine_client):
    make_daemon(database=database, workers=1)
    task = queue.wait(queue.enqueue("always_fails"), timeout=30)
    assert task["status"] == "failed"
    assert task["attempts"] == 2
    assert "ValueError: this task always fails" in task["error"]


def test_task_past_its_timeout_is_stopped_and_frees_the_worker(
        make_daemon, database, engine_client):
    daemon = make_daemon(database=database, workers=1)
    task_id = queue.enqueue("sleep", {"seconds": 60}, timeout=1, max_attempts=1)
    running = poll_until(lambda: _running(task_id), timeout=20)
    task = queue.wait(task_id, timeout=20)
    assert task["status"] == "failed"
    assert "timed out after 1s" in task["error"]
    assert task["finished_at"] - running["started_at"] < 5
    assert queue.wait(queue.enqueue("echo", {"after": 1}), timeout=20)["status"] == "succeeded"
    assert _pid_of(running["worker"]) not in daemon.worker_pids()


def test_cancelling_a_running_task_stops_it_and_frees_the_worker(
        make_daemon, database, engine_client):
    daemon = make_daemon(database=database, workers=1)
    task_id = queue.enqueue("sleep", {"seconds": 60})
    running = poll_until(lambda: _running(task_id), timeout=20)
    started = time.monotonic()
    assert queue.cancel(task_id)["status"] == "cancelled"
    assert queue.wait(queue.enqueue("echo", {}), timeout=20)["status"] == "succeeded"
    assert time.monotonic() - started < 10
    assert queue.get_task(task_id)["status"] == "cancelled"
    poll_until(lambda: len(daemon.worker_pids()) == 1, timeout=10)
    assert _pid_of(running["worker"]) not in daemon.worker_pids()


def test_parent_with_200_children_settles_once_and_continues_once(
        make_daemon, database, engine_client, tmp_path):
    make_daemon(database=database, workers=4)
    log = tmp_path / "fan.log"
    parent_id = queue.enqueue("fan_out", {"children": 200, "log": str(log)})
    parent = queue.wait(parent_id, timeout=90)
    assert parent["status"] == "succeeded"
    assert parent["progress"] == {"done": 200, "total": 200}
    assert parent["children"] == {"succeeded": 200}
    (fan_in,) = poll_until(lambda: [t for t in engine_client.backend.list(name="fan_in")
                                    if t["status"] == "succeeded"], timeout=20)
    assert fan_in["attempts"] == 1 and fan_in["args"]["parent_id"] == parent_id
    continuation = Path(f"{log}.continuation")
    assert continuation.read_text().splitlines() == [f"continuation {parent_id} succeeded"]
    assert len(log.read_text().splitlines()) == 200


def test_pending_and_running_parent_is_waiting_with_progress(
        make_daemon, database, engine_client, tmp_path):
    make_daemon(database=database, workers=1)
    # One insert, so the idle worker sees both and takes the parent first; the blocker then
    # runs between the parent and its children, which keeps the parent waiting.
    parent_id, blocker = queue.enqueue_many([
        {"name": "fan_out", "args": {"children": 3, "log": str(tmp_path / "w.log")},
         "priority": 5},
        {"name": "sleep", "args": {"seconds": 1.5}, "priority": 1},
    ])
    waiting = poll_until(lambda: (t := queue.get_task(parent_id))["status"] == "waiting" and t,
                         timeout=20)
    assert waiting["progress"]["total"] == 3
    assert queue.wait(parent_id, timeout=30)["status"] == "succeeded"
    queue.wait(blocker, timeout=30)


def test_a_slow_task_never_holds_prefetched_work_from_an_idle_worker(
        make_daemon, database, engine_client):
    make_daemon(database=database, workers=2)
    queue.wait(queue.enqueue("sleep", {"seconds": 0.01}), timeout=20)  # warm both workers up
    fast = [{"name": "echo", "args": {"i": i}} for i in range(200)]
    slow = [{"name": "sleep", "args": {"seconds": 1.5}, "priority": -1} for _ in range(2)]
    ids = queue.enqueue_many(fast + slow)
    first, second = (queue.wait(i, timeout=30) for i in ids[-2:])
    # Run side by side by the two workers, not one after the other by one.
    assert abs(first["started_at"] - second["started_at"]) < 1.0
    assert first["worker"] != second["worker"]


def test_parent_settles_once_with_children_finishing_in_two_daemons(daemons_on_engine,
                                                                   engine_client, tmp_path):
    daemons_on_engine(2, workers=2)
    log = tmp_path / "fan.log"
    parent = queue.wait(queue.enqueue("fan_out", {"children": 200, "log": str(log)}),
                        timeout=90)
    assert parent["status"] == "succeeded"
    assert parent["progress"] == {"done": 200, "total": 200}
    continuation = Path(f"{log}.continuation")
    poll_until(continuation.exists, timeout=20)
    assert continuation.read_text().splitlines() == [f"continuation {parent['id']} succeeded"]
    workers = {t["worker"] for t in engine_client.backend.list(name="child", limit=500)}
    assert len(workers) > 1


def test_a_timeout_kill_never_hits_the_task_the_worker_moved_on_to(make_daemon, database,
                                                                   engine_client, tmp_path):
    """Tasks that end right at their deadline, each followed by another task: the
    supervisor's kill may only ever stop the task that timed out."""
    make_daemon(database=database, workers=1)
    log = tmp_path / "after.log"
    requests = []
    for i in range(10):
        # Around the deadline: some end just before it, some just after.
        requests.append({"name": "sleep", "args": {"seconds": 0.25 + (i % 5) * 0.01},
                         "timeout": 0.28, "max_attempts": 1})
        requests.append({"name": "record", "args": {"log": str(log), "label": str(i)}})
    ids = queue.enqueue_many(requests)
    tasks = [queue.wait(task_id, timeout=60) for task_id in ids]
    for sleeper, follower in zip(tasks[::2], tasks[1::2], strict=True):
        assert (follower["status"], follower["attempts"], follower["error"]) == (
            "succeeded", 1, None), follower
        assert sleeper["status"] == "succeeded" or "timed out after 0.28s" in sleeper["error"]
    assert sorted(log.read_text().split()[::3], key=int) == [str(i) for i in range(10)]


def test_daemons_with_one_host_name_never_rescue_each_others_tasks(
        make_daemon, database, engine_client, monkeypatch):
    """Containers sharing a host name (and pid numbers): only the owning daemon's
    heartbeat says whether a worker is alive."""
    monkeypatch.setenv("HOPPER_HOSTNAME", "box")
    backend = engine_client.backend
    other, beating = "a11ve", threading.Event()
    beating.set()

    def beat():  # the other container's daemon, alive while the event is set
        while beating.is_set():
            backend.beat_daemon(other, "box", 999999, time.time())
            time.sleep(0.2)

    backend.beat_daemon(other, "box", 999999, time.time())
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        task_id = queue.enqueue("echo", {"held": True})
        with backend.transaction() as conn:  # running in the other container, pid 999999
            backend.run(conn, "UPDATE tasks SET status = 'running', attempts = 1, worker = ?,"
                              " lease_until = ?, started_at = ? WHERE id = ?",
                        (f"box:999999-{other}-0001", time.time() + 60, time.time(), task_id))
        daemon = make_daemon(database=database, workers=1)
        mine = poll_until(lambda: [d for d in backend.live_daemons() if d["id"] != other],
                          timeout=20)[0]
        assert mine["host"] == "box" and daemon.workers()[0]["id"].startswith("box:")
        seen = mine["heartbeat_at"]
        poll_until(lambda: [d for d in backend.live_daemons()
                            if d["id"] == mine["id"] and d["heartbeat_at"] > seen + 3],
                   timeout=20)  # three housekeeping rounds later
        assert queue.get_task(task_id)["status"] == "running"
    finally:
        beating.clear()
        thread.join(5)
    done = queue.wait(task_id, timeout=30)  # its daemon is gone: rescued and run here
    assert done["status"] == "succeeded" and done["attempts"] == 2
