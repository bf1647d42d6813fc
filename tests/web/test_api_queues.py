"""``/api/queues`` and live queue settings over real HTTP, on both engines."""
from __future__ import annotations

import time

import yaml
from helpers import poll_until
from webtools import Api, _healthy, assert_error

from hopper.app import queue


class _PatientApi(Api):
    """Requests wait up to 30 s: a PATCH fsyncs the settings file and its folder, and
    the suite's daemons share two cores and one disk."""

    def request(self, method: str, path: str, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(method, path, **kwargs)


def _web(make_daemon, database, **overrides) -> Api:
    daemon = make_daemon(database=database, **overrides)
    poll_until(lambda: _healthy(daemon.base_url), timeout=30, message=daemon.read_log)
    api = _PatientApi(daemon.base_url)
    api.daemon = daemon
    return api


def test_queues_report_counts_running_concurrency_paused_and_throughput(
        database, engine_client, make_daemon):
    api = _web(make_daemon, database, workers=2, queues={"limited": {"concurrency": 1}})
    ids = queue.enqueue_many([{"name": "echo", "queue": "limited"} for _ in range(6)])
    poll_until(lambda: all(queue.get_task(i)["status"] == "succeeded" for i in ids), timeout=30)
    blocker = queue.enqueue("sleep", {"seconds": 30}, queue="limited")
    queue.enqueue("echo", queue="limited")
    poll_until(lambda: queue.get_task(blocker)["status"] == "running", timeout=30)
    assert api.post("/api/queues/idle/pause").status_code == 200

    body = api.get("/api/queues").json()
    assert body["window_minutes"] == 60
    limited = body["queues"]["limited"]
    assert limited["counts"] == {"succeeded": 6, "running": 1, "queued": 1}
    assert limited["running"] == 1
    assert limited["concurrency"] == 1
    assert limited["paused"] is False and limited["paused_at"] is None
    assert limited["throughput"]["succeeded_per_minute"] == 0.1
    assert limited["throughput"]["failed_per_minute"] == 0.0
    assert sum(m["succeeded"] for m in limited["throughput"]["minutes"]) == 6
    idle = body["queues"]["idle"]
    assert idle["paused"] is True and abs(idle["paused_at"] - time.time()) < 30
    assert idle["counts"] == {} and idle["concurrency"] is None
    queue.cancel(blocker)


def test_patch_queue_concurrency_is_written_keeping_comments_and_applied_live(
        database, engine_client, make_daemon):
    api = _web(make_daemon, database, workers=2)
    config = api.daemon.config
    config.write_text("# test settings\n" + config.read_text().replace(
        "workers: 2", "workers: 2  # pool size"))
    poll_until(lambda: api.get("/api/settings").json()["settings"]["workers"] == 2, timeout=5)

    response = api.patch("/api/settings", json={"queues": {"video": {"concurrency": 0}}})
    assert response.status_code == 200, response.text
    assert response.json()["written"] == {"queues": {"video": {"concurrency": 0}}}
    assert response.json()["comments_preserved"] is True
    text = config.read_text()
    assert text.startswith("# test settings\n") and "workers: 2  # pool size" in text
    assert yaml.safe_load(text)["queues"] == {"video": {"concurrency": 0}}
    assert api.get("/api/queues").json()["queues"]["video"]["concurrency"] == 0
    _wait_applied(api.daemon, "{'video': 0}")

    # Applied live: with concurrency 0 this daemon leaves video alone ...
    held = queue.enqueue("echo", queue="video")
    control = queue.enqueue("echo")
    assert queue.wait(control, timeout=30)["status"] == "succeeded"
    assert queue.get_task(held)["status"] == "queued"
    # ... and runs it once the limit is raised again.
    assert api.patch("/api/settings", json={"queues": {"video": {"concurrency": 1}}}).ok
    _wait_applied(api.daemon, "{'video': 1}")
    assert queue.wait(held, timeout=30)["status"] == "succeeded"
    assert "# test settings" in config.read_text()


def _wait_applied(daemon, limits: str) -> None:
    """Wait until the supervisor's settings watcher has applied these limits."""
    poll_until(lambda: f"queue concurrency now {limits}" in daemon.read_log(), timeout=10,
               message=daemon.read_log)


def test_bad_queue_input_is_refused_with_a_clear_400_and_changes_nothing(
        database, engine_client, make_daemon):
    api = _web(make_daemon, database, workers=1)
    before = api.daemon.config.read_text()
    body = assert_error(api.post("/api/queues/default/frobnicate"), 400)
    assert body["error"] == "unknown queue action" and "pause" in body["detail"]
    assert_error(api.post("/api/queues/a,b/pause"), 400)
    for bad in ({"queues": {"q": {"concurrency": -1}}}, {"queues": {"q": {"concurrency": "x"}}},
                {"queues": {"q": {"concurrency": 1.5}}}, {"queues": {"q": {"concurrency": True}}},
                {"queues": {"q": {"paused": True}}}, {"queues": {"q": 2}}, {"queues": {}},
                {"queues": []}, {"queues": {"": {"concurrency": 1}}}):
        body = assert_error(api.patch("/api/settings", json=bad), 400)
        assert body["detail"], bad
    body = assert_error(api.patch("/api/settings", json={"queues": {"q": {"concurrency": -1}}}),
                        400)
    assert body["error"] == "invalid concurrency"
    assert "queues.q.concurrency must be an integer from 0" in body["detail"]
    assert api.daemon.config.read_text() == before
    assert engine_client.backend.paused_queues() == {}
