"""A busy web address is one clear error: ``serve`` refuses to start (exit 2, naming the
setting), and a web server that keeps exiting at once stops the daemon instead of looping."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import requests
from daemons import REPO, write_settings
from helpers import poll_until


def _listen(port: int | None = None) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port or 0))
    sock.listen(1)
    return sock


def _serve(config, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HOPPER_BIND"}
    env.update({"HOPPER_CONFIG": str(config), **(env_extra or {})})
    return subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(config),
                           "serve"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


def test_serve_on_a_busy_server_bind_exits_2_naming_it_before_starting(tmp_path):
    with _listen() as busy:
        bind = f"127.0.0.1:{busy.getsockname()[1]}"
        config = write_settings(tmp_path, server={"bind": bind, "threads": 2})
        done = _serve(config)
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert f"server.bind {bind} is already in use" in output
    assert "hopper running" not in output
    assert not list(tmp_path.rglob("*.sqlite3")) and not list(tmp_path.rglob("*.db"))


def test_serve_on_a_busy_hopper_bind_names_the_variable(tmp_path):
    with _listen() as busy:
        bind = f"127.0.0.1:{busy.getsockname()[1]}"
        done = _serve(write_settings(tmp_path), {"HOPPER_BIND": bind})
    assert done.returncode == 2
    assert f"HOPPER_BIND {bind} is already in use" in done.stdout + done.stderr


def test_web_server_exiting_at_once_three_times_stops_the_daemon(make_daemon):
    daemon = make_daemon(workers=1)
    def healthy():
        try:
            return requests.get(daemon.base_url + "/healthz", timeout=2).ok
        except requests.ConnectionError:
            return False

    poll_until(healthy, timeout=30)
    port = int(daemon.settings["server"]["bind"].rsplit(":", 1)[1])
    os.kill(daemon.gunicorn_pid(), signal.SIGKILL)

    def take_port():
        try:
            return _listen(port)
        except OSError:
            return None  # the killed server's worker still holds it for a moment

    with poll_until(take_port, timeout=15, interval=0.05):
        code = daemon.process.wait(90)
    assert code == 2
    log = daemon.read_log()
    assert f"cannot serve: server.bind 127.0.0.1:{port} is already in use" in log
    # Killed (restarted), then busy twice (restarted), the third time it stops.
    assert log.count("the web server exited") == 3
