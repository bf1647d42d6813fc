"""Tasks over HTTP against a running daemon: enqueue, batch, list, cancel, retry."""
from __future__ import annotations

import uuid

from webtools import assert_error


def _queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def test_enqueued_task_runs_to_succeeded(api):
    response = api.post("/api/tasks", json={"name": "echo", "args": {"hello": "web"}})
    assert response.status_code == 201
    created = response.json()
    # A fast worker may already have claimed it by the time the response is built.
    assert created["status"] in ("queued", "running", "succeeded") and created["name"] == "echo"
    assert response.headers["Location"] == f"/api/tasks/{created['id']}"
    done = api.wait_status(created["id"])
    assert done["result"] == {"hello": "web"}
    assert done["worker"] and done["finished_at"] >= done["started_at"]


def test_batch_enqueues_every_task(api):
    queue = _queue()
    body = [{"name": "echo", "args": {"i": i}, "queue": queue} for i in range(5)]
    response = api.post("/api/tasks/batch", json=body)
    assert response.status_code == 201
    ids = response.json()["ids"]
    assert len(ids) == 5 and response.json()["created"] == [True] * 5
    results = [api.wait_status(task_id)["result"] for task_id in ids]
    assert results == [{"i": i} for i in range(5)]


def test_batch_with_one_bad_task_enqueues_nothing(api):
    queue = _queue()
    body = [{"name": "echo", "queue": queue}, {"name": "no-such-task", "queue": queue}]
    error = assert_error(api.post("/api/tasks/batch", json=body), 400)
    assert error["error"] == "unknown task" and error["detail"]["index"] == 1
    assert api.get("/api/tasks", params={"queue": queue}).json()["tasks"] == []


def test_filters_and_cursor_pages_cover_each_task_once(api):
    queue = _queue()
    ids = api.post("/api/tasks/batch", json=[
        {"name": "echo", "queue": queue, "delay": 3600} for _ in range(7)]).json()["ids"]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"queue": queue, "status": "queued", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/tasks", params=params).json()
        seen += [t["id"] for t in page["tasks"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert pages == 3
    params = {"queue": queue, "status": "succeeded"}
    assert api.get("/api/tasks", params=params).json()["tasks"] == []
    by_name = api.get("/api/tasks", params={"queue": queue, "name": "echo", "limit": 500}).json()
    assert len(by_name["tasks"]) == 7


def test_parent_id_filter_lists_children(api):
    parent = api.enqueue("echo", queue=_queue(), delay=3600)
    children = api.post("/api/tasks/batch", json=[
        {"name": "echo", "parent_id": parent["id"], "delay": 3600} for _ in range(2)]).json()["ids"]
    listed = api.get("/api/tasks", params={"parent_id": parent["id"]}).json()["tasks"]
    assert sorted(t["id"] for t in listed) == sorted(children)
    assert api.get(f"/api/tasks/{parent['id']}").json()["children"] == {"queued": 2}


def test_duplicate_unique_key_returns_the_existing_task(api):
    key = f"report-{uuid.uuid4().hex}"
    first = api.post("/api/tasks", json={"name": "echo", "unique_key": key, "delay": 3600})
    second = api.post("/api/tasks", json={"name": "echo", "unique_key": key, "delay": 3600})
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_cancel_queued_task_then_cancel_again_conflicts(api):
    task = api.enqueue("echo", queue=_queue(), delay=3600)
    response = api.post(f"/api/tasks/{task['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert_error(api.post(f"/api/tasks/{task['id']}/cancel"), 409)


def test_retry_requeues_a_failed_task(api):
    task = api.enqueue("always_fails", queue=_queue())
    failed = api.wait_status(task["id"], ("failed",))
    assert failed["attempts"] == 2 and "always fails" in failed["error"]
    response = api.post(f"/api/tasks/{task['id']}/retry")
    assert response.status_code == 200
    assert response.json()["status"] in ("queued", "running")
    assert response.json()["attempts"] in (0, 1)
    assert api.wait_status(task["id"], ("failed",))["attempts"] == 2


def test_retry_of_a_queued_task_conflicts(api):
    task = api.enqueue("echo", queue=_queue(), delay=3600)
    assert_error(api.post(f"/api/tasks/{task['id']}/retry"), 409)


def test_artifact_of_a_finished_task_is_served(api, shared_daemon):
    artifacts = shared_daemon.config.parent / "data" / "artifacts"
    (artifacts / "exports").mkdir(parents=True, exist_ok=True)
    (artifacts / "exports" / "report.csv").write_text("a,b\n1,2\n")
    task = api.enqueue("echo", {"artifact": "exports/report.csv"})
    api.wait_status(task["id"])
    response = api.get(f"/api/tasks/{task['id']}/artifact")
    assert response.status_code == 200
    assert response.text == "a,b\n1,2\n"
    assert "report.csv" in response.headers["Content-Disposition"]


def test_artifact_outside_the_data_folder_is_refused(api, shared_daemon):
    outside = shared_daemon.config.parent / "secret.txt"
    outside.write_text("not for download")
    task = api.enqueue("echo", {"artifact": "../secret.txt"})
    api.wait_status(task["id"])
    assert_error(api.get(f"/api/tasks/{task['id']}/artifact"), 403)


def test_artifact_of_an_unfinished_task_conflicts(api):
    task = api.enqueue("echo", {"artifact": "x.csv"}, queue=_queue(), delay=3600)
    assert_error(api.get(f"/api/tasks/{task['id']}/artifact"), 409)


def test_queues_and_workers_describe_the_daemon(api):
    queue = _queue()
    api.enqueue("echo", queue=queue, delay=3600)
    queues = api.get("/api/queues").json()
    assert queues["queues"][queue]["counts"] == {"queued": 1}
    workers = api.get("/api/workers").json()
    assert len(workers) == 2
    assert {"id", "pid", "state", "task_id", "cpu_percent", "rss_bytes",
            "started_at"} <= set(workers[0])


def test_health_reports_database_and_pool(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "db": "ok", "pool": {"status": "ok", "workers": 2}}


def test_without_a_token_the_api_needs_no_authorization(api):
    assert api.get("/api/tasks").status_code == 200
    assert api.get("/metrics").status_code == 200
