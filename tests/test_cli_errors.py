"""The CLI's global options, and its one-line errors with exit codes (no tracebacks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from daemons import REPO, write_settings

EXIT_USAGE, EXIT_DATABASE, EXIT_TIMEOUT = 2, 3, 4


def run(*args, timeout=60) -> subprocess.CompletedProcess:
    """``python run.py ARGS`` with no --config put in front by the test."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    env.pop("HOPPER_CONFIG", None)
    return subprocess.run([sys.executable, str(REPO / "run.py"), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_global_options_are_accepted_after_the_subcommand(settings_path, client):
    after = run("status", "--json", "--config", settings_path, "--log-level", "warning")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == {"queues": {}, "workers": [], "failures": []}
    before = run("--config", settings_path, "--log-format", "json", "status", "--json")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)


def test_enqueue_takes_config_after_its_own_options(settings_path, client):
    out = run("enqueue", "echo", "--args", '{"x": 1}', "--delay", "60", "--config", settings_path)
    assert out.returncode == 0, out.stderr
    assert client.backend.get(int(out.stdout))["args"] == {"x": 1}


def test_status_on_a_missing_database_creates_nothing_and_names_the_path(tmp_path):
    config = write_settings(tmp_path)
    for command in (("status",), ("status", "--json"), ("backup", tmp_path / "copy.db")):
        line = assert_one_line_error(run(*command, "--config", config), EXIT_DATABASE)
        assert str(tmp_path / "data" / "hopper.db") in line
        assert line.startswith("error: no database at ")
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "copy.db").exists()


def test_enqueue_wait_timeout_is_one_line_with_exit_code_4(settings_path, client):
    result = run("enqueue", "echo", "--wait", "0.5", "--config", settings_path)  # no daemon
    line = assert_one_line_error(result, EXIT_TIMEOUT)
    task_id = client.backend.list(limit=1)[0]["id"]
    assert line == f"error: task {task_id} is still queued after 0.5s"


def test_an_unreachable_database_is_one_line_with_exit_code_3(tmp_path):
    config = write_settings(tmp_path, database="postgresql://nobody@127.0.0.1:1/none")
    for command in (("status",), ("enqueue", "echo"), ("migrate",)):
        line = assert_one_line_error(run(*command, "--config", config), EXIT_DATABASE)
        assert line.startswith("error: database postgresql://nobody@127.0.0.1:1/none unavailable")


@pytest.mark.parametrize("args", [("enqueue",), ("status", "--jsn"), ("queue-up",),
                                  ("--log-format", "xml", "status"),
                                  ("enqueue", "echo", "--delay", "soon")])
def test_bad_arguments_are_one_line_with_exit_code_2(settings_path, args):
    line = assert_one_line_error(run(*args, "--config", settings_path), EXIT_USAGE)
    assert line.startswith("run.py") and "error:" in line


@pytest.mark.parametrize("text, message", [
    ("worker: 4\n", "unknown setting 'worker' (did you mean 'workers'?)"),
    ("retention: {succeded: 7d}\n",
     "unknown setting 'retention.succeded' (did you mean 'retention.succeeded'?)"),
    ("server: {alowed_hosts: [a.lan]}\n",
     "unknown setting 'server.alowed_hosts' (did you mean 'server.allowed_hosts'?)"),
])
def test_unknown_settings_keys_refuse_to_start_with_a_suggestion(tmp_path, text, message):
    config = tmp_path / "settings.yaml"
    config.write_text("database: sqlite:///data/hopper.db\n" + text)
    result = run("serve", "--config", config, timeout=60)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "hopper.db").exists()
    assert message in assert_one_line_error(run("status", "--config", config), EXIT_USAGE)


def test_a_task_module_that_fails_to_import_is_named_in_one_line(tmp_path):
    config = write_settings(tmp_path, tasks={"modules": ["sample_tasks", "no_such_tasks_mod"]})
    line = assert_one_line_error(run("enqueue", "echo", "--config", config), EXIT_USAGE)
    assert line.startswith("error: tasks.modules: cannot import 'no_such_tasks_mod'")
    assert line.endswith("No module named 'no_such_tasks_mod'")
    served = run("serve", "--config", config)
    assert served.returncode == EXIT_USAGE
    assert "cannot start: tasks.modules: cannot import 'no_such_tasks_mod'" in served.stderr
    assert "Traceback" not in served.stderr


def test_worker_queues_naming_a_queue_given_concurrency_zero_is_refused_at_start(tmp_path):
    config = write_settings(tmp_path, queues={"q2": {"concurrency": 0}})
    out = subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(config),
                          "worker", "--queues", "q1,q2"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--queues names q2" in out.stderr and "concurrency: 0" in out.stderr
    assert not (tmp_path / "data" / "hopper.db").exists()  # refused before touching anything
