#!/usr/bin/env python3
"""What the counting triggers cost the queue's hot path, measured in one process.

Runs the same work on a fresh SQLite database with the counting triggers
(migration 0008) and without them (dropped after migrating), alternating
``--runs`` times so that drift in the machine's load hits both alike:
enqueue ``--n`` tasks in batches of 500, then claim and finish them in
batches of 10 through ``finish_and_claim`` (the worker loop's group commit).
On SQLite the rates are per second of this process's CPU time (fsync waits and
other jobs' load left out); on PostgreSQL per second of wall time.

    python bench/bench_counters.py [--n 20000] [--runs 3] [--durability normal]
    python bench/bench_counters.py --postgres postgresql://postgres@127.0.0.1:5432/test

With ``--postgres URL`` each run uses a fresh database created on that server
(the statement-level triggers of migration postgres/0007).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TRIGGERS = ("tasks_counted_insert", "tasks_counted_move", "tasks_counted_delete",
            "tasks_counted_pickup", "tasks_counted_finish")
PG_TRIGGERS = ("tasks_counted_insert", "tasks_counted_update", "tasks_counted_delete")


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


def one_run(folder: Path, n: int, durability: str, triggers: bool,
            postgres: str | None = None) -> tuple[float, float]:
    from hopper.app.backends.base import NewTask, Outcome
    from hopper.app.backends.postgres import PostgresBackend
    from hopper.app.backends.sqlite import SqliteBackend

    drop = None
    if postgres:
        url, drop = _postgres_database(postgres)
        backend = PostgresBackend(url)
    else:
        backend = SqliteBackend(
            f"sqlite:///{folder / ('on' if triggers else 'off')}-{time.time_ns()}.db", durability)
    backend.migrate()
    if not triggers:
        for name in PG_TRIGGERS if postgres else TRIGGERS:
            backend._conn().execute(f"DROP TRIGGER {name}" + (" ON tasks" if postgres else ""))
    # SQLite runs inside this process: its CPU time is the cost, and unlike wall
    # time it does not grow when other jobs load the machine. PostgreSQL's work is
    # in the server, so it is timed by the wall clock.
    clock = time.perf_counter if postgres else time.process_time
    start = clock()
    for low in range(0, n, 500):
        backend.enqueue([NewTask(name="echo", args={"i": i})
                         for i in range(low, min(n, low + 500))])
    enqueued = clock()
    done, claimed = 0, []
    while done < n:
        now = time.time()
        outcomes = [Outcome(c.id, True, now, now, "null") for c in claimed]
        done += len(outcomes)
        claimed = backend.finish_and_claim("bench:1-0", outcomes, [], 10 if done < n else 0, 30)
    drained = clock()
    backend.close()
    if drop is not None:
        drop()
    return n / (enqueued - start), n / (drained - enqueued)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--durability", default="normal", choices=("full", "normal"))
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to run on instead")
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="hopper-counters-") as tmp:
        for _ in range(args.runs):
            for triggers in (False, True):
                results[triggers].append(
                    one_run(Path(tmp), args.n, args.durability, triggers, args.postgres))
    engine = "PostgreSQL" if args.postgres else f"SQLite, durability {args.durability}"
    print(f"| counting triggers ({engine}, n={args.n}, median of {args.runs}) "
          "| enqueue tasks/s | claim+finish tasks/s |")
    print("|---|---:|---:|")
    for triggers in (False, True):
        enq = statistics.median(r[0] for r in results[triggers])
        drain = statistics.median(r[1] for r in results[triggers])
        print(f"| {'with' if triggers else 'without'} | {enq:,.0f} | {drain:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
