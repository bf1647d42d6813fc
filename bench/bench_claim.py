#!/usr/bin/env python3
"""Claim rate with a deep paused queue vs an empty database.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/bench_claim.py                       # SQLite
    .venv/bin/python bench/bench_claim.py --engine postgres     # PostgreSQL (HOPPER_BENCH_PG_URL)

Two databases: ``empty`` and ``paused``, the second holding ``--backlog`` tasks
(1,000,000 by default) in a queue ``bulk`` that is paused. The bulk tasks have a
higher priority and an earlier ``run_after`` than anything else, so a claim that
walked one index over every queue would meet all of them first. Each round puts
``--per-round`` ``default`` tasks in a database (``enqueue_many``, untimed), then
claims and completes them the way a worker does (``finish_and_claim``, 64 per
transaction, the previous batch's outcomes recorded in the same transaction) and
times that. Rounds alternate between the databases so machine noise hits both
alike; the medians and their ratio (paused / empty) are printed and, with
``--json``, written. The same is done for a queue that is not paused but that
the claiming daemon excludes (``worker`` without ``--queues library``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from hopper.app.backends.base import Outcome, QueueFilter  # noqa: E402  (importable once sys.path is set above)

BATCH = 64
PG_ADMIN = os.environ.get("HOPPER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
_FILL = {
    "sqlite": ("WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < ?)"
               " INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts,"
               " created_at) SELECT ?, 'echo', json_object('i', x), 10, ? - 3600, 3, ? FROM n"),
    "postgres": ("INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts,"
                 " created_at) SELECT %s, 'echo', json_build_object('i', x)::text, 10,"
                 " %s - 3600, 3, %s FROM generate_series(1, %s) AS x"),
}


def _database(engine: str, folder: str, dbs: list) -> str:
    if engine == "sqlite":
        return f"sqlite:///{folder}/hopper.db"
    import psycopg

    name = f"hopper_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dbs.append(name)
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def teardown(clients: dict, tmp: str, dbs: list) -> None:
    """Close the clients, remove the temp folder and drop the PostgreSQL databases."""
    for client in clients.values():
        client.backend.close()
    shutil.rmtree(tmp, ignore_errors=True)
    if dbs:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            for name in dbs:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup(engine: str, tmp: str, label: str, queue: str | None, backlog: int, dbs: list,
          durability: str = "full"):
    """A database (migrated) with ``backlog`` tasks in ``queue`` (none when None)."""
    from hopper.app import queue as queue_mod
    from hopper.app import settings as settings_mod

    folder = os.path.join(tmp, label)
    os.makedirs(folder)
    path = os.path.join(folder, "settings.yaml")
    with open(path, "w") as f:
        f.write(f"database: {_database(engine, folder, dbs)}\nworkers: 2\n"
                f"durability: {durability}\n")
    client = queue_mod.configure(settings_mod.load(path))
    if queue is not None:
        backend, now = client.backend, time.time()
        t0 = time.perf_counter()
        with backend.transaction() as conn:
            if engine == "sqlite":
                conn.execute(_FILL[engine], (backlog, queue, now, now))
            else:
                conn.execute(_FILL[engine], (queue, now, now, backlog))
        print(f"[claim] {label}: {backlog:,} tasks in {queue!r} in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return client


def measure(client, per_round: int, queues: QueueFilter | None) -> float:
    """Enqueue ``per_round`` default tasks (untimed), then claim and complete them."""
    from hopper.app import queue as queue_mod

    queue_mod._client = client  # enqueue_many writes to the database being measured
    queue_mod.enqueue_many([{"name": "echo", "args": {"k": k}} for k in range(per_round)])
    backend, pending, left = client.backend, [], per_round
    t0 = time.perf_counter()
    while left > 0 or pending:
        claimed = backend.finish_and_claim("bench:claim", pending, [], min(BATCH, left), 30,
                                           queues)
        left -= len(claimed)
        now = time.time()
        pending = [Outcome(t.id, True, now, now, result="null") for t in claimed]
        if not claimed and left > 0:
            raise RuntimeError("ran out of tasks before the round was done")
    return per_round / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--backlog", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--durability", choices=["full", "normal"], default="full",
                    help="SQLite: full syncs every commit (disk noise dominates on a shared "
                         "machine); normal shows the CPU cost of the claim itself")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp, dbs = tempfile.mkdtemp(prefix="hopper-claim-"), []
    try:
        clients = {"empty": setup(a.engine, tmp, "empty", None, 0, dbs, a.durability),
                   "paused": setup(a.engine, tmp, "paused", "bulk", a.backlog, dbs, a.durability),
                   "excluded": setup(a.engine, tmp, "excluded", "library", a.backlog, dbs,
                                     a.durability)}
        clients["paused"].backend.pause_queue("bulk")
        # ``worker`` without --queues: the library queue is excluded, not paused.
        filters = {"empty": None, "paused": None,
                   "excluded": QueueFilter(caps={"library": 0})}
        rates: dict[str, list[float]] = {k: [] for k in clients}
        measure(clients["empty"], 200, None)  # warm-up: imports, statement caches
        for _ in range(a.rounds):
            for label, client in clients.items():
                rates[label].append(measure(client, a.per_round, filters[label]))
        out = {"engine": a.engine, "durability": a.durability, "backlog": a.backlog,
               "batch": BATCH,
               "per_round": a.per_round, "rounds": a.rounds}
        for label in clients:
            out[label] = {"per_s": round(statistics.median(rates[label])),
                          "best_per_s": round(max(rates[label])),
                          "runs": [round(r) for r in rates[label]]}
            print(f"[claim] {a.engine} {label}: {out[label]['per_s']:,} claims/s median, "
                  f"{out[label]['best_per_s']:,} best of {a.rounds}", file=sys.stderr)
        for label in ("paused", "excluded"):
            out[f"ratio_{label}"] = round(out[label]["per_s"] / out["empty"]["per_s"], 3)
            out[f"ratio_{label}_best"] = round(out[label]["best_per_s"]
                                               / out["empty"]["best_per_s"], 3)
            print(f"[claim] ratio {label}/empty: median {out[f'ratio_{label}']}, "
                  f"best {out[f'ratio_{label}_best']}", file=sys.stderr)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=2)
        print(json.dumps(out))
    finally:
        teardown(clients if "clients" in locals() else {}, tmp, dbs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
