"""No other web site can act through a user's browser, on a default install
(no token, loopback bind): cross-site and non-JSON state changes, foreign Host
names (DNS rebinding), artifacts outside data/artifacts/, security headers."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from urllib.parse import urlsplit

import pytest
import requests
from helpers import poll_until
from webtools import Api, assert_error

EVIL = "http://evil.example"


def _task_table(daemon) -> list[tuple]:
    db = sqlite3.connect(daemon.config.parent / "data" / "hopper.db")
    try:
        return db.execute("SELECT id, status, attempts, run_after, finished_at FROM tasks "
                          "ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.fixture
def targets(api) -> list[tuple[str, str, dict]]:
    """Every state-changing endpoint, with a body it would accept: a queued task to
    cancel, a cancelled one to retry."""
    to_cancel = api.enqueue("echo", {"n": 1}, delay=3600)
    to_retry = api.enqueue("echo", {"n": 2}, delay=3600)
    assert api.post(f"/api/tasks/{to_retry['id']}/cancel").status_code == 200
    return [
        ("POST", "/api/tasks", {"name": "echo", "args": {"evil": True}}),
        ("POST", f"/api/tasks/{to_cancel['id']}/cancel", {}),
        ("POST", f"/api/tasks/{to_retry['id']}/retry", {}),
        ("POST", "/api/tasks/bulk", {"action": "cancel", "filter": {"status": "queued"}}),
        ("POST", "/api/tasks/batch", [{"name": "echo"}]),
        ("PATCH", "/api/settings", {"workers": 1}),
    ]


def _assert_refused_and_nothing_changed(api, shared_daemon, targets, **send):
    tasks_before, settings_before = _task_table(shared_daemon), shared_daemon.config.read_text()
    for method, path, body in targets:
        response = api.request(method, path, data=json.dumps(body), **send)
        error = assert_error(response, 403)
        assert error["error"] == "cross-site request refused", (method, path, error)
    assert _task_table(shared_daemon) == tasks_before
    assert shared_daemon.config.read_text() == settings_before


def test_text_plain_state_changes_are_refused_and_change_nothing(api, shared_daemon, targets):
    _assert_refused_and_nothing_changed(api, shared_daemon, targets,
                                        headers={"Content-Type": "text/plain"})


def test_form_encoded_and_untyped_bodies_to_the_api_are_refused(api, shared_daemon, targets):
    _assert_refused_and_nothing_changed(
        api, shared_daemon, targets,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    # A browser sends a Blob body without any Content-Type, also without asking first.
    _assert_refused_and_nothing_changed(api, shared_daemon, targets, headers={})


def test_json_from_another_origin_is_refused_and_changes_nothing(api, shared_daemon, targets):
    _assert_refused_and_nothing_changed(
        api, shared_daemon, targets,
        headers={"Content-Type": "application/json", "Origin": EVIL})


def test_cross_site_fetch_metadata_is_refused_and_changes_nothing(api, shared_daemon, targets):
    for site in ("cross-site", "same-site"):
        _assert_refused_and_nothing_changed(
            api, shared_daemon, targets,
            headers={"Content-Type": "application/json", "Sec-Fetch-Site": site})
    # The browser's own Sec-Fetch-Site outweighs an Origin that matches.
    _assert_refused_and_nothing_changed(
        api, shared_daemon, targets,
        headers={"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site",
                 "Origin": shared_daemon.base_url})


def test_an_opaque_origin_without_fetch_metadata_is_refused(api, shared_daemon, targets):
    _assert_refused_and_nothing_changed(
        api, shared_daemon, targets, headers={"Content-Type": "application/json",
                                              "Origin": "null"})


def test_same_origin_json_requests_still_work(api, shared_daemon):
    page_origin = {"Origin": shared_daemon.base_url, "Sec-Fetch-Site": "same-origin"}
    created = api.post("/api/tasks", json={"name": "echo", "args": {"ok": 1}, "delay": 3600},
                       headers=page_origin)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    cancelled = api.post(f"/api/tasks/{task_id}/cancel", headers=page_origin)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    retried = api.post(f"/api/tasks/{task_id}/retry", json={}, headers=page_origin)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"


UI_AND_API_ROUTES = ["/", "/tasks", "/tasks/1", "/settings", "/library", "/login",
                     "/api/tasks", "/api/tasks/1", "/api/queues", "/api/workers",
                     "/api/settings", "/api/library", "/api/openapi.json", "/metrics",
                     "/healthz", "/static/app.js", "/no/such/page"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}",
                                  "127.0.0.1.nip.io:{port}", "localhost.evil.example"])
def test_a_foreign_host_name_is_refused_on_every_route(api, shared_daemon, host):
    port = urlsplit(shared_daemon.base_url).port
    for path in UI_AND_API_ROUTES:
        response = api.get(path, headers={"Host": host.format(port=port)})
        error = assert_error(response, 403)
        assert error["error"] == "host not allowed", path
    tasks_before = _task_table(shared_daemon)
    response = api.post("/api/tasks", json={"name": "echo"},
                        headers={"Host": host.format(port=port)})
    assert_error(response, 403)
    assert _task_table(shared_daemon) == tasks_before


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "localhost",
                                  "[::1]:{port}", "LOCALHOST:{port}"])
def test_loopback_names_are_served_so_a_container_healthcheck_works(api, shared_daemon, host):
    port = urlsplit(shared_daemon.base_url).port
    response = api.get("/healthz", headers={"Host": host.format(port=port)})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def test_allowed_hosts_admits_a_name_the_user_lists(web_daemon):
    daemon = web_daemon(workers=1, server={"allowed_hosts": ["hopper.lan"]})
    api = Api(daemon.base_url)
    port = urlsplit(daemon.base_url).port
    assert api.get("/api/workers", headers={"Host": f"hopper.lan:{port}"}).status_code == 200
    assert_error(api.get("/api/workers", headers={"Host": f"other.lan:{port}"}), 403)


def _artifact_response(api, artifact: str) -> requests.Response:
    task = api.enqueue("echo", {"artifact": artifact})
    api.wait_status(task["id"])
    return api.get(f"/api/tasks/{task['id']}/artifact")


def test_a_bare_database_name_is_looked_up_in_data_artifacts_only(api):
    error = assert_error(_artifact_response(api, "hopper.db"), 404)
    assert error["error"] == "artifact missing"


@pytest.mark.parametrize("artifact", [
    ".session-key", "../hopper.db", "../.session-key", "../x", "../../settings.yaml",
    "{data}/hopper.db", "/etc/passwd", "sub/../../hopper.db", "link-out/hopper.db",
    "db-link",
])
def test_artifacts_outside_data_artifacts_are_refused(api, shared_daemon, artifact):
    data = shared_daemon.config.parent / "data"
    artifacts = data / "artifacts"
    artifacts.mkdir(exist_ok=True)
    for name, target in (("link-out", data), ("db-link", data / "hopper.db")):
        if not (artifacts / name).is_symlink():
            os.symlink(target, artifacts / name)
    response = _artifact_response(api, artifact.format(data=data))
    error = assert_error(response, 403)
    assert error["error"] == "artifact not served"
    assert b"SQLite" not in response.content


def test_a_file_under_data_artifacts_is_served(api, shared_daemon):
    artifacts = shared_daemon.config.parent / "data" / "artifacts"
    (artifacts / "exports").mkdir(parents=True, exist_ok=True)
    (artifacts / "exports" / "library.csv").write_text("path,size\na.jpg,3\n")
    response = _artifact_response(api, "exports/library.csv")
    assert response.status_code == 200
    assert response.text == "path,size\na.jpg,3\n"
    assert 'filename=library.csv' in response.headers["Content-Disposition"]
    assert_error(_artifact_response(api, "exports/gone.csv"), 404)


CSP = re.compile(r"default-src 'self';.*frame-ancestors 'none'")


@pytest.mark.parametrize("path", ["/", "/tasks", "/settings", "/library", "/login",
                                  "/api/tasks", "/api/settings", "/api/openapi.json",
                                  "/metrics", "/healthz", "/static/app.js", "/tasks/999999",
                                  "/api/tasks/999999"])
def test_every_response_carries_the_security_headers(api, path):
    response = api.get(path)
    assert response.status_code in (200, 404), (path, response.status_code)
    assert CSP.search(response.headers["Content-Security-Policy"]), path
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_refusals_carry_the_security_headers_too(api):
    response = api.post("/api/tasks", data="{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 403
    assert CSP.search(response.headers["Content-Security-Policy"])


def test_the_session_cookie_is_httponly_and_samesite_strict(api):
    response = api.get("/")  # every page carries a CSRF token, kept in the session
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


TOKEN = "guess-me-not"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_repeated_wrong_tokens_get_429_with_a_growing_retry_after(web_daemon):
    daemon = web_daemon(workers=1, auth={"token": TOKEN})
    browser, base = requests.Session(), daemon.base_url
    csrf = _csrf(browser.get(base + "/login").text)

    def attempt(token: str) -> requests.Response:
        return browser.post(base + "/login", data={"token": token, "csrf_token": csrf},
                            allow_redirects=False, timeout=10)

    for _ in range(3):  # the first wrong tokens are only told so
        response = attempt("wrong")
        assert response.status_code == 200 and "wrong token" in response.text
    assert attempt("wrong").status_code == 200  # this one earns a 1 s lock-out
    locked = attempt(TOKEN)  # even the right token waits: nothing is checked while locked
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == 1
    bearer = requests.get(base + "/api/workers", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)
    assert bearer.status_code == 429  # the same client, guessing through the API
    poll_until(lambda: attempt("wrong").status_code == 200, timeout=5, interval=0.2)
    second = attempt(TOKEN)  # a Response is falsy for a 4xx: compare status codes only
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) == 2  # the lock-out doubled
    poll_until(lambda: attempt(TOKEN).status_code == 302, timeout=10, interval=0.2)
    assert browser.get(base + "/api/workers", timeout=10).status_code == 200
