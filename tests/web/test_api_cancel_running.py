"""Cancelling a running task over HTTP stops it and frees its worker."""
from __future__ import annotations

from helpers import poll_until
from webtools import Api


def test_cancel_running_sleep_stops_it_and_frees_the_worker(web_daemon):
    daemon = web_daemon(workers=1)
    api = Api(daemon.base_url)
    sleeper = api.enqueue("sleep", {"seconds": 60})
    running = api.wait_status(sleeper["id"], ("running",), timeout=10)
    # Workers publish their current task with each heartbeat (every second).
    worker_pid = poll_until(lambda: next((w["pid"] for w in api.get("/api/workers").json()
                                          if w["task_id"] == sleeper["id"]), None), timeout=5)
    response = api.post(f"/api/tasks/{sleeper['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    # The only worker is free again: a new task runs well before the sleep would end.
    follow = api.enqueue("echo", {"after": "cancel"})
    assert api.wait_status(follow["id"], timeout=10)["result"] == {"after": "cancel"}
    assert api.get(f"/api/tasks/{sleeper['id']}").json()["status"] == "cancelled"
    poll_until(lambda: worker_pid not in [w["pid"] for w in api.get("/api/workers").json()],
               timeout=5, message="the worker running the cancelled task was not stopped")
    assert running["started_at"] is not None
