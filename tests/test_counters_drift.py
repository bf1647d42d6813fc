"""The counters written per transaction equal COUNT(*) of the tasks table after a
mixed run: real workers killed mid-task and rescued, failures and retries,
fan-out trees, cancels, bulk actions and retention, on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import signal
import time

import psutil
import workflow_tasks  # noqa: F401  (registers wf_step in this process too)
from helpers import poll_until

from hopper.app import queue, reaper
from hopper.app.engines import InlineEngine

QUEUES = ("default", "media")
SLEEPERS = 400   # per queue, 20 ms each: a drain of 8 s or more on 2 workers
KILLS = 2


def _rows(backend) -> dict:
    """``{queue: {status: n}}`` counted in the tasks table itself."""
    out: dict = {}
    for queue_name, status, n in backend.fetch(
            "SELECT queue, status, count(*) FROM tasks GROUP BY queue, status"):
        out.setdefault(queue_name, {})[status] = int(n)
    return out


def _unfinished(backend) -> int:
    return backend.fetch("SELECT count(*) FROM tasks WHERE status IN ('queued', 'running',"
                         " 'waiting') AND run_after < ?", (time.time() + 600,))[0][0]


def _kill_a_busy_worker(daemon) -> None:
    """SIGKILL a worker that has lived 2 s (a younger one dying looks like a crash loop)."""
    def old_worker():
        for pid in daemon.worker_pids():
            try:
                if time.time() - psutil.Process(pid).create_time() > 2.2:
                    return pid
            except psutil.NoSuchProcess:
                continue
        return None

    while True:
        try:
            os.kill(poll_until(old_worker, timeout=30), signal.SIGKILL)
            return
        except ProcessLookupError:
            continue  # it exited between the listing and the kill


def _summed(histogram: dict) -> int:
    return sum(n for buckets in histogram.values() for _, n, _ in buckets)


def test_counters_equal_count_after_kills_retries_cancels_and_prunes(
        make_daemon, engine_settings, engine_client, tmp_path):
    backend = engine_client.backend
    log = str(tmp_path / "fan.log")
    delayed = queue.enqueue_many([{"name": "echo", "args": {"i": i}, "delay": 3600,
                                   "queue": QUEUES[i % 2]} for i in range(10)])
    for task_id in delayed[:4]:
        queue.cancel(task_id)                      # queued -> cancelled, never run
    queue.enqueue_many([{"name": "sleep", "args": {"seconds": 0.02}, "max_attempts": 20,
                         "queue": name} for _ in range(SLEEPERS) for name in QUEUES])
    queue.enqueue_many([{"name": "always_fails", "queue": QUEUES[i % 2]} for i in range(12)])
    queue.enqueue_many([{"name": "fan_out", "args": {"children": 4, "log": log}}
                        for _ in range(3)])
    queue.enqueue_many([{"name": "echo", "args": {"u": i}, "unique_key": f"u{i % 5}"}
                        for i in range(10)])  # five of them are the same task as another
    daemon = make_daemon("worker", config=engine_settings)
    for _ in range(KILLS):
        _kill_a_busy_worker(daemon)
    assert _unfinished(backend) > 0  # the kills hit a drain in progress
    poll_until(lambda: _unfinished(backend) == 0, timeout=180,
               message=lambda: f"rows {_rows(backend)}")

    # Transitions outside the workers: retry one by one and in bulk, bulk cancel and delete.
    failed = [t["id"] for t in backend.list(status="failed", limit=100)]
    assert len(failed) == 12
    queue.retry(failed[0])
    backend.bulk("retry", ids=failed[1:6])
    backend.bulk("cancel", ids=delayed[4:6])
    backend.bulk("delete", ids=delayed[:3])
    poll_until(lambda: _unfinished(backend) == 0, timeout=60,
               message=lambda: f"rows {_rows(backend)}")
    before_prune = _rows(backend)
    assert backend.counts() == before_prune

    # Retention deletes every succeeded task; the failed and cancelled ones stay.
    assert reaper.prune(backend, succeeded_s=-60, failed_s=10 ** 6) > 2 * SLEEPERS
    daemon.stop(timeout=20)
    assert backend.counts() == _rows(backend)
    totals = backend.totals()
    for name in QUEUES:
        assert totals[name]["created"] == sum(before_prune[name].values()) + (
            2 if name == "default" else 1)  # the three deleted in bulk: 0 and 2 / 1
    entered = {s: sum(t["entered"].get(s, 0) for t in totals.values())
               for s in ("running", "succeeded", "failed")}
    # Every claim was one pickup; every end with a start time one run time.
    assert _summed(backend.histogram("pickup")) == entered["running"]
    assert _summed(backend.histogram("duration")) == entered["succeeded"] + entered["failed"]
    minutes = backend.minutes(time.time() - 3600)
    assert sum(m["succeeded"] for m in minutes) == entered["succeeded"]
    assert sum(m["failed"] for m in minutes) == entered["failed"]
    assert sum(m["picked"] for m in minutes) == entered["running"]


def _step(log, label: str, after=(), **args) -> dict:
    return {"name": "wf_step", "ref": label, "depends_on": list(after),
            "args": {"log": str(log), "label": label, **args}}


def test_counters_equal_count_through_workflow_transitions(
        engine_client, monkeypatch, tmp_path):
    """Enqueued blocked, released to queued, cancelled down the graph by a failure,
    back to blocked on retry, cancelled blocked (one and bulk), pruned: after each
    step the counters equal COUNT(*) (run eagerly, so every step is settled)."""
    backend = engine_client.backend
    log, flag = tmp_path / "wf.log", tmp_path / "fail-b"
    flag.touch()
    workers = engine_client.engine
    monkeypatch.setattr(engine_client, "engine", InlineEngine(backend))
    ids = dict(zip("abcde", queue.enqueue_many([
        _step(log, "a"), _step(log, "b", ["a"], fail_while=str(flag)),
        _step(log, "c", ["b"]), _step(log, "d", ["c"]), _step(log, "e", ["a"])]), strict=True))
    status = {k: queue.get_task(i)["status"] for k, i in ids.items()}
    assert status == {"a": "succeeded", "b": "failed", "c": "cancelled", "d": "cancelled",
                      "e": "succeeded"}  # released to queued and run; cancelled downstream
    assert backend.counts() == _rows(backend)
    monkeypatch.setattr(engine_client, "engine", workers)
    queue.retry(ids["b"])                             # c and d: cancelled -> blocked
    assert queue.get_task(ids["d"])["status"] == "blocked"
    assert backend.counts() == _rows(backend)
    queue.cancel(ids["c"])                            # blocked -> cancelled, and d with it
    assert queue.get_task(ids["d"])["status"] == "cancelled"
    assert backend.counts() == _rows(backend)
    held = queue.enqueue("echo", run_after=4_000_000_000)
    waiting = queue.enqueue_many([{"name": "echo", "depends_on": [held], "queue": "media"}
                                  for _ in range(3)])  # enqueued blocked
    assert backend.counts() == _rows(backend)
    backend.bulk("cancel", ids=waiting[:2])
    queue.cancel(held)                                # the last one cancelled by its dependency
    assert backend.counts() == _rows(backend)
    future = 4_000_000_000
    assert backend.prune(succeeded_before=future, failed_before=future) > 0
    assert backend.counts() == _rows(backend)
