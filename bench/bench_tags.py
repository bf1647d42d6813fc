#!/usr/bin/env python3
"""Listing one tag's tasks over HTTP with a large table: ``GET /api/tasks?tag=...``.

Fills a fresh database with TASKS tasks (default 1,000,000) through the backend's own
batch enqueue, each tagged ``user:<n>`` (USERS users) and every tenth also ``report``;
nine in ten are then marked succeeded, as in a table that has been in use. Starts a real
daemon (``python run.py``, 1 worker) on it and requests one random user's first page
(50 tasks, newest first) over one keep-alive connection, REQUESTS times, then the
``report`` tag (a tag on 100,000 tasks) and both tags together. Prints p50/p95/p99.

    python bench/bench_tags.py [--tasks 1000000] [--users 10000] [--requests 500]
                               [--database postgresql://postgres@127.0.0.1:5432/test]

With ``--database postgresql://...`` a new database named ``hopper_bench_tags_<pid>`` is
created on that server for the run and dropped afterwards.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BATCH = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(database: str, tasks: int, users: int) -> float:
    """Insert the tasks; return the seconds it took."""
    from hopper.app.backends import open_backend
    from hopper.app.backends.base import NewTask

    backend = open_backend(database, "normal")
    backend.migrate()
    began = time.monotonic()
    for start in range(0, tasks, BATCH):
        batch = [NewTask(name="echo", args={"i": i}, args_json=f'{{"i": {i}}}',
                         tags=(f"user:{i % users}", "report") if i % 10 == 0
                         else (f"user:{i % users}",))
                 for i in range(start, min(tasks, start + BATCH))]
        backend.enqueue(batch)
    with backend.transaction() as conn:
        backend.run(conn, "UPDATE tasks SET status = 'succeeded', attempts = 1,"
                          " started_at = created_at, finished_at = created_at + 1"
                          " WHERE id - (id / 10) * 10 <> 0")
    if not database.startswith("sqlite"):
        # What autovacuum does a minute after a bulk load; here at once, for stable plans.
        with backend.transaction() as conn:
            backend.run(conn, "ANALYZE")
    backend.close()
    return time.monotonic() - began


def start_daemon(folder: Path, database: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "database": database, "workers": 1, "durability": "normal",
        "server": {"bind": f"127.0.0.1:{port}", "threads": 4},
        "library": {"rescan_interval": 0}}))
    log = open(folder / "daemon.log", "wb")
    process = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "HOPPER_CONFIG": str(config)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process, port
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"daemon did not become healthy:\n{(folder / 'daemon.log').read_text()}")


def measure(port: int, paths: list[str]) -> tuple[list[float], int]:
    """Latency of each GET in seconds, and the number of tasks the last page held."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, listed = [], 0
    for path in paths:
        began = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status} {body[:200]!r}")
        listed = body.count(b'"queue":')
    conn.close()
    return latencies, listed


def report(label: str, latencies: list[float], listed: int) -> None:
    q = statistics.quantiles(sorted(latencies), n=100)
    print(f"{label:<28} {len(latencies)} requests, {listed} tasks per page:"
          f" p50 {q[49] * 1000:.1f} ms  p95 {q[94] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms")


def pg_database(server_url: str) -> tuple[str, callable]:
    import psycopg

    name = f"hopper_bench_tags_{os.getpid()}"
    admin = psycopg.connect(server_url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")

    def drop():
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()

    return server_url.rsplit("/", 1)[0] + "/" + name, drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database", help="a PostgreSQL server URL (default: a SQLite file)")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="hopper-bench-tags-") as tmp:
        folder = Path(tmp)
        database, cleanup = f"sqlite:///{folder / 'hopper.db'}", None
        if args.database:
            database, cleanup = pg_database(args.database)
        try:
            took = fill(database, args.tasks, args.users)
            engine = "PostgreSQL" if args.database else "SQLite"
            print(f"{engine}: {args.tasks:,} tasks, {args.users:,} users, filled in {took:.0f} s")
            process, port = start_daemon(folder, database)
            try:
                warm = [f"/api/tasks?tag=user:{rng.randrange(args.users)}" for _ in range(20)]
                measure(port, warm)
                user_paths = [f"/api/tasks?tag=user:{rng.randrange(args.users)}"
                              for _ in range(args.requests)]
                report("tag=user:<random>", *measure(port, user_paths))
                report("tag=report", *measure(port, ["/api/tasks?tag=report"] * args.requests))
                both = [f"/api/tasks?tag=user:{rng.randrange(0, args.users, 10)}&tag=report"
                        for _ in range(args.requests)]
                report("tag=user:<random>&tag=report", *measure(port, both))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
        finally:
            if cleanup:
                cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
