"""POST /api/tasks/bulk, search with q, and GET /api/throughput over real HTTP."""
from __future__ import annotations

import uuid

from webtools import assert_error


def _failed_tasks(api, queue: str, n: int) -> list[int]:
    ids = [api.enqueue("always_fails", queue=queue, max_attempts=1)["id"] for _ in range(n)]
    for task_id in ids:
        api.wait_status(task_id, ("failed",))
    return ids


def test_bulk_retry_by_filter_reports_matched_and_changed(api):
    queue = f"b-{uuid.uuid4().hex[:8]}"
    ids = _failed_tasks(api, queue, 3)
    body = {"action": "retry", "filter": {"status": "failed", "queue": queue}}
    counted = api.post("/api/tasks/bulk", json={**body, "dry_run": True})
    assert counted.status_code == 200 and counted.json()["matched"] == 3
    assert counted.json()["changed"] == 0
    done = api.post("/api/tasks/bulk", json=body)
    assert done.status_code == 200
    assert (done.json()["matched"], done.json()["changed"]) == (3, 3)
    for task_id in ids:  # each ran again and failed again (attempts reset to 0, then 1)
        assert api.wait_status(task_id, ("failed",))["attempts"] == 1


def test_bulk_delete_by_ids_deletes_finished_tasks_only(api):
    queue = f"d-{uuid.uuid4().hex[:8]}"
    finished = _failed_tasks(api, queue, 2)
    waiting = api.enqueue("echo", queue=queue, delay=3600)["id"]
    response = api.post("/api/tasks/bulk", json={"action": "delete", "ids": [*finished, waiting]})
    assert response.json() == {"matched": 2, "changed": 2, "limit": 10000}
    assert api.get(f"/api/tasks/{finished[0]}").status_code == 404
    assert api.get(f"/api/tasks/{waiting}").json()["status"] == "queued"


def test_bulk_refuses_an_empty_filter(api):
    body = assert_error(api.post("/api/tasks/bulk", json={"action": "delete", "filter": {}}), 400)
    assert body["error"] == "empty filter"


def test_bulk_refuses_an_unknown_action(api):
    assert_error(api.post("/api/tasks/bulk", json={"action": "purge", "ids": [1]}), 400)


def test_bulk_refuses_ids_and_filter_together(api):
    assert_error(api.post("/api/tasks/bulk", json={"action": "retry", "ids": [1],
                                                   "filter": {"status": "failed"}}), 400)


def test_list_q_finds_text_in_args(api):
    marker = uuid.uuid4().hex
    task_id = api.enqueue("echo", {"note": f"find {marker} here"})["id"]
    response = api.get("/api/tasks", params={"q": marker})
    assert [t["id"] for t in response.json()["tasks"]] == [task_id]


def test_throughput_counts_finished_tasks_per_minute(api):
    queue = f"t-{uuid.uuid4().hex[:8]}"
    task_id = api.enqueue("echo", queue=queue)["id"]
    api.wait_status(task_id)
    rows = [r for r in api.get("/api/throughput").json()["minutes"] if r["queue"] == queue]
    assert sum(r["succeeded"] for r in rows) == 1
    assert sum(r["picked"] for r in rows) == 1
