"""Bad input to every endpoint: a 4xx with the JSON error shape, never a 500."""
from __future__ import annotations

import pytest
from webtools import assert_error

HUGE = b'{"name": "echo", "args": {"blob": "' + b"x" * (2 * 1024 * 1024) + b'"}}'

JSON_TYPE = {"Content-Type": "application/json"}  # without it the body is refused with 403
MALFORMED = [b"{not json", b"", b"\xff\xfe", b'{"name": NaN}', b"[" * 100_000 + b"]" * 100_000]


@pytest.mark.parametrize("path,method", [("/api/tasks", "POST"), ("/api/tasks/batch", "POST"),
                                         ("/api/settings", "PATCH")])
def test_malformed_json_is_a_400(api, path, method):
    for raw in MALFORMED:
        body = assert_error(api.request(method, path, data=raw, headers=JSON_TYPE), 400)
        assert body["error"] in ("malformed JSON", "invalid number")


@pytest.mark.parametrize("path,method", [("/api/tasks", "POST"), ("/api/tasks/batch", "POST"),
                                         ("/api/settings", "PATCH")])
def test_huge_body_is_a_413(api, path, method):
    body = assert_error(api.request(method, path, data=HUGE, headers=JSON_TYPE), 413)
    assert body["error"] == "request body too large"


@pytest.mark.parametrize("body", [
    {"args": {}}, {"name": 5}, {"name": "no-such-task"}, {"name": "echo", "args": [1]},
    {"name": "echo", "priority": "high"}, {"name": "echo", "priority": 2**70},
    {"name": "echo", "max_attempts": 0}, {"name": "echo", "timeout": -1},
    {"name": "echo", "delay": "soon"}, {"name": "echo", "run_after": "tomorrow"},
    {"name": "echo", "unique_key": ""}, {"name": "echo", "queue": ["a"]},
    {"name": "echo", "parent_id": 2**63}, {"name": "echo", "parent_id": 9_000_000},
    b'{"name": "echo", "args": {"x": 1e400}}', {"name": "echo", "bogus": 1}, ["echo"], "echo", 3,
])
def test_enqueue_with_wrong_types_or_values_is_a_400(api, body):
    sent = {"data": body, "headers": JSON_TYPE} if isinstance(body, bytes) else {"json": body}
    assert_error(api.post("/api/tasks", **sent), 400)


@pytest.mark.parametrize("body", [[], {}, [{"name": "echo"}, "x"], [{"name": "echo", "delay": -1}]])
def test_batch_with_wrong_shapes_is_a_400(api, body):
    assert_error(api.post("/api/tasks/batch", json=body), 400)


def test_batch_over_the_cap_is_a_413(api):
    assert_error(api.post("/api/tasks/batch", json=[{"name": "echo"}] * 1001), 413)


@pytest.mark.parametrize("suffix", ["", "/cancel", "/retry", "/artifact"])
def test_unknown_task_ids_are_404_and_non_ids_are_400(api, suffix):
    method = "POST" if suffix in ("/cancel", "/retry") else "GET"
    assert_error(api.request(method, f"/api/tasks/987654321{suffix}"), 404)
    assert_error(api.request(method, f"/api/tasks/99999999999999999999999{suffix}"), 404)
    assert_error(api.request(method, f"/api/tasks/abc{suffix}"), 400)
    assert_error(api.request(method, f"/api/tasks/-1{suffix}"), 400)


@pytest.mark.parametrize("query", [
    {"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"cursor": "x"}, {"cursor": 2**64},
    {"status": "done"}, {"parent_id": "p"}, {"limit": "\u0661"},
])
def test_list_with_bad_query_is_a_400(api, query):
    assert_error(api.get("/api/tasks", params=query), 400)


def test_unknown_paths_and_methods_are_json_errors(api):
    assert_error(api.get("/api/nothing-here"), 404)
    assert_error(api.request("DELETE", "/api/tasks"), 405)


def test_library_endpoints_answer_with_the_error_shape(api):
    assert api.get("/api/library").status_code == 200
    assert_error(api.get("/api/library/abc"), 400)
    assert_error(api.get("/api/library/999999"), 404)
    assert_error(api.get("/api/library", params={"limit": 0}), 400)
