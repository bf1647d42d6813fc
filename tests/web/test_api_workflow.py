"""Dependencies over HTTP: POST /api/tasks and /batch with depends_on and refs,
GET /api/tasks/<id>/workflow."""
from __future__ import annotations


def _count(api, queue: str) -> int:
    return len(api.get("/api/tasks", params={"queue": queue, "limit": 100}).json()["tasks"])


def test_a_batch_with_refs_builds_a_diamond_and_the_workflow_returns_it(api):
    response = api.post("/api/tasks/batch", json=[
        {"name": "echo", "queue": "wf-diamond", "ref": "d", "depends_on": ["b", "c"]},
        {"name": "echo", "queue": "wf-diamond", "ref": "a", "run_after": 4_000_000_000},
        {"name": "echo", "queue": "wf-diamond", "ref": "b", "depends_on": ["a"]},
        {"name": "echo", "queue": "wf-diamond", "ref": "c", "depends_on": ["a"]}])
    assert response.status_code == 201, response.text
    d, a, b, c = response.json()["ids"]
    graph = api.get(f"/api/tasks/{d}/workflow").json()
    assert [n["id"] for n in graph["nodes"]] == sorted([a, b, c, d])
    assert {n["id"]: n["status"] for n in graph["nodes"]} == {
        a: "queued", b: "blocked", c: "blocked", d: "blocked"}
    assert sorted((e["from"], e["to"], e["kind"]) for e in graph["edges"]) == sorted([
        (a, b, "depends_on"), (a, c, "depends_on"), (b, d, "depends_on"), (c, d, "depends_on")])
    assert graph["truncated"] is False


def test_a_cycle_in_a_batch_is_a_400_and_nothing_is_enqueued(api):
    response = api.post("/api/tasks/batch", json=[
        {"name": "echo", "queue": "wf-cycle", "ref": "a", "depends_on": ["b"]},
        {"name": "echo", "queue": "wf-cycle", "ref": "b", "depends_on": ["a"]}])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid depends_on"
    assert _count(api, "wf-cycle") == 0


def test_an_unknown_ref_or_task_id_is_a_400_and_nothing_is_enqueued(api):
    for after in (["nowhere"], [9_000_000_000]):
        response = api.post("/api/tasks/batch", json=[
            {"name": "echo", "queue": "wf-unknown", "ref": "a"},
            {"name": "echo", "queue": "wf-unknown", "depends_on": after}])
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid depends_on"
    single = api.post("/api/tasks", json={"name": "echo", "queue": "wf-unknown",
                                          "depends_on": [9_000_000_000]})
    assert single.status_code == 400
    assert _count(api, "wf-unknown") == 0


def test_post_with_depends_on_answers_a_blocked_task(api):
    first = api.enqueue("echo", queue="wf-single", run_after=4_000_000_000)
    response = api.post("/api/tasks", json={"name": "echo", "queue": "wf-single",
                                            "depends_on": [first["id"]]})
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["depends_on"]) == (
        "blocked", [first["id"]])
    assert api.get(f"/api/tasks/{response.json()['id']}").json()["depends_on"] == [first["id"]]


def test_the_workflow_of_an_unknown_task_is_a_404(api):
    assert api.get("/api/tasks/9000000000/workflow").status_code == 404
