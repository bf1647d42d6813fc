"""``GET /api/limits`` and ``PUT /api/rate-limits/<key>`` against a running daemon."""
from __future__ import annotations

import pytest


def test_put_rate_limit_sets_it_for_every_daemon_and_null_removes_it(api):
    response = api.request("PUT", "/api/rate-limits/api:github", json={"rate": "5000/h"})
    assert response.status_code == 200, response.text
    assert response.json() == {"key": "api:github", "rate": "5000/h", "changed": True}
    rates = {r["key"]: r for r in api.get("/api/limits").json()["rates"]}
    assert rates["api:github"]["rate"] == "5000/h" and rates["api:github"]["used"] == 0
    gone = api.request("PUT", "/api/rate-limits/api:github", json={"rate": None})
    assert gone.json() == {"key": "api:github", "rate": None, "changed": True}
    assert "api:github" not in {r["key"] for r in api.get("/api/limits").json()["rates"]}


@pytest.mark.parametrize("body", [{"rate": "10/d"}, {"rate": "-3/s"}, {"rate": "0/m"},
                                  {"rate": 10}, {}, {"rate": "1/s", "burst": 3}, []])
def test_put_rate_limit_refuses_a_malformed_rate_with_400(api, body):
    response = api.request("PUT", "/api/rate-limits/smtp", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid rate", "invalid body")
    assert "smtp" not in {r["key"] for r in api.get("/api/limits").json()["rates"]}


@pytest.mark.parametrize("fields", [{"concurrency_key": "k", "concurrency": -1},
                                    {"concurrency_key": "k", "concurrency": 0},
                                    {"concurrency": 2}, {"concurrency_key": ""},
                                    {"rate_key": 3}])
def test_enqueue_refuses_bad_flow_options_with_400(api, fields):
    response = api.post("/api/tasks", json={"name": "echo", **fields})
    assert response.status_code == 400, response.text


def test_limits_list_a_busy_key_and_the_task_page_says_it_waits(api):
    key = "export:api-test"
    first = api.enqueue("timed", {"seconds": 3}, concurrency_key=key)
    second = api.enqueue("timed", {"seconds": 0}, concurrency_key=key)
    assert second["concurrency_key"] == key and second["concurrency_limit"] == 1
    api.wait_status(first["id"], ("running",), timeout=20)
    keys = {k["key"]: k for k in api.get("/api/limits").json()["concurrency"]}
    assert keys[key] == {"key": key, "limit": 1, "running": 1, "queued": 1}
    waiting = api.get(f"/api/tasks/{second['id']}").json()["waiting_for"]
    assert waiting == {"reason": "concurrency", "key": key, "limit": 1, "running": 1}
    page = api.get(f"/tasks/{second['id']}").text
    assert "waits for its concurrency key" in page and key in page
    api.wait_status(second["id"], timeout=30)
