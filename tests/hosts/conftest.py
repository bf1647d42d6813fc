"""Fixtures for tests with several simulated hosts (see netlab.py): a lab with its own
PostgreSQL server, and daemons started on its hosts. Skipped with the reason where
namespaces or the server binaries are not available, except in CI, where they must run."""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import netlab  # noqa: E402


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


def live_workers(url: str, host: str) -> int:
    """Worker rows of ``host`` with a fresh heartbeat (0 before the schema exists)."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM workers WHERE host = %s AND"
                                " heartbeat_at > extract(epoch from now()) - 3",
                                (host,)).fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0


def runs(lab) -> list[tuple[str, int, str, float]]:
    """Every line the lab's tasks wrote: ``(event, task id, host, time)``."""
    out = []
    for host in lab.hosts:
        path = host.folder / "runs.log"
        if path.exists():
            for line in path.read_text().splitlines():
                event, task_id, name, at = line.split()
                out.append((event, int(task_id), name, float(at)))
    return out


def run_counts(lab) -> Counter:
    """How many times each task started."""
    return Counter(task_id for event, task_id, _, _ in runs(lab) if event == "run")
