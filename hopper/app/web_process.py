"""Running the web layer (Gunicorn, gthread) as a child process of the supervisor.

Gunicorn's arbiter reaps every child with ``waitpid(-1)``, so it gets a process
of its own and the worker pool is never forked from inside it.
It lives beside the daemon, not in ``web/``: it imports neither Flask nor the
web modules, it only starts the process that serves them.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from hopper.app.settings import SNAPSHOT_ENV, Settings

log = logging.getLogger("hopper.web")

KILL_WAIT_S = 5  # after SIGKILL, how long to wait for the process to be gone


class WebServer:
    """Starts and stops ``gunicorn app.web:create_app()`` for the given settings.

    The child gets these settings themselves (``HOPPER_SETTINGS_SNAPSHOT``), so a
    restart after a broken edit of settings.yaml still starts from the last good ones.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
                "--workers", "1", "--threads", str(self.settings.threads),
                "--bind", self.settings.bind, "--timeout", "60",
                "--graceful-timeout", f"{max(1, int(self.settings.shutdown_grace))}",
                "--keep-alive", "5",
                "--no-control-socket",
                "--config", "python:hopper.app.web.gunicorn_hooks",
                "hopper.app.web:create_app()"]

    def start(self) -> None:
        env = {**os.environ, "HOPPER_SUPERVISOR_PID": str(os.getpid()),
               SNAPSHOT_ENV: self.settings.snapshot()}
        if self.settings.from_file:
            env["HOPPER_CONFIG"] = str(self.settings.path)
        else:  # built-in defaults: the web server looks in the same folder and finds none
            env.pop("HOPPER_CONFIG", None)
        # Run from the settings file's folder: Gunicorn puts its folder first on sys.path,
        # and that is where the user's task modules live.
        self.process = subprocess.Popen(self.command(), cwd=self.settings.path.parent, env=env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, deadline: float | None = None) -> None:
        """SIGTERM (Gunicorn finishes the requests in flight), SIGKILL at ``deadline``
        (``time.monotonic()``; default: the settings' shutdown_grace from now)."""
        process = self.process
        if process is None or not self.alive():
            return
        if deadline is None:
            deadline = time.monotonic() + self.settings.shutdown_grace
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("gunicorn did not stop in time; killing it")
            process.kill()
            process.wait(KILL_WAIT_S)
