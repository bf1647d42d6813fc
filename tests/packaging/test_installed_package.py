"""The wheel, installed (not editable) in a fresh virtual environment, run from folders
that have nothing to do with the source checkout."""
from __future__ import annotations

import json
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from daemons import free_port
from helpers import poll_until
from installed import REPO, clean_env, http_get, http_patch, http_post, run


def package_data(root: Path) -> set[str]:
    """Templates, static files and migrations under a package folder, as relative paths."""
    found = set()
    for folder in ("app/web/templates", "app/web/static", "migrations"):
        found |= {p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}
    return found


def installed_package(venv: Path) -> Path:
    out = run([venv / "bin" / "python", "-c", "import hopper; print(hopper.__file__)"],
              cwd=venv, env=clean_env(venv)).stdout.strip()
    return Path(out).parent


def test_hopper_is_imported_from_the_virtual_environment(venv, tmp_path):
    out = run([venv / "bin" / "python", "-c", "import hopper; print(hopper.__file__)"],
              cwd=tmp_path, env=clean_env(venv)).stdout.strip()
    assert Path(out).is_relative_to(venv / "lib")
    assert not Path(out).is_relative_to(REPO)


def test_the_wheel_carries_every_template_static_file_and_migration(venv):
    installed = installed_package(venv)
    source = package_data(REPO / "hopper")
    assert source  # the checkout has templates, static files and migrations to compare
    assert package_data(installed) == source


def test_the_wheel_carries_every_module_of_the_tree(venv):
    installed = installed_package(venv)
    source = {p.relative_to(REPO / "hopper").as_posix() for p in (REPO / "hopper").rglob("*.py")}
    wheel = {p.relative_to(installed).as_posix() for p in installed.rglob("*.py")}
    assert "app/backends/sql.py" in source
    assert wheel == source


def test_migrate_from_an_empty_folder_creates_the_database_under_data(venv, tmp_path):
    result = run([venv / "bin" / "hopper", "migrate"], cwd=tmp_path, env=clean_env(venv))
    assert result.stdout.startswith("applied: 0001_tasks.sql")
    assert (tmp_path / "data" / "hopper.db").is_file()


