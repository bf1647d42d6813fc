"""Running the daemon: SIGHUP reloads, unknown keys on a live change, JSON task-event
logs, the web server's restart backoff and last good settings, an ordered shutdown."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from daemons import write_settings
from helpers import poll_until

JSON_DEBUG = ("--log-format", "json", "--log-level", "debug")


def _records(daemon, **match) -> list[dict]:
    return [r for r in daemon.json_log() if all(r.get(k) == v for k, v in match.items())]


def _healthy(daemon) -> bool:
    try:
        return requests.get(daemon.base_url + "/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False  # not listening yet, or its web worker is still booting


def test_sighup_applies_a_change_the_file_watcher_cannot_see(make_daemon, tmp_path):
    # The settings folder is swapped for a new one (as configuration tools that
    # replace a whole folder do): the watcher keeps watching the old folder.
    conf = tmp_path / "conf"
    conf.mkdir()
    data = tmp_path / "data"
    config = write_settings(conf, workers=1, database=f"sqlite:///{data}/hopper.db",
                            library={"inbox": str(data / "inbox"), "root": str(data / "library"),
                                     "quarantine": str(data / "quarantine")})
    raw = yaml.safe_load(config.read_text())
    daemon = make_daemon("worker", config=config, extra_args=JSON_DEBUG)
    conf.rename(tmp_path / "conf-old")
    daemon.log_path = tmp_path / "conf-old" / daemon.log_path.name  # moved with its folder
    conf.mkdir()
    (conf / "settings.yaml").write_text(yaml.safe_dump({**raw, "workers": 3}))
    time.sleep(1.0)  # what the watcher would have needed (it applies within 0.1 s)
    assert len(daemon.worker_pids()) == 1
    daemon.process.send_signal(signal.SIGHUP)
    poll_until(lambda: len(daemon.worker_pids()) == 3, timeout=15,
               message=lambda: daemon.read_log()[-3000:])
    assert daemon.process.poll() is None
    assert [r["msg"] for r in _records(daemon, logger="hopper")
            if r["msg"].startswith("SIGHUP")] == [f"SIGHUP: reloading {conf}/settings.yaml"]


def test_sighup_with_a_broken_file_keeps_running_on_the_last_good_settings(make_daemon,
                                                                           tmp_path):
    daemon = make_daemon("worker", workers=2, extra_args=JSON_DEBUG)
    daemon.config.write_text(daemon.config.read_text() + "succeded: 7d\n")
    daemon.process.send_signal(signal.SIGHUP)
    poll_until(lambda: _records(daemon, logger="hopper.settings", level="error"), timeout=15)
    rejected = _records(daemon, logger="hopper.settings", level="error")[0]["msg"]
    assert "unknown setting 'succeded'" in rejected
    assert daemon.process.poll() is None
    assert len(daemon.worker_pids()) == 2


def test_an_unknown_key_on_a_live_change_is_rejected_and_shown_in_the_api(make_daemon):
    daemon = make_daemon(workers=1)
    poll_until(lambda: _healthy(daemon), timeout=30)
    daemon.config.write_text(daemon.config.read_text().replace("workers: 1", "worker: 4"))

    def published():
        body = requests.get(daemon.base_url + "/api/settings", timeout=5).json()
        return body if body["error"] else None

    body = poll_until(published, timeout=10, message="the rejected change never showed up")
    assert "unknown setting 'worker' (did you mean 'workers'?)" in body["error"]["error"]
    assert body["settings"]["workers"] == 1
    assert len(daemon.worker_pids()) == 1


def test_task_events_are_json_lines_with_their_fields(make_daemon):
    daemon = make_daemon(workers=2, extra_args=JSON_DEBUG)
    poll_until(lambda: _healthy(daemon), timeout=30)
    api = daemon.base_url + "/api/tasks"
    echo = requests.post(api, json={"name": "echo", "args": {"a": 1}}, timeout=10).json()
    failing = requests.post(api, json={"name": "always_fails"}, timeout=10).json()
    later = requests.post(api, json={"name": "echo", "delay": 3600}, timeout=10).json()
    requests.post(f"{api}/{later['id']}/cancel", timeout=10)
    sleeper = requests.post(api, json={"name": "sleep", "args": {"seconds": 60}},
                            timeout=10).json()

    def events(task_id):
        return [r["event"] for r in _records(daemon, logger="hopper.tasks", task_id=task_id)]

    poll_until(lambda: "succeeded" in events(echo["id"]) and "failed" in events(failing["id"])
               and "started" in events(sleeper["id"]), timeout=30,
               message=lambda: daemon.read_log()[-3000:])
    assert events(echo["id"]) == ["enqueued", "started", "succeeded"]
    assert events(failing["id"]) == ["enqueued", "started", "retried", "started", "failed"]
    assert events(later["id"]) == ["enqueued", "cancelled"]

    done = requests.get(f"{api}/{echo['id']}", timeout=5).json()
    enqueued, started, succeeded = _records(daemon, logger="hopper.tasks", task_id=echo["id"])
    assert enqueued["level"] == "debug" and enqueued["worker"] is None
    for record in (enqueued, started, succeeded):
        assert record["name"] == "echo" and record["queue"] == "default"
        assert record["ts"].endswith("+00:00")
    for record in (started, succeeded):
        assert record["worker"] == done["worker"] and record["attempt"] == 1
    assert succeeded["level"] == "debug"
    assert 0 <= succeeded["duration"] <= done["finished_at"] - done["started_at"] + 0.01
    attempts = [(r["event"], r["attempt"], r["level"]) for r in
                _records(daemon, logger="hopper.tasks", task_id=failing["id"])][2:]
    assert attempts == [("retried", 1, "warning"), ("started", 2, "debug"), ("failed", 2, "error")]

    # A worker killed mid-task: its task is rescued, and the event names that worker.
    running = requests.get(f"{api}/{sleeper['id']}", timeout=5).json()
    pid = int(running["worker"].rsplit(":", 1)[1].split("-")[0])
    os.kill(pid, signal.SIGKILL)
    poll_until(lambda: "rescued" in events(sleeper["id"]), timeout=15)
    rescued = _records(daemon, event="rescued", task_id=sleeper["id"])[0]
    assert rescued["worker"] == running["worker"] and rescued["name"] == "sleep"
    assert rescued["level"] == "warning"
    # Every process of the tree (supervisor, Gunicorn, workers) wrote JSON lines only.
    lines = daemon.read_log().splitlines()
    assert [line for line in lines if not line.startswith("{")] == []
    assert {"hopper", "hopper.tasks", "gunicorn.error"} <= {r["logger"] for r in daemon.json_log()}


def _kill_web_and_wait_for_a_new_one(daemon) -> float:
    """SIGKILL the web server; seconds until the supervisor has started another."""
    old = poll_until(daemon.gunicorn_pid, timeout=30)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    poll_until(lambda: (daemon.gunicorn_pid() or old) != old, timeout=60, interval=0.05,
               message=lambda: daemon.read_log()[-3000:])
    return time.monotonic() - killed


def test_a_crashing_web_server_is_restarted_with_growing_delays(make_daemon):
    daemon = make_daemon(workers=1, extra_args=JSON_DEBUG)
    poll_until(lambda: _healthy(daemon), timeout=30)
    gaps = [_kill_web_and_wait_for_a_new_one(daemon) for _ in range(3)]
    exits = _records(daemon, event="web_exited")
    assert [r["restart_in"] for r in exits] == [1.0, 2.0, 4.0]
    assert all(r["level"] == "error" and r["uptime"] < 30 for r in exits)
    for gap, delay in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert delay <= gap < delay + 5, gaps
    poll_until(lambda: _healthy(daemon), timeout=60)
    assert daemon.process.poll() is None


def test_a_restarted_web_server_uses_the_last_good_settings(make_daemon):
    daemon = make_daemon(workers=1)
    poll_until(lambda: _healthy(daemon), timeout=30)
    daemon.config.write_text(daemon.config.read_text().replace("workers: 1", "workers: many"))
    poll_until(lambda: requests.get(daemon.base_url + "/api/settings", timeout=5)
               .json()["error"], timeout=10)
    _kill_web_and_wait_for_a_new_one(daemon)
    poll_until(lambda: _healthy(daemon), timeout=60, message=lambda: daemon.read_log()[-3000:])
    body = requests.get(daemon.base_url + "/api/settings", timeout=5).json()
    assert body["settings"]["workers"] == 1
    assert "workers: expected a whole number" in body["error"]["error"]


def test_shutdown_stops_claiming_then_the_web_server_within_the_grace(make_daemon, client):
    from hopper.app import queue

    daemon = make_daemon(workers=2, shutdown_grace="3s", extra_args=JSON_DEBUG)
    poll_until(lambda: _healthy(daemon), timeout=30)
    long_task = queue.enqueue("sleep", {"seconds": 60})
    poll_until(lambda: queue.get_task(long_task)["status"] == "running", timeout=20)
    short = queue.enqueue_many([{"name": "sleep", "args": {"seconds": 0.3}} for _ in range(30)])
    poll_until(lambda: client.backend.counts()["default"].get("succeeded", 0) >= 2, timeout=20)
    stopping = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    took = time.monotonic() - stopping
    assert took < 3 + 2.5, took
    steps = [r["msg"] for r in _records(daemon, logger="hopper") if r["msg"].startswith(
        ("stopping:", "hopper stopped"))]
    assert steps == ["stopping: workers claim no more tasks; 3.0s for the rest",
                     "stopping: web server stopped", "hopper stopped"]
    claims_stopped = next(r["ts"] for r in _records(daemon, logger="hopper")
                          if r["msg"].startswith("stopping: workers"))
    # At most a claim already in flight when the stop came; without the stop the
    # second worker would have started about ten short tasks during the grace.
    late_starts = [r for r in _records(daemon, event="started") if r["ts"] > claims_stopped]
    assert len(late_starts) <= 1, late_starts
    assert queue.get_task(long_task)["status"] == "queued"
    counts = client.backend.counts()["default"]
    assert counts.get("queued", 0) >= 1 and sum(counts.values()) == len(short) + 1
    assert not psutil.pid_exists(daemon.process.pid) or \
        psutil.Process(daemon.process.pid).status() == psutil.STATUS_ZOMBIE


def test_the_default_shutdown_grace_fits_docker_stop(tmp_path):
    from hopper.app import settings

    path = tmp_path / "settings.yaml"
    path.write_text("workers: 1\n")
    assert settings.load(path).shutdown_grace == 8.0


def _documented_keys() -> list[str]:
    """The keys of the table in docs/configuration.md's "Keys" section."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    section = text.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z_.]+)` \|", section, re.M)


