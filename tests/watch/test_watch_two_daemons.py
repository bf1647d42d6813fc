"""Two daemons on one PostgreSQL database: only the one whose settings name a watch
entry watches its folder; the tasks it starts run on either daemon's workers."""
from __future__ import annotations

from daemons import write_settings
from helpers import poll_until
from watch_support import MODULES, entry, tasks_named

from hopper.app import queue
from hopper.app import settings as settings_mod


def test_only_the_daemon_with_the_entry_watches_and_both_run_its_tasks(tmp_path, pg_url,
                                                                       make_daemon):
    folder = tmp_path / "drop"
    folder.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    watching = make_daemon(config=write_settings(
        tmp_path / "a", database=pg_url, tasks=MODULES,
        watch=[entry(folder, task="watchtest.slow")]))
    other = make_daemon(config=write_settings(tmp_path / "b", database=pg_url, tasks=MODULES))
    client = queue.configure(settings_mod.load(watching.config))
    poll_until(lambda: f"watching {folder}" in watching.read_log(), timeout=60)
    for n in range(24):
        (folder / f"f{n}").write_text(str(n))
    done = poll_until(lambda: len([t for t in tasks_named(client, "watchtest.slow")
                                   if t["status"] == "succeeded"]) == 24
                      and tasks_named(client, "watchtest.slow"), timeout=60)
    assert sorted(t["args"]["path"] for t in done) == sorted(str(folder / f"f{n}")
                                                           for n in range(24))
    assert f"watching {folder}" not in other.read_log()
    ran_on = {t["result"]["pid"] for t in done}
    assert ran_on & set(watching.worker_pids()) and ran_on & set(other.worker_pids())
