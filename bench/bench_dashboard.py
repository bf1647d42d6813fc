#!/usr/bin/env python3
"""Dashboard benchmark: every page and API call the UI makes, and /metrics,
against a SQLite database holding ten million tasks.

1. Fill: a fresh database (migrations applied, so the counting triggers run on
   every row) gets ``--tasks`` tasks inserted in SQL by a recursive CTE, in
   chunks: four queues, mostly succeeded, some failed and cancelled, a parent
   with 1,000 children, a backlog of delayed queued tasks, finishing times
   spread over 30 days with the last hour busier. The per-minute and histogram
   counters, which the insert trigger does not fill (tasks are inserted already
   finished), are filled from the rows once, as a daemon would have counted them.
2. Starts the daemon on it (``python run.py``, 2 workers, 4 server threads,
   retention long enough that nothing is pruned during the run).
3. Requests each URL ``--rounds`` times in turn (round-robin, after one warm-up
   round) over one keep-alive connection and prints p50/p95 per URL.

    python bench/bench_dashboard.py [--tasks 10000000] [--rounds 40] [--keep DIR]

The filled database is reused when ``--keep DIR`` already holds one.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHUNK = 1_000_000
DAY = 86400.0

# One row per x (1..n): status, queue, name, args and error derived from x.
FILL = """
WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM c WHERE x < ?)
INSERT INTO tasks (queue, name, args, status, priority, run_after, attempts, max_attempts,
                   error, result, worker, created_at, started_at, finished_at)
SELECT q, nm, '{"path": "photos/IMG_' || x || '.jpg", "width": ' || (x % 2000) || '}', st, 0,
       t, CASE WHEN st = 'failed' THEN 3 ELSE 1 END, 3,
       CASE WHEN st = 'failed' THEN 'Traceback (most recent call last):' || char(10) ||
            '  File "tasks.py", line 12, in ' || nm || char(10) ||
            (CASE x % 3 WHEN 0 THEN 'ValueError: bad width ' WHEN 1 THEN 'OSError: disk full '
             ELSE 'TimeoutError: slow ' END) || x END,
       CASE WHEN st = 'succeeded' THEN '{"ok": true}' END, 'bench:1-0', t, t + 0.01,
       t + 0.01 + (x % 7) * 0.05
  FROM (SELECT x,
               CASE x % 4 WHEN 0 THEN 'default' WHEN 1 THEN 'library' WHEN 2 THEN 'video'
                          ELSE 'reports' END AS q,
               CASE x % 5 WHEN 0 THEN 'echo' WHEN 1 THEN 'resize' WHEN 2 THEN 'library.ingest'
                          WHEN 3 THEN 'report.build' ELSE 'transcode' END AS nm,
               CASE WHEN x % 100 < 4 THEN 'failed' WHEN x % 1000 = 999 THEN 'cancelled'
                    ELSE 'succeeded' END AS st,
               -- the last 2 % of ids finished in the last hour, the rest over 30 days before
               CASE WHEN x > ? THEN ? - 3600 + (x - ?) * 3600.0 / (? - ?)
                    ELSE ? - 30 * 86400 + x * (30 * 86400.0 - 3600) / ? END AS t
          FROM c)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fill(db: Path, n: int) -> dict:
    """Create and fill the database; returns ids the URLs refer to."""
    from hopper.app.backends.sqlite import SqliteBackend

    backend = SqliteBackend(f"sqlite:///{db}", "normal")
    backend.migrate()
    backend.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = time.time()
    recent = int(n * 0.98)
    started = time.monotonic()
    for low in range(1, n + 1, CHUNK):
        high = min(low + CHUNK - 1, n)
        conn.execute("BEGIN")
        conn.execute(FILL, (low, high, recent, now, recent, n, recent, now, n))
        conn.execute("COMMIT")
        log(f"filled {high:,} of {n:,} ({time.monotonic() - started:.0f} s)")
    conn.execute("BEGIN")
    parent = conn.execute(
        "INSERT INTO tasks (queue, name, args, status, run_after, attempts, created_at, started_at,"
        " progress_done, progress_total)"
        " VALUES ('library', 'library.scan', '{}', 'waiting', ?, 1, ?, ?, NULL, NULL) RETURNING id",
        (now - 600, now - 600, now - 599)).fetchone()[0]
    conn.executemany(
        "INSERT INTO tasks (queue, name, args, status, run_after, attempts, parent_id, created_at,"
        " started_at, finished_at) VALUES ('library', 'library.ingest', ?, ?, ?, 1, ?, ?, ?, ?)",
        [(json.dumps({"path": f"inbox/{i}.jpg"}), "succeeded" if i < 700 else "queued",
          now + (0 if i < 700 else 10 * DAY), parent, now - 600, now - 500 if i < 700 else None,
          now - 400 if i < 700 else None) for i in range(1000)])
    # A delayed backlog: queued, not due for ten days, so the workers leave it alone.
    conn.executemany(
        "INSERT INTO tasks (queue, name, args, run_after, created_at)"
        " VALUES ('reports', 'report.build', ?, ?, ?)",
        [(json.dumps({"day": i}), now + 10 * DAY, now) for i in range(5000)])
    conn.execute("COMMIT")
    log("counting the filled tasks: counts, per-minute rows and histograms")
    conn.execute("BEGIN")
    # The backend counts what it writes; these rows were written around it.
    conn.execute("DELETE FROM task_counts")
    conn.execute("INSERT INTO task_counts (queue, status, live, entered, created)"
                 " SELECT queue, status, COUNT(*), COUNT(*), COUNT(*) FROM tasks GROUP BY 1, 2")
    conn.execute("DELETE FROM task_minutes")
    conn.execute(
        "INSERT INTO task_minutes (minute, queue, succeeded, failed, picked, pickup_sum)"
        " SELECT CAST(finished_at / 60 AS INTEGER) * 60, queue, SUM(status = 'succeeded'),"
        " SUM(status = 'failed'), COUNT(*), SUM(started_at - created_at) FROM tasks"
        " WHERE id > ? AND status IN ('succeeded', 'failed') GROUP BY 1, 2", (recent,))
    for metric, expr in (("duration", "finished_at - started_at"),
                         ("pickup", "started_at - created_at")):
        conn.execute(
            "INSERT INTO task_histograms (metric, queue, le, n, total)"
            f" SELECT ?, queue, CASE WHEN {expr} <= 0.01 THEN 0.01 WHEN {expr} <= 0.1 THEN 0.1"
            f" WHEN {expr} <= 0.5 THEN 0.5 ELSE 1 END, COUNT(*), SUM({expr}) FROM tasks"
            " WHERE started_at IS NOT NULL AND status IN ('succeeded', 'failed') GROUP BY 2, 3",
            (metric,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    log(f"fill done in {time.monotonic() - started:.0f} s")
    return {"parent": parent}


def refs(db: Path) -> dict:
    conn = sqlite3.connect(db)
    try:
        failed = conn.execute("SELECT max(id) FROM tasks WHERE status = 'failed'").fetchone()[0]
        parent = conn.execute("SELECT parent_id FROM tasks WHERE parent_id IS NOT NULL"
                              " LIMIT 1").fetchone()[0]
        total = conn.execute("SELECT SUM(live) FROM task_counts").fetchone()[0]
    finally:
        conn.close()
    return {"failed": failed, "parent": parent, "total": total}


def start_daemon(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "database": "sqlite:///data/hopper.db", "workers": 2,
        "server": {"bind": f"127.0.0.1:{port}", "threads": 4},
        "retention": {"succeeded": "3650d", "failed": "3650d"},
        "schedules": [{"name": "echo", "every": "1h"},
                      {"name": "sleep", "cron": "0 3 * * *", "args": {"seconds": 1}}],
    }))
    out = open(folder / "daemon.log", "ab")
    process = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                               cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, "HOPPER_CONFIG": str(config)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"daemon did not start; see {folder / 'daemon.log'}")


