#!/usr/bin/env python3
"""What counting costs the queue's hot path, measured in one process.

Runs the same work on fresh databases in three ways, alternating ``--runs``
times so that drift in the machine's load hits all alike:

- ``none``: no counting at all (the counter batch is a no-op);
- ``batch``: what Hopper does, one grouped upsert per write transaction
  (``app/backends/counter_batch.py``);
- ``triggers``: the row triggers it replaced (SQLite migration 0008, PostgreSQL
  0007's statement triggers), re-created after migrating, with the batch a no-op.

The work: enqueue ``--n`` tasks in batches of 500, then claim and finish them
``--batch`` at a time through ``finish_and_claim`` (the worker loop's group
commit: the previous batch's outcomes and the next claim in one transaction).
On SQLite the rates are per second of this process's CPU time (fsync waits and
other jobs' load left out) and, beside them, per second of wall time; on
PostgreSQL per second of wall time.

    python bench/bench_counters.py [--n 20000] [--runs 5] [--batch 64] [--durability normal]
    python bench/bench_counters.py --postgres postgresql://postgres@127.0.0.1:5432/test

With ``--postgres URL`` each run uses a fresh database created on that server.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODES = ("none", "batch", "triggers")
MIGRATIONS = REPO / "hopper" / "migrations"


def _postgres_database(admin_url: str):
    """A fresh database on the server of ``admin_url``: (url, drop)."""
    import uuid

    import psycopg

    name = f"hopper_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(admin_url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")

    def drop():
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def _old_triggers(postgres: bool) -> str:
    """The trigger part of the counter migration that per-batch counting replaced."""
    if postgres:
        text = (MIGRATIONS / "postgres" / "0007_task_counters.sql").read_text()
        start = text.index("CREATE FUNCTION hopper_count_insert")
    else:
        text = (MIGRATIONS / "sqlite" / "0008_task_counters.sql").read_text()
        start = text.index("CREATE TRIGGER tasks_counted_insert")
    return text[start:text.index("-- Start from the tasks already in the table.")]


class _NoBatch:
    """A counter batch that counts nothing."""

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def one_run(folder: Path, n: int, batch: int, durability: str, mode: str,
            postgres: str | None = None) -> dict:
    from hopper.app.backends.base import NewTask, Outcome
    from hopper.app.backends.postgres import PostgresBackend
    from hopper.app.backends.sqlite import SqliteBackend

    drop = None
    if postgres:
        url, drop = _postgres_database(postgres)
        backend = PostgresBackend(url)
    else:
        backend = SqliteBackend(f"sqlite:///{folder / mode}-{time.time_ns()}.db", durability)
    backend.migrate()
    if mode != "batch":
        nothing = _NoBatch()
        backend._counted = lambda: nothing
    if mode == "triggers":
        conn = backend._conn()
        if postgres:
            conn.execute(_old_triggers(True))
        else:
            conn.executescript(_old_triggers(False))
    # SQLite runs inside this process: its CPU time is the cost, and unlike wall
    # time it does not grow when other jobs load the machine. PostgreSQL's work is
    # in the server, so it is timed by the wall clock.
    start, wall = time.process_time(), time.perf_counter()
    for low in range(0, n, 500):
        backend.enqueue([NewTask(name="echo", args={"i": i})
                         for i in range(low, min(n, low + 500))])
    enqueued, enqueued_wall = time.process_time(), time.perf_counter()
    done, claimed = 0, []
    while done < n:
        now = time.time()
        outcomes = [Outcome(c.id, True, now, now, "null") for c in claimed]
        done += len(outcomes)
        claimed = backend.finish_and_claim("bench:1-0", outcomes, [], batch if done < n else 0, 30)
    drained, drained_wall = time.process_time(), time.perf_counter()
    if mode == "batch":
        counts = backend.counts()
        assert counts == {"default": {"succeeded": n}}, counts
    backend.close()
    if drop is not None:
        drop()
    return {"enqueue_cpu": n / (enqueued - start), "drain_cpu": n / (drained - enqueued),
            "enqueue_wall": n / (enqueued_wall - wall),
            "drain_wall": n / (drained_wall - enqueued_wall)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="tasks claimed per transaction")
    parser.add_argument("--durability", default="normal", choices=("full", "normal"))
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to run on instead")
    parser.add_argument("--json", help="write the runs and medians here")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="hopper-counters-") as tmp:
        for _ in range(args.runs):
            for mode in MODES:
                results[mode].append(one_run(Path(tmp), args.n, args.batch, args.durability,
                                             mode, args.postgres))
    engine = "PostgreSQL" if args.postgres else f"SQLite, durability {args.durability}"
    clock = "wall" if args.postgres else "cpu"
    print(f"| counting ({engine}, n={args.n}, {args.batch} per transaction,"
          f" {args.runs} alternating runs) | enqueue tasks/s ({clock}) median |"
          f" claim+finish tasks/s ({clock}) median (min-max) | claim+finish wall median |"
          " vs none (median of per-run ratios) |")
    print("|---|---:|---:|---:|---:|")
    summary = {}
    for mode in MODES:
        runs = results[mode]
        enq = statistics.median(r[f"enqueue_{clock}"] for r in runs)
        drain = [r[f"drain_{clock}"] for r in runs]
        wall = statistics.median(r["drain_wall"] for r in runs)
        ratio = statistics.median(r[f"drain_{clock}"] / base[f"drain_{clock}"]
                                  for r, base in zip(runs, results["none"], strict=True))
        summary[mode] = {"enqueue": enq, "drain": statistics.median(drain), "drain_min": min(drain),
                         "drain_max": max(drain), "drain_wall": wall, "vs_none": ratio}
        print(f"| {mode} | {enq:,.0f} | {statistics.median(drain):,.0f}"
              f" ({min(drain):,.0f}-{max(drain):,.0f}) | {wall:,.0f} | {ratio:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"engine": engine, "clock": clock, "n": args.n,
                                               "batch": args.batch, "runs": results,
                                               "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
