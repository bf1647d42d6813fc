"""HTTP helpers and fixtures for the web tests: real daemons, real sockets."""
from __future__ import annotations

import subprocess

import requests
from daemons import Daemon, write_settings
from helpers import poll_until


class Api:
    """A keep-alive HTTP session against one daemon's base URL."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def enqueue(self, name: str, args: dict | None = None, **options) -> dict:
        response = self.post("/api/tasks", json={"name": name, "args": args or {}, **options})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def wait_status(self, task_id: int, statuses: tuple[str, ...] = ("succeeded",),
                    timeout: float = 20) -> dict:
        """Poll GET /api/tasks/<id> until its status is one of ``statuses``."""
        last = {}

        def reached():
            last.update(self.get(f"/api/tasks/{task_id}").json())
            return last if last.get("status") in statuses else None

        return poll_until(reached, timeout=timeout,
                          message=lambda: f"task {task_id} stayed {last.get('status')}: {last}")


def assert_error(response: requests.Response, status: int) -> dict:
    """The response has ``status`` and the JSON error shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert "detail" in body
    assert "Traceback" not in response.text
    return body


def start_web_daemon(folder, extra_args: tuple[str, ...] = (), **overrides) -> Daemon:
    """A daemon on a free port whose HTTP server answers /healthz."""
    daemon = Daemon(write_settings(folder, **overrides), extra_args=extra_args)
    try:
        daemon.start()
        poll_until(lambda: _healthy(daemon.base_url), timeout=30,
                   message=lambda: f"web server did not come up:\n{daemon.read_log()}")
    except BaseException:  # the caller never gets it to stop: stop it here, then fail
        stop_daemon(daemon)
        raise
    return daemon


def healthy(base_url: str) -> bool:
    """Whether /healthz answers 200 now."""
    return _healthy(base_url)


def _healthy(base_url: str) -> bool:
    try:
        return requests.get(base_url + "/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or a loaded machine
        return False


def stop_daemon(daemon: Daemon) -> None:
    try:
        daemon.stop(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    daemon.kill_everything()
