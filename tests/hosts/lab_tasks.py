"""Tasks the simulated hosts run. Each run appends a line to ``HOPPER_LAB_RUNS`` (a file
of the host it runs on): ``<event> <task id> <host> <time>``, so a test can count
every execution and see when a copy last made progress."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from hopper import current_task_id, task


def _note(event: str) -> None:
    line = f"{event} {current_task_id()} {socket.gethostname()} {time.time():.3f}\n"
    with open(os.environ["HOPPER_LAB_RUNS"], "a") as runs:
        runs.write(line)


@task(name="lab.record")
def record() -> dict:
    """A quick task: one line per run."""
    _note("run")
    return {"host": socket.gethostname()}


@task(name="lab.hold", max_attempts=5)
def hold(seconds: float) -> dict:
    """A long task that notes its progress every 0.2 s (the last tick says when it stopped)."""
    _note("run")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        _note("tick")
    _note("done")
    return {"host": socket.gethostname()}


@task(name="lab.fail_first", max_attempts=1)
def fail_first(marker: str) -> dict:
    """Fails on its first run (it leaves ``marker``), succeeds on the next."""
    _note("run")
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first run fails on purpose")
    return {"host": socket.gethostname()}


@task(name="lab.until", max_attempts=5)
def until(path: str, limit: float = 60) -> dict:
    """Runs until ``path`` exists (the test decides when it ends), at most ``limit`` s."""
    _note("run")
    deadline = time.monotonic() + limit
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _note("done")
    return {"host": socket.gethostname()}


@task(name="lab.noop")
def noop() -> None:
    """Nothing at all: what the queue itself costs."""
