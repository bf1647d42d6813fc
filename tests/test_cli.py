"""``python run.py`` subcommands other than serve."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from daemons import REPO

from hopper.app import queue


def run_cli(settings_path, *args, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    return subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(settings_path),
                           *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_migrate_applies_once_then_reports_up_to_date(settings_path):
    first = run_cli(settings_path, "migrate")
    assert first.returncode == 0 and "applied: 0001_tasks.sql" in first.stdout
    second = run_cli(settings_path, "migrate")
    assert second.returncode == 0 and "up to date" in second.stdout


def test_enqueue_prints_the_new_task_id(settings_path, client):
    out = run_cli(settings_path, "enqueue", "echo", "--args", '{"via": "cli"}', "--delay", "30")
    assert out.returncode == 0
    task = queue.get_task(int(out.stdout))
    assert task["args"] == {"via": "cli"} and task["run_after"] > task["created_at"] + 25


def test_enqueue_with_wait_prints_the_finished_task(make_daemon, settings_path):
    make_daemon(config=settings_path, workers=1)
    out = run_cli(settings_path, "enqueue", "echo", "--args", '{"a": 1}', "--wait", "20")
    assert out.returncode == 0
    assert json.loads(out.stdout)["result"] == {"a": 1}


def test_enqueue_rejects_malformed_json_and_unknown_names(settings_path, client):
    bad_json = run_cli(settings_path, "enqueue", "echo", "--args", "{nope")
    assert bad_json.returncode == 2 and "--args is not valid JSON" in bad_json.stderr
    unknown = run_cli(settings_path, "enqueue", "no_such_task")
    assert unknown.returncode == 2 and "unknown task name" in unknown.stderr
    assert client.backend.counts() == {}


def test_backup_writes_a_consistent_copy(settings_path, client, tmp_path):
    task_id = queue.enqueue("echo", {"keep": "me"})
    target = tmp_path / "backup.db"
    out = run_cli(settings_path, "backup", str(target))
    assert out.returncode == 0, out.stderr
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT args FROM tasks WHERE id = ?", (task_id,)).fetchone()[0] == \
        '{"keep": "me"}'
