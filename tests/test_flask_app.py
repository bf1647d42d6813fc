"""``tasks.flask_app``: tasks run inside the user's Flask app, one app per worker
process and one app context per task; an app that cannot be built is reported."""
from __future__ import annotations

import time

import pytest
import requests
from helpers import poll_until

from hopper.app import queue, settings

MODULES = {"modules": ["sample_tasks", "flask_tasks"]}


@pytest.fixture
def flask_env(tmp_path, monkeypatch):
    """The environment flask_tasks reads: its database and the file of app builds."""
    builds = tmp_path / "builds.log"
    monkeypatch.setenv("FLASK_TASKS_DB", f"sqlite:///{tmp_path / 'notes.db'}")
    monkeypatch.setenv("FLASK_TASKS_BUILDS", str(builds))
    return builds


@pytest.fixture
def flask_daemon(make_daemon, flask_env):
    """Factory: a started daemon whose workers build ``flask_app``."""

    def start(flask_app: str, workers: int = 1, **overrides):
        daemon = make_daemon(tasks={**MODULES, "flask_app": flask_app}, workers=workers,
                             **overrides)
        queue.configure(settings.load(daemon.config))
        return daemon

    return start


def _app_error(daemon) -> dict | None:
    """``flask_app_error`` from GET /api/settings (None while the server starts)."""
    try:
        return requests.get(daemon.base_url + "/api/settings", timeout=5).json()["flask_app_error"]
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or a loaded machine
        return None


def _builds(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _run(name: str, args: dict | None = None) -> dict:
    done = queue.wait(queue.enqueue(name, args or {}), timeout=30)
    assert done["status"] == "succeeded", done["error"]
    return done["result"]


def test_tasks_run_inside_the_app_the_factory_builds(flask_daemon):
    flask_daemon("flask_tasks:create_app")
    assert _run("flask.whoami")["greeting"] == "from the factory"


def test_a_module_level_app_object_is_used_as_it_is(flask_daemon):
    flask_daemon("flask_tasks:app")
    assert _run("flask.whoami")["app"] == "flask_tasks_module_level"


def test_each_worker_builds_the_app_once(flask_daemon, flask_env):
    flask_daemon("flask_tasks:create_app", workers=2)
    poll_until(lambda: len(_builds(flask_env)) == 2, timeout=30)
    ran_in = {_run("flask.whoami")["pid"] for _ in range(6)}
    builds = _builds(flask_env)
    built_in = {int(line.split()[1]) for line in builds}
    assert len(builds) == 2 and len(built_in) == 2  # one build in each of the two workers
    assert ran_in <= built_in


def test_an_uncommitted_object_of_one_task_is_not_in_the_next_tasks_session(flask_daemon):
    flask_daemon("flask_tasks:create_app")
    first = _run("flask.add_uncommitted", {"text": "left behind"})
    second = _run("flask.session_state")
    assert first["pending"] == ["left behind"]
    assert second["pid"] == first["pid"]  # the same worker process, the same app
    assert second["pending"] == [] and second["stored"] == 0


def test_without_the_setting_tasks_run_without_flask(make_daemon):
    daemon = make_daemon()
    queue.configure(settings.load(daemon.config))
    assert _run("modules_loaded", {"names": ["flask", "flask_sqlalchemy"]}) == {
        "flask": False, "flask_sqlalchemy": False}


class TestAnAppThatCannotBeBuilt:
    @pytest.fixture
    def broken(self, make_daemon, flask_env):
        daemon = make_daemon(tasks={**MODULES, "flask_app": "flask_tasks:broken_factory"},
                             workers=2, start=False)
        queue.configure(settings.load(daemon.config))
        return daemon.start(wait_workers=0)

    def _published(self, daemon) -> dict:
        return poll_until(lambda: _app_error(daemon), timeout=30, message=daemon.read_log)

    def test_the_error_is_shown_at_api_settings(self, broken):
        error = self._published(broken)
        assert error["app"] == "flask_tasks:broken_factory"
        assert error["error"] == "RuntimeError: SQLALCHEMY_DATABASE_URI is not set"
        assert "broken_factory" in error["traceback"]

    def test_the_error_is_shown_on_the_settings_page(self, broken):
        self._published(broken)
        page = requests.get(broken.base_url + "/settings", timeout=5).text
        assert "RuntimeError: SQLALCHEMY_DATABASE_URI is not set" in page
        assert "flask_tasks:broken_factory" in page

    def test_the_pool_backs_off_and_logs_the_error_once(self, broken, flask_env):
        self._published(broken)
        # A rate needs a window: watch the worker starts for 8 seconds. Each failure
        # doubles the delay before the next start (1, 2, 4, 8 s...), so two workers
        # start at most 6 times in all; restarted at once they would start dozens of times.
        time.sleep(8)
        starts = _builds(flask_env)
        assert 2 <= len(starts) <= 6, starts
        log = broken.read_log()
        assert log.count("could not be built") == 1, log
        assert log.count("SQLALCHEMY_DATABASE_URI is not set") >= 1

    def test_queued_tasks_wait_and_nothing_is_lost(self, broken):
        self._published(broken)
        task_id = queue.enqueue("echo", {"kept": True})
        assert queue.get_task(task_id)["status"] == "queued"


def test_a_factory_that_returns_no_app_is_reported(make_daemon, flask_env):
    daemon = make_daemon(tasks={**MODULES, "flask_app": "flask_tasks:not_an_app"}, start=False)
    queue.configure(settings.load(daemon.config))
    daemon.start(wait_workers=0)
    error = poll_until(lambda: _app_error(daemon), timeout=30, message=daemon.read_log)
    assert error["error"] == "TypeError: flask_tasks:not_an_app gave dict, not a Flask app"


def test_fixing_the_setting_lets_the_next_workers_start(make_daemon, flask_env):
    daemon = make_daemon(tasks={**MODULES, "flask_app": "flask_tasks:broken_factory"},
                         start=False)
    queue.configure(settings.load(daemon.config))
    daemon.start(wait_workers=0)
    poll_until(lambda: "broken" in "".join(_builds(flask_env)), timeout=30,
               message=daemon.read_log)
    text = daemon.config.read_text().replace("flask_tasks:broken_factory", "flask_tasks:create_app")
    daemon.config.write_text(text)
    assert _run("flask.whoami")["greeting"] == "from the factory"
    assert _app_error(daemon) is None


@pytest.mark.parametrize("value", ["create_app", "pkg.module:", ":app", "pkg:create_app()", 42])
def test_a_malformed_flask_app_setting_is_refused(tmp_path, value):
    from daemons import write_settings

    path = write_settings(tmp_path, tasks={"flask_app": value})
    with pytest.raises(settings.SettingsError, match="tasks.flask_app"):
        settings.load(path)
