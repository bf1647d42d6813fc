"""``watch:`` entries on a real daemon: settled files start the entry's task, moves
and deletes their own tasks, a durable record for rescans, live changes, bad entries."""
from __future__ import annotations

import os
import time

import requests
from helpers import poll_until
from watch_support import entry, set_entries, tasks_named

from hopper.app import queue
from hopper.app import settings as settings_mod


def _client(config):
    return queue.configure(settings_mod.load(config))


def _watch_status(daemon) -> list[dict] | None:
    """The entries ``GET /api/settings`` shows; None while the web server starts."""
    try:
        return requests.get(daemon.base_url + "/api/settings", timeout=5).json()["watch"]
    except requests.ConnectionError:
        return None


def test_a_settled_new_file_starts_the_task_with_path_size_and_mtime(tmp_path, watch_config,
                                                                    make_daemon):
    folder = tmp_path / "drop"
    folder.mkdir()
    config = watch_config([entry(folder, patterns=["*.bin"])])
    make_daemon(config=config)
    client = _client(config)
    (folder / "sub").mkdir()
    target = folder / "sub" / "a.bin"
    target.write_bytes(b"x" * 123)
    (folder / "notes.txt").write_text("not matching the patterns")
    (folder / ".DS_Store").write_bytes(b"junk")
    started = poll_until(lambda: tasks_named(client, "watchtest.added"), timeout=60)
    st = os.stat(target)
    assert [t["args"] for t in started] == [{"path": str(target), "size": 123,
                                             "mtime": st.st_mtime}]
    assert started[0]["unique_key"].endswith(f":{st.st_size}:{st.st_mtime_ns}")


def test_a_move_starts_on_moved_and_a_delete_on_deleted(tmp_path, watch_config, make_daemon,
                                                        database):
    folder = tmp_path / "drop"
    folder.mkdir()
    config = watch_config([entry(folder, on_moved="watchtest.moved",
                                 on_deleted="watchtest.deleted")], database=database)
    make_daemon(config=config)
    client = _client(config)
    (folder / "a.bin").write_bytes(b"a")
    poll_until(lambda: tasks_named(client, "watchtest.added"), timeout=60)
    (folder / "b").mkdir()
    os.rename(folder / "a.bin", folder / "b" / "a.bin")
    moved = poll_until(lambda: tasks_named(client, "watchtest.moved"), timeout=60)
    assert moved[0]["args"] == {"src_path": str(folder / "a.bin"),
                                "path": str(folder / "b" / "a.bin")}
    os.unlink(folder / "b" / "a.bin")
    deleted = poll_until(lambda: tasks_named(client, "watchtest.deleted"), timeout=60)
    assert deleted[0]["args"] == {"path": str(folder / "b" / "a.bin")}
    assert len(tasks_named(client, "watchtest.added")) == 1   # the move was not a new file


def test_a_restart_starts_only_new_or_changed_files_and_deletes_the_vanished(
        tmp_path, watch_config, make_daemon, database):
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("keep", "change", "remove"):
        (folder / name).write_text(name)
    config = watch_config([entry(folder, on_deleted="watchtest.deleted")], database=database)
    daemon = make_daemon(config=config)
    client = _client(config)
    poll_until(lambda: len(tasks_named(client, "watchtest.added")) == 3, timeout=60)
    daemon.stop()
    (folder / "change").write_text("changed while no daemon watched")
    os.utime(folder / "change", (time.time() + 5, time.time() + 5))
    (folder / "remove").unlink()
    (folder / "new").write_text("new")
    make_daemon(config=config)
    poll_until(lambda: len(tasks_named(client, "watchtest.added")) == 5, timeout=60)
    deleted = poll_until(lambda: tasks_named(client, "watchtest.deleted"), timeout=60)
    paths = sorted(os.path.basename(t["args"]["path"]) for t in tasks_named(
        client, "watchtest.added"))
    assert paths == ["change", "change", "keep", "new", "remove"]
    assert [t["args"]["path"] for t in deleted] == [str(folder / "remove")]


def test_an_entry_added_to_the_settings_file_watches_within_2s_and_stops_when_removed(
        tmp_path, watch_config, make_daemon):
    folder = tmp_path / "drop"
    folder.mkdir()
    config = watch_config([])
    daemon = make_daemon(config=config)
    client = _client(config)
    poll_until(lambda: _watch_status(daemon) == [], timeout=60)
    set_entries(config, [entry(folder)])
    changed = time.monotonic()
    poll_until(lambda: any(e["state"] == "watching" for e in _watch_status(daemon) or []),
               timeout=60)
    assert time.monotonic() - changed < 2.0
    (folder / "one").write_text("1")
    poll_until(lambda: tasks_named(client, "watchtest.added"), timeout=60)
    set_entries(config, [])
    poll_until(lambda: _watch_status(daemon) == [], timeout=60)
    (folder / "two").write_text("2")
    deadline = time.monotonic() + 2.0  # well past the 300 ms settle time
    while time.monotonic() < deadline:
        assert len(tasks_named(client, "watchtest.added")) == 1
        time.sleep(0.1)


def test_bad_entries_are_reported_and_do_not_stop_the_others(tmp_path, watch_config,
                                                             make_daemon):
    good = tmp_path / "good"
    good.mkdir()
    missing = tmp_path / "missing"
    config = watch_config([entry(missing), entry(good, task="no.such.task"), entry(good)])
    daemon = make_daemon(config=config)
    client = _client(config)

    def states():
        return {(e["path"], e["task"]): (e["state"], e["error"])
                for e in _watch_status(daemon) or []}

    found = poll_until(lambda: len(states()) == 3 and states(), timeout=60)
    assert found[(str(good), "watchtest.added")] == ("watching", None)
    state, error = found[(str(missing), "watchtest.added")]
    assert state == "error" and str(missing) in error
    state, error = found[(str(good), "no.such.task")]
    assert state == "error" and "no.such.task" in error
    (good / "file").write_text("x")
    poll_until(lambda: tasks_named(client, "watchtest.added"), timeout=60)
    missing.mkdir()   # retried: the folder now exists
    poll_until(lambda: states()[(str(missing), "watchtest.added")][0] == "watching", timeout=60)


def test_a_tasks_own_quiet_move_starts_nothing(tmp_path, watch_config, make_daemon):
    folder = tmp_path / "drop"
    folder.mkdir()
    config = watch_config([entry(folder, task="watchtest.organize",
                                 on_moved="watchtest.moved", on_deleted="watchtest.deleted")])
    make_daemon(config=config)
    client = _client(config)
    (folder / "game.bin").write_text("g")
    done = poll_until(lambda: [t for t in tasks_named(client, "watchtest.organize")
                               if t["status"] == "succeeded"], timeout=60)
    assert done[0]["result"] == {"path": str(folder / "sorted" / "game.bin")}
    deadline = time.monotonic() + 4.0  # past the settle time and a removal's delay
    while time.monotonic() < deadline:
        assert len(tasks_named(client, "watchtest.organize")) == 1
        assert not tasks_named(client, "watchtest.moved")
        assert not tasks_named(client, "watchtest.deleted")
        time.sleep(0.1)
