"""The supervisor: live resize, shutdown, crash recovery, concurrent enqueuers, the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
import yaml
from daemons import REPO
from helpers import poll_until

from hopper.app import queue


def _write_workers(config, raw: dict, n: int) -> None:
    tmp = config.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({**raw, "workers": n}, sort_keys=False))
    os.replace(tmp, config)  # as editors and PATCH /api/settings do


def test_pool_follows_settings_edits_while_tasks_run(make_daemon, client):
    daemon = make_daemon(workers=2)
    good = yaml.safe_load(daemon.config.read_text())
    ids = queue.enqueue_many([{"name": "sleep", "args": {"seconds": 0.05}} for _ in range(300)])
    for n in (4, 1):
        _write_workers(daemon.config, good, n)
        poll_until(lambda n=n: len(daemon.worker_pids()) == n, timeout=2,
                   message=lambda n=n: f"pool did not reach {n}: {daemon.worker_pids()}")
    poll_until(lambda: client.backend.counts()["default"].get("succeeded", 0) > 0, timeout=10)
    queue.wait(ids[-1], timeout=60)
    poll_until(lambda: client.backend.counts()["default"] == {"succeeded": 300}, timeout=60,
               message=lambda: str(client.backend.counts()))


def test_broken_settings_edit_keeps_the_last_good_settings_and_is_logged(make_daemon, client):
    daemon = make_daemon(workers=2)
    good = yaml.safe_load(daemon.config.read_text())
    daemon.config.write_text("workers: [this is not yaml\n")
    error = poll_until(lambda: client.backend.get_state("settings_error"), timeout=5)
    assert "is not valid YAML" in error["error"]
    assert "settings change rejected" in daemon.read_log()
    assert len(daemon.worker_pids()) == 2
    assert queue.wait(queue.enqueue("echo", {}), timeout=20)["status"] == "succeeded"
    _write_workers(daemon.config, good, 3)
    poll_until(lambda: len(daemon.worker_pids()) == 3, timeout=2)
    poll_until(lambda: client.backend.get_state("settings_error") is None, timeout=2)


def test_sigterm_exits_zero_loses_nothing_and_leaves_no_process(make_daemon, client):
    daemon = make_daemon(workers=2, shutdown_grace="2s")
    ids = queue.enqueue_many([{"name": "sleep", "args": {"seconds": 0.3}} for _ in range(40)])
    poll_until(lambda: client.backend.counts()["default"].get("succeeded", 0) >= 4, timeout=30)
    tree = daemon.tree()
    assert daemon.stop(signal.SIGTERM) == 0
    counts = client.backend.counts()["default"]
    assert set(counts) <= {"succeeded", "queued"}
    assert sum(counts.values()) == len(ids)
    poll_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                               for p in tree), timeout=10)


def test_sigterm_requeues_a_task_that_outlives_the_grace_period(make_daemon, client):
    daemon = make_daemon(workers=1, shutdown_grace="1s")
    task_id = queue.enqueue("sleep", {"seconds": 30})
    poll_until(lambda: queue.get_task(task_id)["status"] == "running", timeout=20)
    assert daemon.stop(signal.SIGTERM) == 0
    task = queue.get_task(task_id)
    assert task["status"] == "queued"
    assert task["attempts"] == 0  # an interrupted attempt is not a failed one


def _alive(processes) -> list[str]:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:80]}")
        except psutil.Error:
            continue
    return alive


def test_killing_the_supervisor_leaves_no_orphans_and_a_restart_rescues_its_task(
        make_daemon, client):
    daemon = make_daemon(workers=1)
    task_id = queue.enqueue("sleep", {"seconds": 30}, max_attempts=3)
    poll_until(lambda: queue.get_task(task_id)["status"] == "running", timeout=20)
    tree = daemon.tree()
    daemon.process.kill()
    daemon.process.wait(10)
    poll_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                               for p in tree), timeout=10,
               message=lambda: f"left behind: {_alive(tree)}")
    assert queue.get_task(task_id)["status"] == "running"  # nobody has noticed yet

    lost_worker = queue.get_task(task_id)["worker"]

    make_daemon(config=daemon.config)
    # The killed daemon's heartbeat goes stale after DAEMON_STALE_S (10 s); then it is rescued.
    rescued = poll_until(lambda: (t := queue.get_task(task_id))["attempts"] == 2 and t, timeout=30)
    assert rescued["status"] == "running"
    assert rescued["worker"] != lost_worker


def test_status_json_lists_queues_live_workers_and_failures(make_daemon, client):
    make_daemon(workers=2)
    queue.wait(queue.enqueue("always_fails", {}, max_attempts=1), timeout=20)
    busy = queue.enqueue("sleep", {"seconds": 5})
    poll_until(lambda: queue.get_task(busy)["status"] == "running", timeout=20)

    def status():
        out = subprocess.run([sys.executable, str(REPO / "run.py"), "status", "--json"],
                             cwd=REPO, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PYTHONPATH": str(REPO / "tests")})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    report = poll_until(lambda: (r := status()) and any(w["task_id"] == busy
                                                         for w in r["workers"]) and r, timeout=5)
    assert len(report["workers"]) == 2
    assert {"id", "pid", "state", "task_id"} <= set(report["workers"][0])
    assert report["queues"]["default"]["failed"] == 1
    assert report["failures"][0]["name"] == "always_fails"


def test_broken_settings_file_refuses_to_start_with_a_clear_message(tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("workers: -3\n")
    out = subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                         cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "workers: must be between 1 and" in out.stderr


def test_workers_publish_pid_state_task_cpu_and_memory(make_daemon, client):
    daemon = make_daemon(workers=2)
    busy = queue.enqueue("sleep", {"seconds": 3})
    poll_until(lambda: queue.get_task(busy)["status"] == "running", timeout=20)
    rows = poll_until(lambda: (w := daemon.workers()) and any(r["task_id"] == busy for r in w)
                      and w, timeout=5)
    assert sorted(r["pid"] for r in rows) == daemon.worker_pids()
    assert {r["state"] for r in rows} == {"busy", "idle"}
    for row in rows:
        assert row["rss_bytes"] > 1_000_000
        assert row["cpu_percent"] is not None and row["started_at"] <= row["heartbeat_at"]
