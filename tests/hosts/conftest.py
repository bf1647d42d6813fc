"""Fixtures for tests with several simulated hosts (see netlab.py): a lab with its own
PostgreSQL server, and daemons started on its hosts. Skipped with the reason where
namespaces or the server binaries are not available, except in CI, where they must run."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import netlab  # noqa: E402  (beside this file, found through the path above)
from lab_records import live_workers  # noqa: E402  (idem)


@pytest.fixture
def lab():
    """A bridge and a database host running PostgreSQL; removed afterwards, always."""
    reason = netlab.unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"simulated hosts are required in CI: {reason}")
        pytest.skip(reason)
    built = netlab.Lab()
    try:
        built.database = built.start_postgres()
        yield built
    finally:
        built.close()


@pytest.fixture
def start_daemon(lab):
    """``start_daemon(host, command="worker", extra=(), env=None, **settings)``: a daemon
    on ``host`` against the lab's database; waits for its workers to register."""
    def start(host, command: str = "worker", extra: tuple[str, ...] = (),
              env: dict | None = None, wait: bool = True, **overrides) -> netlab.Daemon:
        settings = lab.settings(host, lab.database, **overrides)
        env = {"HOPPER_LAB_RUNS": str(host.folder / "runs.log"), **(env or {})}
        daemon = netlab.Daemon(host, settings, command, extra, env)
        if wait:
            from helpers import poll_until

            workers = overrides.get("workers", 2)
            poll_until(lambda: live_workers(lab.database, host.name) >= workers, timeout=60,
                       message=lambda: f"{host.name} did not start:\n{daemon.log()}")
        return daemon
    return start
