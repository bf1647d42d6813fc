"""Tags and meta over HTTP: enqueue with them, filter ``GET /api/tasks`` by ``tag``."""
from __future__ import annotations

import uuid

import pytest
from webtools import Api, assert_error


def _user() -> str:
    return f"user:{uuid.uuid4().hex[:8]}"


def _listed(api: Api, *tags: str) -> list[int]:
    response = api.get("/api/tasks", params=[("tag", t) for t in tags])
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["tasks"]]


def test_enqueue_returns_tags_and_meta(api):
    user = _user()
    created = api.enqueue("echo", {}, tags=[user, "report"], meta={"title": "Q3"})
    assert created["tags"] == [user, "report"] and created["meta"] == {"title": "Q3"}
    assert api.get(f"/api/tasks/{created['id']}").json()["tags"] == [user, "report"]


def test_batch_stores_each_tasks_tags_and_meta(api):
    user = _user()
    body = [{"name": "echo", "tags": [user], "meta": {"i": i}} for i in range(3)]
    ids = api.post("/api/tasks/batch", json=body).json()["ids"]
    assert _listed(api, user) == ids[::-1]
    assert [api.get(f"/api/tasks/{i}").json()["meta"] for i in ids] == [{"i": i} for i in range(3)]


def test_one_tag_filter_lists_its_tasks(api):
    user, other = _user(), _user()
    mine = [api.enqueue("echo", {}, tags=[user])["id"] for _ in range(2)]
    api.enqueue("echo", {}, tags=[other])
    assert _listed(api, user) == mine[::-1]


def test_several_tag_filters_must_all_match(api):
    user = _user()
    report = api.enqueue("echo", {}, tags=[user, "report"])["id"]
    api.enqueue("echo", {}, tags=[user])
    assert _listed(api, user, "report") == [report]


def test_a_tag_filter_matching_nothing_lists_nothing(api):
    api.enqueue("echo", {}, tags=[_user()])
    assert _listed(api, _user()) == []


@pytest.mark.parametrize("tags", ["user:1", [1], [""], ["x" * 129], ["a\u0000b"],
                                  [f"t{i}" for i in range(21)]])
def test_bad_tags_at_enqueue_are_a_400(api, tags):
    user = _user()
    error = assert_error(api.post("/api/tasks", json={"name": "echo", "tags": tags,
                                                      "meta": {"u": user}}), 400)
    assert error["error"] == "invalid tags"


def test_a_bad_tag_in_a_batch_names_its_index(api):
    body = [{"name": "echo", "tags": ["fine"]}, {"name": "echo", "tags": [""]}]
    error = assert_error(api.post("/api/tasks/batch", json=body), 400)
    assert error["error"] == "invalid tags" and error["detail"]["index"] == 1


@pytest.mark.parametrize("meta, error", [([1], "invalid meta"), ("text", "invalid meta"),
                                          ({"x": "y" * 70000}, "invalid meta")])
def test_bad_meta_at_enqueue_is_a_400(api, meta, error):
    assert assert_error(api.post("/api/tasks", json={"name": "echo", "meta": meta}),
                        400)["error"] == error


@pytest.mark.parametrize("query", ["tag=", "tag=a%00b", "&".join(f"tag=t{i}" for i in range(21))])
def test_bad_tag_filters_are_a_400(api, query):
    assert assert_error(api.get(f"/api/tasks?{query}"), 400)["error"] == "invalid tag"


def test_the_openapi_document_describes_tags_and_meta(api):
    doc = api.get("/api/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/api/tasks"]["get"]["parameters"]}
    assert params["tag"]["schema"]["type"] == "array" and params["tag"]["explode"] is True
    request = doc["components"]["schemas"]["EnqueueRequest"]["properties"]
    assert {"tags", "meta"} <= set(request)
    assert {"tags", "meta"} <= set(doc["components"]["schemas"]["Task"]["properties"])


def test_tag_filters_over_http_on_each_engine(web_daemon, database):
    api = Api(web_daemon(database=database).base_url)
    a = api.enqueue("echo", {}, tags=["user:42", "report"])["id"]
    b = api.enqueue("echo", {}, tags=["user:42"])["id"]
    api.enqueue("echo", {}, tags=["user:7", "report"])
    assert _listed(api, "user:42") == [b, a]
    assert _listed(api, "user:42", "report") == [a]
    assert _listed(api, "user:99") == []


def test_the_task_page_shows_tags_and_meta(api):
    user = _user()
    task_id = api.enqueue("echo", {}, tags=[user], meta={"title": "Q3 report"})["id"]
    page = api.get(f"/tasks/{task_id}").text
    assert f">{user}</a>" in page and "/tasks?tag=user" in page
    assert "Q3 report" in page


def test_the_tasks_page_filters_by_tag(api):
    user = _user()
    mine = api.enqueue("echo", {}, tags=[user])["id"]
    other = api.enqueue("echo", {}, tags=[_user()])["id"]
    page = api.get("/tasks", params={"tag": user}).text
    assert f'href="/tasks/{mine}"' in page and f'href="/tasks/{other}"' not in page
