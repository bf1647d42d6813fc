"""The folder watcher through cut database connections: no traceback per tick (at most
one lost and one back line, outage.py's), and the file dropped meanwhile still starts."""
from __future__ import annotations

import psycopg
import requests
from helpers import poll_until
from watch_support import entry, tasks_named

from hopper.app import queue
from hopper.app import settings as settings_mod


def _watching(daemon) -> bool:
    try:
        rows = requests.get(daemon.base_url + "/api/settings", timeout=5).json()["watch"]
    except (requests.ConnectionError, requests.Timeout):
        return False  # the web server is still starting
    return any(e.get("state") == "watching" for e in rows or [])


def test_cut_database_connections_leave_no_watcher_traceback_and_the_file_still_starts(
        tmp_path, watch_config, make_daemon, pg_url):
    folder = tmp_path / "drop"
    folder.mkdir()
    config = watch_config([entry(folder)], database=pg_url)
    daemon = make_daemon(config=config)
    poll_until(lambda: _watching(daemon), timeout=60, message=daemon.read_log)
    with psycopg.connect(pg_url, autocommit=True) as admin:  # cut every daemon connection
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    (folder / "a.bin").write_bytes(b"a")
    client = queue.configure(settings_mod.load(config))
    poll_until(lambda: tasks_named(client, "watchtest.added"), timeout=60,
               message=daemon.read_log)
    log = daemon.read_log()
    if "folder watcher: lost the database" in log:  # it noticed: it must also see it back
        log = poll_until(lambda: (lambda t: t if "folder watcher: the database is back" in t
                                  else None)(daemon.read_log()), timeout=30,
                         message=daemon.read_log)
    assert log.count("folder watcher: lost the database") <= 1, log[-3000:]
    assert "watch host error" not in log and "could not start" not in log, log[-3000:]
