"""Real daemons for tests: settings files in temp folders and ``python run.py`` processes."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import yaml
from helpers import poll_until

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(folder: Path, **overrides) -> Path:
    """A settings.yaml in ``folder`` with test-friendly values and ``overrides``."""
    raw = {
        "database": "sqlite:///data/hopper.db",
        "workers": 2,
        "server": {"bind": f"127.0.0.1:{free_port()}", "threads": 4},
        # No hourly catch-up scan: its slots fall on the hour, so a daemon running
        # across one would enqueue library.scan into a test that counts its tasks.
        "library": {"inbox": "data/inbox", "root": "data/library",
                    "quarantine": "data/quarantine", "settle_time": "300ms",
                    "rescan_interval": 0},
        "lease": "5s",
        "shutdown_grace": "10s",
        "tasks": {"modules": ["sample_tasks"]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Daemon:
    """A real ``python run.py`` process on a temp settings file."""

    def __init__(self, config: Path, command: str = "serve", extra_args: tuple[str, ...] = ()):
        self.config = config
        self.command = command
        self.extra_args = tuple(extra_args)  # after the subcommand, e.g. --log-format json
        self.process: subprocess.Popen | None = None
        self.log_path = config.parent / f"daemon-{command}.log"

    @property
    def settings(self) -> dict:
        return yaml.safe_load(self.config.read_text())

    @property
    def base_url(self) -> str:
        return f"http://{self.settings['server']['bind']}"

    def start(self, wait_workers: int | None = None) -> "Daemon":
        from hopper.app.settings import load

        self.database = load(self.config).database
        env = {**os.environ, "HOPPER_CONFIG": str(self.config),
               "PYTHONPATH": str(REPO / "tests") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), "--config", str(self.config), self.command,
             *self.extra_args],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        expected = self.settings.get("workers", 2) if wait_workers is None else wait_workers
        poll_until(lambda: len(self.worker_pids()) == expected, timeout=30,
                   message=lambda: f"daemon did not start {expected} workers:\n{self.read_log()}")
        return self

    def tree(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def workers(self) -> list[dict]:
        """This daemon's live workers as it publishes them in the database (other
        daemons may share the database)."""
        from hopper.app.backends import open_backend

        backend = open_backend(self.database)
        mine = {p.pid for p in self.tree()}
        try:
            return [w for w in backend.live_workers() if w["pid"] in mine]
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
            return []  # no tables yet: the daemon is still starting
        finally:
            backend.close()

    def worker_pids(self) -> list[int]:
        return sorted(w["pid"] for w in self.workers())

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def json_log(self) -> list[dict]:
        """The log's JSON lines (``--log-format json``), parsed; other lines skipped."""
        records = []
        for line in self.read_log().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def gunicorn_pid(self) -> int | None:
        """The pid of the web server (the Gunicorn arbiter), a child of the supervisor."""
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return None
        for child in children:
            try:
                if ("gunicorn" in " ".join(child.cmdline())
                        and child.status() != psutil.STATUS_ZOMBIE):
                    return child.pid
            except psutil.Error:
                continue
        return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.log.close()

    def kill_everything(self) -> None:
        for proc in [*self.tree()]:
            try:
                proc.kill()
            except psutil.Error:
                continue
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