def test_a_named_settings_file_that_is_missing_is_refused(venv, tmp_path):
    result = subprocess.run(
        [str(venv / "bin" / "hopper"), "--config", "nowhere.yaml", "status"],
        cwd=tmp_path, env=clean_env(venv), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "nowhere.yaml" in result.stderr
    assert not (tmp_path / "data").exists()


def test_serve_from_an_empty_folder_answers_healthz(installed_daemon):
    status, body = http_get(f"http://127.0.0.1:{installed_daemon.port}/healthz")
    assert (status, body["status"]) == (200, "ok")
    assert (installed_daemon.folder / "data" / "hopper.db").is_file()


def test_enqueue_and_wait_from_the_same_folder_returns_the_result(venv, installed_daemon):
    result = run([venv / "bin" / "hopper", "enqueue", "echo", "--args", '{"n": 7}',
                  "--wait", "10"], cwd=installed_daemon.folder, env=installed_daemon.env)
    task = json.loads(result.stdout)
    assert (task["status"], task["result"]) == ("succeeded", {"n": 7})


def test_status_json_reports_queues_and_the_daemons_workers(venv, installed_daemon):
    run([venv / "bin" / "hopper", "enqueue", "echo", "--queue", "status-check", "--wait", "10"],
        cwd=installed_daemon.folder, env=installed_daemon.env)
    result = run([venv / "bin" / "hopper", "status", "--json"], cwd=installed_daemon.folder,
                 env=installed_daemon.env)
    report = json.loads(result.stdout)
    assert report["queues"]["status-check"] == {"succeeded": 1}
    assert len(report["workers"]) == 2
    assert report["failures"] == []


# A user's Flask project whose own package is called ``app``, as Flask's tutorial lays it out.
USER_APP_INIT = '''
from flask import Flask, jsonify

from hopper import enqueue, get_task

OWNER = "the user's project"


def create_app():
    web = Flask(__name__)

    @web.post("/shout/<word>")
    def shout(word):
        return jsonify(id=enqueue("shout", {"word": word})), 201

    @web.get("/tasks/<int:task_id>")
    def show(task_id):
        return jsonify(get_task(task_id))

    return web
'''

USER_APP_TASKS = '''
import os

import app
from hopper import task


@task(max_attempts=1)
def shout(word: str) -> dict:
    return {"shouted": word.upper() + "!", "owner": app.OWNER, "pid": os.getpid()}
'''


@pytest.fixture
def flask_project(tmp_path):
    """A Flask project with its own ``app`` package and Hopper settings beside it."""
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text(textwrap.dedent(USER_APP_INIT))
    (project / "app" / "tasks.py").write_text(textwrap.dedent(USER_APP_TASKS))
    settings = {"database": "sqlite:///data/hopper.db", "workers": 1,
                "server": {"bind": f"127.0.0.1:{free_port()}"},
                "tasks": {"modules": ["app.tasks"]}}
    (project / "settings.yaml").write_text(yaml.safe_dump(settings))
    return project


def test_a_flask_project_named_app_enqueues_from_its_view_and_the_daemon_runs_it(
        venv, flask_project, tmp_path, background):
    settings = yaml.safe_load((flask_project / "settings.yaml").read_text())
    elsewhere = tmp_path / "elsewhere"  # the daemon's current folder is not the project's
    elsewhere.mkdir()
    daemon = background([venv / "bin" / "hopper", "--config", flask_project / "settings.yaml",
                         "serve"], elsewhere, clean_env(venv), "daemon")
    daemon.wait_healthy(f"http://{settings['server']['bind']}/healthz")
    web_port = free_port()
    site = background([venv / "bin" / "gunicorn", "--bind", f"127.0.0.1:{web_port}",
                       "app:create_app()"], flask_project, clean_env(venv), "site")
    poll_until(lambda: http_get(f"http://127.0.0.1:{web_port}/tasks/0")[0] == 200, timeout=60,
               interval=0.2,
               message=lambda: f"the project's site did not start:\n{site.read_log()}")

    status, body = http_post(f"http://127.0.0.1:{web_port}/shout/hello")
    assert status == 201, body
    task = poll_until(lambda: _finished(http_get(f"http://127.0.0.1:{web_port}/tasks/{body['id']}")[1]),
                      timeout=30, interval=0.1, message=daemon.read_log)

    assert task["status"] == "succeeded", task
    assert task["result"]["shouted"] == "HELLO!"
    assert task["result"]["owner"] == "the user's project"
    workers = json.loads(run([venv / "bin" / "hopper", "status", "--json"], cwd=flask_project,
                             env=clean_env(venv)).stdout)["workers"]
    assert task["result"]["pid"] in {w["pid"] for w in workers}  # a daemon worker ran it


def _finished(task):
    finished = isinstance(task, dict) and task.get("status") in ("succeeded", "failed")
    return task if finished else None


def test_the_installed_daemon_stops_on_sigterm(venv, tmp_path, background):
    port = free_port()
    daemon = background([venv / "bin" / "hopper", "serve"], tmp_path,
                        clean_env(venv, HOPPER_BIND=f"127.0.0.1:{port}"), "daemon")
    daemon.wait_healthy(f"http://127.0.0.1:{port}/healthz")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(30) == 0


def test_without_a_settings_file_the_worker_slider_writes_one_in_the_current_folder(
        venv, tmp_path, background):
    port = free_port()
    env = clean_env(venv, HOPPER_BIND=f"127.0.0.1:{port}")
    daemon = background([venv / "bin" / "hopper", "serve"], tmp_path, env, "daemon")
    daemon.wait_healthy(f"http://127.0.0.1:{port}/healthz")
    assert not (tmp_path / "settings.yaml").exists()

    status, body = http_patch(f"http://127.0.0.1:{port}/api/settings", {"workers": 3})
    assert status == 200, body
    assert yaml.safe_load((tmp_path / "settings.yaml").read_text()) == {"workers": 3}

    def workers():
        report = json.loads(run([venv / "bin" / "hopper", "status", "--json"], cwd=tmp_path,
                                env=env).stdout)
        return len(report["workers"]) == 3

    poll_until(workers, timeout=30, interval=0.5, message=daemon.read_log)
