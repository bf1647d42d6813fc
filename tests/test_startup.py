"""What a daemon does before its first task: the fork server is started first and
reads the daemon's settings itself, and ``import hopper.<module>`` costs only that
module (the public names of ``hopper`` load on first use)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from daemons import REPO

PRELOADED = ("hopper.app.backends.sqlite", "hopper.app.backends.postgres",
             "hopper.app.library.tasks")


def modules_after(code: str, env: dict | None = None) -> dict:
    """Which of PRELOADED (and the queue) a fresh interpreter has imported after ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps({{m: m in sys.modules for m in "
             f"{PRELOADED + ('hopper.app.queue',)!r}}}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={**os.environ, **(env or {})}, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def preloaded(tmp_path, settings_text: str) -> dict:
    """What the fork server's preload imports for a daemon with these settings."""
    config = tmp_path / "settings.yaml"
    config.write_text(settings_text)
    return modules_after("import hopper.worker.preload", {"HOPPER_CONFIG": str(config)})


def test_the_fork_server_preload_imports_the_backend_and_plugins_the_settings_name(tmp_path):
    loaded = preloaded(tmp_path, "database: postgresql://127.0.0.1:5432/test\n")
    assert (loaded["hopper.app.backends.postgres"], loaded["hopper.app.backends.sqlite"],
            loaded["hopper.app.library.tasks"]) == (True, False, True)


def test_a_broken_settings_file_leaves_the_preload_to_the_workers(tmp_path):
    loaded = preloaded(tmp_path, "workers: [unclosed\n")
    assert (loaded["hopper.app.backends.sqlite"], loaded["hopper.app.library.tasks"]) == (
        False, False)


def test_importing_the_fork_server_context_does_not_import_the_queue():
    assert modules_after("import hopper.worker.context")["hopper.app.queue"] is False


def test_the_public_names_load_on_first_use_and_unknown_names_raise():
    out = subprocess.run(
        [sys.executable, "-c",
         "import hopper\nfrom hopper import task, enqueue, quiet, QueueUnavailable\n"
         "print(task.__module__, enqueue.__module__, quiet.__module__,"
         " QueueUnavailable.__name__, sorted(set(hopper.__all__) - set(dir(hopper))))\n"
         "try:\n    hopper.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == [
        "hopper.app.registry hopper.app.queue hopper.app.watch.quiet QueueUnavailable []",
        "module 'hopper' has no attribute 'no_such_name'"]


def test_the_early_look_at_the_command_line_leaves_other_commands_and_errors_to_the_parser():
    from multiprocessing import forkserver

    from hopper.app import cli

    # An ambiguous abbreviation made the early parser exit with its own error (a
    # plugin command's ``--log`` option); a command that is not a daemon starts nothing.
    for argv in (["--log", "x", "library"], ["status", "--json"], ["enqueue", "echo"]):
        assert cli._start_fork_server_early(argv) is None
    assert forkserver._forkserver._forkserver_pid is None
