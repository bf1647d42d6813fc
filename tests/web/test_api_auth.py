"""Bearer-token auth, the UI login session and CSRF; startup refusal without a token."""
from __future__ import annotations

import re
import subprocess
import sys

import requests
from daemons import REPO, write_settings
from webtools import Api, assert_error

TOKEN = "s3cret-token"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_token_is_required_for_api_and_metrics_but_not_healthz(web_daemon):
    daemon = web_daemon(workers=1, auth={"token": TOKEN})
    anonymous, wrong, right = Api(daemon.base_url), Api(daemon.base_url, "nope"), \
        Api(daemon.base_url, TOKEN)
    for path in ("/api/tasks", "/api/workers", "/api/settings", "/api/openapi.json", "/metrics"):
        response = assert_error(anonymous.get(path), 401)
        assert response["error"] == "unauthorized"
        assert_error(wrong.get(path), 401)
        assert right.get(path).status_code == 200
    assert anonymous.get("/api/tasks").headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(anonymous.post("/api/tasks", json={"name": "echo"}), 401)
    assert right.post("/api/tasks", json={"name": "echo"}).status_code == 201
    assert anonymous.get("/healthz").status_code == 200


def test_ui_login_keeps_a_session_and_state_changes_need_csrf(web_daemon):
    daemon = web_daemon(workers=1, auth={"token": TOKEN})
    browser = requests.Session()
    base = daemon.base_url
    first = browser.get(base + "/settings", allow_redirects=False)
    assert first.status_code == 302 and "/login" in first.headers["Location"]
    login_page = browser.get(base + "/login")
    bad = browser.post(base + "/login", data={"token": "wrong",
                                              "csrf_token": _csrf(login_page.text)})
    assert "wrong token" in bad.text
    no_csrf = browser.post(base + "/login", data={"token": TOKEN})
    assert no_csrf.status_code == 403  # refused before the form is read
    page = browser.post(base + "/login", data={"token": TOKEN, "csrf_token": _csrf(bad.text),
                                               "next": "/settings"})
    assert page.status_code == 200 and 'type="range"' in page.text
    # The session cookie now authenticates API reads ...
    assert browser.get(base + "/api/workers").status_code == 200
    # ... but a state change through the cookie alone needs the CSRF header.
    assert_error(browser.patch(base + "/api/settings", json={"workers": 1}), 401)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
    ok = browser.patch(base + "/api/settings", json={"workers": 1}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_ui_cancel_form_needs_the_csrf_token(web_daemon):
    daemon = web_daemon(workers=1)
    api, browser = Api(daemon.base_url), requests.Session()
    task = api.enqueue("echo", delay=3600)
    page = browser.get(f"{daemon.base_url}/tasks/{task['id']}")
    forged = browser.post(f"{daemon.base_url}/tasks/{task['id']}/cancel", data={})
    assert forged.status_code == 400
    assert api.get(f"/api/tasks/{task['id']}").json()["status"] == "queued"
    done = browser.post(f"{daemon.base_url}/tasks/{task['id']}/cancel",
                        data={"csrf_token": _csrf(page.text)})
    assert done.status_code == 200
    assert api.get(f"/api/tasks/{task['id']}").json()["status"] == "cancelled"


def test_startup_with_public_bind_and_no_token_is_refused(tmp_path):
    config = write_settings(tmp_path, server={"bind": "0.0.0.0:8123"})
    result = subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode != 0
    assert "auth.token is required" in result.stdout + result.stderr