def targets(ids: dict) -> list[tuple[str, str, dict | None]]:
    """Every request the UI makes (pages, their polling, bulk counting) and /metrics."""
    bulk = {"action": "retry", "filter": {"status": "failed"}, "dry_run": True}
    return [
        ("GET", "/", None), ("GET", "/tasks", None), ("GET", "/tasks?status=failed", None),
        ("GET", "/tasks?queue=video&status=succeeded", None), ("GET", "/tasks?name=resize", None),
        ("GET", "/tasks?q=ValueError", None), ("GET", "/tasks?q=no-such-text", None),
        ("GET", f"/tasks/{ids['failed']}", None),
        ("GET", f"/tasks/{ids['parent']}", None), ("GET", "/schedules", None),
        ("GET", "/settings", None),
        ("GET", "/api/queues", None), ("GET", "/api/throughput?minutes=60", None),
        ("GET", "/api/workers", None), ("GET", "/api/tasks?status=failed&limit=100", None),
        ("GET", "/api/tasks?limit=50", None), ("GET", "/api/tasks?q=IMG_9999&limit=50", None),
        ("GET", f"/api/tasks/{ids['failed']}", None), ("GET", "/api/settings", None),
        ("GET", "/api/schedules", None), ("POST", "/api/tasks/bulk", bulk),
        ("GET", "/metrics", None),
    ]


def measure(port: int, plan, rounds: int) -> dict[str, list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    times: dict[str, list[float]] = {}
    for round_ in range(rounds + 1):
        for method, path, body in plan:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            start = time.perf_counter()
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            key = f"{method} {path}"
            if round_ == 0:
                log(f"{key}: HTTP {response.status}")
                continue  # warm-up round
            times.setdefault(key, []).append(elapsed * 1000)
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--keep", type=Path,
                        help="folder to keep (and reuse) the filled database in")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="hopper-dash-"))
    db = folder / "data" / "hopper.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        fill(db, args.tasks)
    ids = refs(db)
    log(f"database: {ids['total']:,} tasks, {db.stat().st_size / 1e9:.2f} GB")
    process, port = start_daemon(folder)
    try:
        times = measure(port, targets(ids), args.rounds)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    rows = [(key, statistics.median(v), percentile(v, 95)) for key, v in times.items()]
    print(f"| request ({ids['total']:,} tasks, {args.rounds} rounds) | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for key, p50, p95 in rows:
        print(f"| `{key}` | {p50:.1f} | {p95:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"tasks": ids["total"], "rows": rows}, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