def _nested(dotted: str) -> dict:
    """``a.b.c`` as ``{a: {b: {c: None}}}``, the shape of a settings file."""
    value: dict | None = None
    for part in reversed(dotted.split(".")):
        value = {part: value}
    assert value is not None
    return value


def test_every_documented_key_is_known_and_every_known_key_is_documented():
    from hopper.app import plugins, settings_keys

    known = {**settings_keys.KNOWN, **plugins.settings_keys()}  # the core's and plugins' keys
    documented = _documented_keys()
    assert len(documented) >= 20, documented
    for key in documented:
        # UnknownKey names a documented key the code refuses
        settings_keys.check(_nested(key), plugins.settings_keys())

    def flatten(known: dict, prefix: str = "") -> set[str]:
        keys: set[str] = set()
        for name, inner in known.items():
            dotted = prefix + ("NAME" if name == settings_keys.ANY_NAME else name)
            keys |= flatten(inner, dotted + ".") if isinstance(inner, dict) else {dotted}
        return keys

    assert set(documented) == flatten(known)


@pytest.mark.parametrize("text, message", [
    ("queues: {video: {concurency: 0}}",
     "unknown setting 'queues.video.concurency' (did you mean 'queues.video.concurrency'?)"),
    ("schedules: [{name: echo, evry: 30s}]",
     "unknown setting 'schedules[0].evry' (did you mean 'schedules[0].every'?)"),
    ("librar: {inbox: in}", "unknown setting 'librar' (did you mean 'library'?)"),
    ("colour: blue", "unknown setting 'colour'; known keys here: auth, database"),
])
def test_unknown_nested_keys_are_named_with_a_suggestion(tmp_path, text, message):
    from hopper.app import settings

    path = tmp_path / "settings.yaml"
    path.write_text(text + "\n")
    with pytest.raises(settings.SettingsError) as refused:
        settings.load(path)
    assert message in str(refused.value)
