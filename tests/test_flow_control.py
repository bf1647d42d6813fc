"""Flow control against real daemons on both engines: per-key concurrency across
daemons, a shared rate limit, and a key's slot freed when its worker is killed."""
from __future__ import annotations

import os
import signal
import time

from helpers import poll_until

from hopper.app import queue


def _start(database, make_daemon, other_settings, daemons: int, **overrides):
    """``daemons`` worker daemons on the test's database (PostgreSQL gets two)."""
    started = [make_daemon(command="worker", database=database, **overrides)]
    for i in range(1, daemons):
        started.append(make_daemon(command="worker", config=other_settings(f"d{i}", **overrides)))
    return started


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any instant (an end before a start at a tie)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _finished(ids: list[int], timeout: float) -> list[dict]:
    """The tasks once all succeeded; polls one cheap listing, not every task (reading
    120 tasks five times a second took CPU from the workers being measured)."""
    last = max(ids)

    def done() -> bool:
        page = queue.list_tasks(status="succeeded", cursor=last + 1, limit=len(ids) + 200)
        return len({t["id"] for t in page} & set(ids)) == len(ids)

    poll_until(done, timeout=timeout, interval=0.25,
               message=lambda: f"not all done: {queue.client().backend.limits()}")
    return [queue.get_task(i) for i in ids]


def test_concurrency_keys_never_run_more_than_their_limit_across_daemons(
        database, engine_client, make_daemon, other_settings):
    daemons = 2 if database.startswith("postgresql") else 1
    _start(database, make_daemon, other_settings, daemons, workers=3)
    began = time.time()
    one = queue.enqueue_many([{"name": "timed", "args": {"seconds": 0.05},
                               "concurrency_key": "user:1", "concurrency": 1}
                              for _ in range(60)])
    two = queue.enqueue_many([{"name": "timed", "args": {"seconds": 0.05},
                               "concurrency_key": "user:2", "concurrency": 2}
                              for _ in range(60)])
    done_one, done_two = _finished(one, 60), _finished(two, 60)
    runs_one = [(t["result"]["start"], t["result"]["end"]) for t in done_one]
    runs_two = [(t["result"]["start"], t["result"]["end"]) for t in done_two]
    assert _most_at_once(runs_one) == 1
    assert _most_at_once(runs_two) == 2  # the limit is used, never exceeded
    took_one = max(end for _, end in runs_one) - began
    took_two = max(end for _, end in runs_two) - began
    assert 0.3 < took_two / took_one < 0.75, (took_one, took_two)


def test_rate_limit_spreads_claims_of_its_key_across_daemons(
        database, engine_client, make_daemon, other_settings):
    _start(database, make_daemon, other_settings, 2, workers=2,
           rate_limits={"api:quota": "10/s"})
    poll_until(lambda: any(r["key"] == "api:quota"
                           for r in engine_client.backend.limits()["rates"]), timeout=20)
    began = time.time()
    ids = queue.enqueue_many([{"name": "timed", "args": {"seconds": 0},
                               "rate_key": "api:quota"} for _ in range(100)])
    tasks = _finished(ids, 30)
    # The database's record of each claim (a task's started_at is when its worker
    # began it, later by however long a loaded machine took to hand it over).
    claims = engine_client.backend.rate_claims("api:quota", since=began)
    assert len(claims) == 100
    # Any window of one second (from any claim on) holds at most 10 claims.
    gaps = [claims[i + 10] - claims[i] for i in range(len(claims) - 10)]
    assert min(gaps) >= 1.0, sorted(gaps)[:5]
    took = max(t["finished_at"] for t in tasks) - began
    assert 8.5 <= took <= 11.5, (took, [round(c - began, 2) for c in claims])


def test_task_without_the_rate_key_is_not_delayed_by_a_rate_limited_backlog(
        database, engine_client, make_daemon, other_settings):
    _start(database, make_daemon, other_settings, 2, workers=2,
           rate_limits={"api:quota": "2/s"})
    poll_until(lambda: engine_client.backend.limits()["rates"], timeout=20)
    queue.enqueue_many([{"name": "timed", "args": {"seconds": 0}, "rate_key": "api:quota"}
                        for _ in range(40)])
    time.sleep(0)  # nothing to wait for: the backlog is there from now on
    free = queue.enqueue("timed", {"seconds": 0})
    task = _finished([free], 10)[0]
    assert task["started_at"] - task["created_at"] < 1.0
    waiting = [t for t in queue.list_tasks(status="queued", limit=50) if t["rate_key"]]
    assert waiting, "the rate-limited backlog should still be queued"


def test_killed_worker_frees_its_keys_only_slot_with_the_rescue(
        database, engine_client, make_daemon):
    daemon = make_daemon(command="worker", database=database, workers=2)
    held = queue.enqueue("timed", {"seconds": 120}, concurrency_key="export:7", max_attempts=1)
    nxt = queue.enqueue("timed", {"seconds": 0}, concurrency_key="export:7")
    poll_until(lambda: queue.get_task(held)["status"] == "running", timeout=20)
    assert queue.get_task(nxt)["waiting_for"]["reason"] == "concurrency"
    pid = poll_until(lambda: [w["pid"] for w in daemon.workers() if w["task_id"] == held],
                     timeout=10)[0]
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    rescue_s = 5 + 2  # the test settings' lease, and a heartbeat to notice it
    poll_until(lambda: queue.get_task(nxt)["status"] == "succeeded", timeout=rescue_s + 5)
    assert queue.get_task(nxt)["started_at"] - killed_at < rescue_s
    assert queue.get_task(held)["status"] == "failed"
    keys = {k["key"]: k for k in engine_client.backend.limits()["concurrency"]}
    assert "export:7" not in keys  # nothing queued or running under it any more
