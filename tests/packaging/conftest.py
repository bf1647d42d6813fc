"""Fixtures for the installed package: one wheel and one virtual environment per session."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from daemons import free_port
from helpers import poll_until
from installed import build_wheel, clean_env, http_get, make_venv, run


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources."""
    return build_wheel(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="session")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh virtual environment with the wheel (and its dependencies) installed."""
    path = make_venv(tmp_path_factory.mktemp("installed") / "venv")
    run([path / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=path,
        env=clean_env(path))
    return path


class Background:
    """A long-running command (a daemon, a web app) started from a folder, stopped at the end."""

    def __init__(self, command: list, cwd: Path, env: dict, name: str):
        # Beside the folder: the folder itself stays as the user has it.
        self.log_path = cwd.parent / f"{cwd.name}.{name}.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, url: str, timeout: float = 60) -> None:
        poll_until(lambda: self.process.poll() is None and http_get(url)[0] == 200,
                   timeout=timeout, interval=0.2,
                   message=lambda: f"{url} never answered 200:\n{self.read_log()}")
        assert self.process.poll() is None, self.read_log()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL to the whole session if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) == self.process.pid:
                    proc.kill()
            except (ProcessLookupError, psutil.Error):
                continue
        self.log.close()
        return self.process.returncode


@pytest.fixture
def background():
    """Factory for background commands; all are stopped at teardown."""
    started: list[Background] = []

    def factory(command: list, cwd: Path, env: dict, name: str) -> Background:
        started.append(Background(command, cwd, env, name))
        return started[-1]

    yield factory
    for item in started:
        item.stop()


@pytest.fixture(scope="module")
def installed_daemon(venv, tmp_path_factory):
    """``hopper serve`` of the installed package, started in an empty folder (built-in
    defaults, data under ./data), the port from HOPPER_BIND."""
    folder = tmp_path_factory.mktemp("empty")
    port = free_port()
    env = clean_env(venv, HOPPER_BIND=f"127.0.0.1:{port}")
    daemon = Background([venv / "bin" / "hopper", "serve"], folder, env, "serve")
    try:
        daemon.wait_healthy(f"http://127.0.0.1:{port}/healthz")
        daemon.folder, daemon.env, daemon.port = folder, env, port
        yield daemon
    finally:
        daemon.stop()
