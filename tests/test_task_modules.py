"""``tasks.modules`` are imported from the settings file's folder first, so a user's own
package called ``app`` is found even where another ``app`` (Hopper's source folder in
this checkout) is on the path."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml
from daemons import REPO

USER_TASKS = '''
from hopper import task


@task
def where_am_i() -> dict:
    return {"module": __name__, "file": __file__}
'''


def run_cli(config, *args):
    return subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(config), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def write_project(folder, modules):
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({"database": "sqlite:///data/hopper.db", "eager": True,
                                      "tasks": {"modules": modules}}))
    return config


def test_a_users_app_package_beside_the_settings_file_wins_over_another_app(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "tasks.py").write_text(USER_TASKS)
    assert (REPO / "app" / "__init__.py").exists()   # the other ``app``: run.py's own folder
    config = write_project(tmp_path, ["app.tasks"])
    out = run_cli(config, "enqueue", "where_am_i", "--wait", "10")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)["result"]
    assert result == {"module": "app.tasks", "file": str(tmp_path / "app" / "tasks.py")}


def test_a_task_module_that_cannot_be_imported_is_refused_naming_it(tmp_path):
    config = write_project(tmp_path, ["nowhere.tasks"])
    out = run_cli(config, "enqueue", "echo")
    assert out.returncode == 2
    assert "'nowhere.tasks'" in out.stderr and f"looked in {tmp_path} first" in out.stderr
    assert "Traceback" not in out.stderr
