"""examples/media_importer run for real beside Hopper: its own web server on its own
port, Hopper's daemon with ``tasks.flask_app`` pointing at it, on each engine."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
import requests
from daemons import REPO, free_port, write_settings
from helpers import poll_until

EXAMPLE = REPO / "examples" / "media_importer"


@pytest.fixture
def example(tmp_path):
    """A copy of the example (its instance/ and data/ folders land in the copy)."""
    folder = tmp_path / "media_importer"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(
        "instance", "data", "__pycache__"))
    return folder


@pytest.fixture
def media(tmp_path) -> dict[str, bytes]:
    """A folder of three media files and one file the importer skips."""
    folder = tmp_path / "camera"
    folder.mkdir()
    files = {f"IMG_{i:04}.jpg": os.urandom(2000 + i) for i in range(3)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "notes.txt").write_text("not media")
    return files


@pytest.fixture
def example_server(example):
    """Factory: start the example's Flask app (``flask run``) for a Hopper daemon."""
    started = []

    def start(hopper_config, hopper_url: str) -> str:
        port = free_port()
        log = open(example / "flask.log", "ab")
        env = {**os.environ, "HOPPER_CONFIG": str(hopper_config), "HOPPER_URL": hopper_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port),
             "--no-reload"], cwd=example, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append((process, log))
        url = f"http://127.0.0.1:{port}"
        poll_until(lambda: _answers(url), timeout=60,
                   message=lambda: (example / "flask.log").read_text())
        return url

    yield start
    for process, log in started:
        process.terminate()
        process.wait(10)
        log.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/?user=probe", timeout=5).status_code in (200, 503)
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or a loaded machine
        return False


def _job_row(example, job_id: int) -> tuple:
    conn = sqlite3.connect(example / "instance" / "media.db")
    try:
        return conn.execute("SELECT status, files, total_bytes, user FROM import_jobs"
                            " WHERE id = ?", (job_id,)).fetchone()
    finally:
        conn.close()


def test_an_import_started_in_the_example_completes_through_hopper(
        example, media, example_server, make_daemon, database, tmp_path):
    config = write_settings(example, database=database,
                            tasks={"modules": ["app.tasks"], "flask_app": "app:create_app"})
    daemon = make_daemon(config=config, start=False)
    hopper = f"http://{daemon.settings['server']['bind']}"
    site = example_server(config, hopper)   # builds the app first: its tables exist
    daemon.start()

    response = requests.post(f"{site}/imports?user=alice",
                             data={"source": str(tmp_path / "camera")}, timeout=30,
                             allow_redirects=False)
    assert response.status_code == 303, response.text

    tasks = poll_until(lambda: _tagged(hopper, "user:alice"), timeout=60,
                       message=daemon.read_log)
    assert len(tasks) == 1
    task = _finished(hopper, tasks[0]["id"])
    assert task["status"] == "succeeded", task["error"]
    assert task["tags"] == ["user:alice", "import"]
    assert task["meta"] == {"source": str(tmp_path / "camera"), "imported": 3, "total": 3}
    job_id = task["args"]["job_id"]

    # The task updated the example's own row through its db.session.
    assert _job_row(example, job_id) == ("completed", 3, sum(map(len, media.values())), "alice")
    page = requests.get(f"{site}/", cookies={"user": "alice"}, timeout=30).text
    assert f'data-job-id="{job_id}"' in page
    assert '<td class="status">completed</td>' in page
    assert f"{hopper}/api/tasks/{task['id']}/artifact" in page
    assert "No imports yet" in requests.get(f"{site}/?user=bob", timeout=30).text

    download = requests.get(f"{hopper}/api/tasks/{task['id']}/artifact", timeout=30)
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {r["name"]: r["sha256"] for r in rows} == {
        name: hashlib.sha256(data).hexdigest() for name, data in media.items()}
    copied = example / "instance" / "media" / "alice"
    assert sorted(p.name for p in copied.iterdir()) == sorted(media)


def test_an_import_of_a_missing_folder_marks_the_job_failed(
        example, example_server, make_daemon, tmp_path):
    config = write_settings(example, tasks={"modules": ["app.tasks"],
                                            "flask_app": "app:create_app"})
    daemon = make_daemon(config=config, start=False)
    hopper = f"http://{daemon.settings['server']['bind']}"
    site = example_server(config, hopper)
    daemon.start()
    requests.post(f"{site}/imports?user=carol", data={"source": str(tmp_path / "nowhere")},
                  timeout=30)
    task_id = poll_until(lambda: _tagged(hopper, "user:carol"), timeout=60)[0]["id"]
    task = _finished(hopper, task_id, timeout=60)
    assert task["status"] == "failed" and "FileNotFoundError" in task["error"]
    status, files, _, _ = _job_row(example, task["args"]["job_id"])
    assert (status, files) == ("failed", None)


def test_the_example_answers_503_when_hoppers_database_is_unreachable(
        example, example_server, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    config = write_settings(example, database=f"sqlite:///{blocker}/hopper.db",
                            tasks={"modules": ["app.tasks"]})
    site = example_server(config, "http://127.0.0.1:1")
    response = requests.post(f"{site}/imports?user=dave", data={"source": "/tmp"}, timeout=30)
    assert response.status_code == 503
    assert "could not be queued" in response.text


def test_the_examples_cli_command_enqueues_and_waits_for_the_import(
        example, media, make_daemon, tmp_path):
    config = write_settings(example, tasks={"modules": ["app.tasks"],
                                            "flask_app": "app:create_app"})
    daemon = make_daemon(config=config)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "import", str(tmp_path / "camera"),
         "--user", "erin", "--wait", "60"], cwd=example, capture_output=True, text=True,
        env={**os.environ, "HOPPER_CONFIG": str(config)}, timeout=120)
    assert done.returncode == 0, done.stderr + daemon.read_log()
    queued, finished = done.stdout.splitlines()
    job_id = int(queued.split()[1])
    assert finished == f"job {job_id} completed: 3 files"
    assert _job_row(example, job_id) == ("completed", 3, sum(map(len, media.values())), "erin")


def _tagged(hopper: str, tag: str) -> list[dict]:
    try:
        response = requests.get(f"{hopper}/api/tasks", params={"tag": tag}, timeout=10)
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or a loaded machine
        return []
    return response.json()["tasks"] if response.status_code == 200 else []


def _finished(hopper: str, task_id: int, timeout: float = 60) -> dict:
    def done():
        task = requests.get(f"{hopper}/api/tasks/{task_id}", timeout=10).json()
        return task if task["status"] in ("succeeded", "failed", "cancelled") else None

    return poll_until(done, timeout=timeout, message=f"task {task_id} did not finish")
