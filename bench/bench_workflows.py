#!/usr/bin/env python3
"""Workflows: enqueueing a 1,000-node DAG in one call, and the claim rate beside
100,000 blocked tasks.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/bench_workflows.py                       # SQLite
    .venv/bin/python bench/bench_workflows.py --engine postgres     # PostgreSQL
    (PostgreSQL from HOPPER_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test)

DAG: a seeded random graph of ``--nodes`` items (each depends on up to three
earlier ones through refs, listed in shuffled order) enqueued with one
``enqueue_many``; the reference in the same run is ``enqueue_many`` of as many
plain tasks. Rounds alternate between the two; medians and their ratio are printed.

Claims: two databases, ``none`` and ``blocked``; the second holds ``--blocked``
tasks (100,000 by default) in the claimed queue ``default``, blocked on a task
of a paused queue, with a higher priority and an earlier ``run_after`` than the
tasks claimed, so a claim that met them in its index would read them first.
Each round enqueues ``--per-round`` tasks (untimed), then claims and completes
them the way a worker does (``finish_and_claim``, 64 per transaction, outcomes
recorded in the same transaction, which also looks for dependents to release),
alternating between the databases; the medians and their ratio (blocked / none).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_claim import measure, setup, teardown  # noqa: E402

from hopper.app.backends.base import Outcome  # noqa: E402

_BLOCK = {
    "sqlite": ("WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < ?)"
               " INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts,"
               " created_at, status, depends_on) SELECT 'default', 'echo', json_object('i', x),"
               " 10, ? - 3600, 3, ?, 'blocked', ? FROM n"),
    "postgres": ("INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts,"
                 " created_at, status, depends_on) SELECT 'default', 'echo',"
                 " json_build_object('i', x)::text, 10, %s - 3600, 3, %s, 'blocked', %s"
                 " FROM generate_series(1, %s) AS x"),
}


def dag(nodes: int, seed: int = 19) -> list[dict]:
    rng = random.Random(seed)
    items = [{"name": "echo", "ref": f"n{i}", "args": {"i": i},
              "depends_on": [f"n{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))]}
             for i in range(nodes)]
    rng.shuffle(items)
    return items


def bench_dag(client, nodes: int, rounds: int) -> dict:
    from hopper.app import queue as queue_mod

    queue_mod._client = client
    graph = dag(nodes)
    plain = [{"name": "echo", "args": {"i": i}} for i in range(nodes)]
    took: dict[str, list[float]] = {"dag": [], "plain": []}
    queue_mod.enqueue_many(plain[:50])  # warm-up
    for _ in range(rounds):
        for label, items in (("dag", graph), ("plain", plain)):
            t0 = time.perf_counter()
            queue_mod.enqueue_many(items)
            took[label].append(time.perf_counter() - t0)
    out = {label: {"median_s": round(statistics.median(v), 4), "best_s": round(min(v), 4)}
           for label, v in took.items()}
    out["ratio"] = round(out["dag"]["median_s"] / out["plain"]["median_s"], 2)
    return out


def fill_blocked(engine: str, client, count: int) -> None:
    """``count`` blocked tasks in ``default``, all waiting for one task in a paused queue."""
    from hopper.app import queue as queue_mod

    queue_mod._client = client
    client.backend.pause_queue("hold")
    holder = queue_mod.enqueue("echo", queue="hold")
    now, deps = time.time(), json.dumps([holder])
    t0 = time.perf_counter()
    with client.backend.transaction() as conn:
        if engine == "sqlite":
            conn.execute(_BLOCK[engine], (count, now, now, deps))
            conn.execute("INSERT INTO task_deps (depends_on, task_id)"
                         " SELECT ?, id FROM tasks WHERE status = 'blocked'", (holder,))
        else:
            conn.execute(_BLOCK[engine], (now, now, deps, count))
            conn.execute("INSERT INTO task_deps (depends_on, task_id)"
                         " SELECT %s, id FROM tasks WHERE status = 'blocked'", (holder,))
    print(f"[workflows] {count:,} blocked tasks in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)


def measure_cpu(client, per_round: int) -> tuple[float, float]:
    """Like bench_claim.measure, timed by the wall clock and by this process's CPU time
    (on SQLite the whole claim runs in this process, and CPU time is far less
    disturbed by the other programs of a shared machine)."""
    from hopper.app import queue as queue_mod

    queue_mod._client = client
    queue_mod.enqueue_many([{"name": "echo", "args": {"k": k}} for k in range(per_round)])
    backend, pending, left = client.backend, [], per_round
    wall, cpu = time.perf_counter(), time.process_time()
    while left > 0 or pending:
        claimed = backend.finish_and_claim("bench:claim", pending, [], min(64, left), 30)
        left -= len(claimed)
        now = time.time()
        pending = [Outcome(t.id, True, now, now, result="null") for t in claimed]
        if not claimed and left > 0:
            raise RuntimeError("ran out of tasks before the round was done")
    return (per_round / (time.perf_counter() - wall),
            per_round / max(time.process_time() - cpu, 1e-9))


def hook_cost(a) -> int:
    """Claims with and without ``_dependencies_done`` (the one read per finished batch
    that looks for dependents), alternating rounds in one database."""
    from hopper.app.backends.dependencies import TaskDependencies

    tmp, dbs = tempfile.mkdtemp(prefix="hopper-workflows-"), []
    real = TaskDependencies._dependencies_done
    try:
        client = setup(a.engine, tmp, "hook", None, 0, dbs, a.durability)
        measure_cpu(client, 200)
        rates: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
        for _ in range(a.rounds):
            for label in rates:
                TaskDependencies._dependencies_done = (
                    real if label == "with" else lambda self, conn, finals: None)
                rates[label].append(measure_cpu(client, a.per_round))
        TaskDependencies._dependencies_done = real
        out = {"engine": a.engine, "rounds": a.rounds, "per_round": a.per_round}
        for label, runs in rates.items():
            out[label] = {"per_s": round(statistics.median(r[0] for r in runs)),
                          "per_cpu_s": round(statistics.median(r[1] for r in runs))}
        out["ratio"] = round(out["with"]["per_s"] / out["without"]["per_s"], 3)
        out["ratio_cpu"] = round(out["with"]["per_cpu_s"] / out["without"]["per_cpu_s"], 3)
        print(json.dumps(out))
        client.backend.close()
    finally:
        TaskDependencies._dependencies_done = real
        teardown({}, tmp, dbs)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--dag-rounds", type=int, default=7)
    ap.add_argument("--blocked", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--durability", choices=["full", "normal"], default="normal",
                    help="SQLite: normal shows the CPU cost of the claim, not disk noise")
    ap.add_argument("--hook-cost", action="store_true",
                    help="only compare claims with the dependency check after each finish"
                         " against the same claims with it switched off (the engine before"
                         " dependencies), alternating, in one database without any")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.hook_cost:
        return hook_cost(a)
    tmp, dbs, clients = tempfile.mkdtemp(prefix="hopper-workflows-"), [], {}
    try:
        clients = {"none": setup(a.engine, tmp, "none", None, 0, dbs, a.durability),
                   "blocked": setup(a.engine, tmp, "blocked", None, 0, dbs, a.durability),
                   "dag": setup(a.engine, tmp, "dag", None, 0, dbs, a.durability)}
        out: dict = {"engine": a.engine, "durability": a.durability, "nodes": a.nodes,
                     "blocked_tasks": a.blocked, "per_round": a.per_round, "rounds": a.rounds}
        out["enqueue"] = bench_dag(clients["dag"], a.nodes, a.dag_rounds)
        print(f"[workflows] {a.engine} enqueue of a {a.nodes}-node DAG: "
              f"{out['enqueue']['dag']['median_s'] * 1000:.0f} ms median; {a.nodes} plain"
              f" tasks {out['enqueue']['plain']['median_s'] * 1000:.0f} ms"
              f" (ratio {out['enqueue']['ratio']})", file=sys.stderr)
        fill_blocked(a.engine, clients["blocked"], a.blocked)
        rates: dict[str, list[float]] = {"none": [], "blocked": []}
        cpu_rates: dict[str, list[float]] = {"none": [], "blocked": []}
        measure(clients["none"], 200, None)  # warm-up: imports, statement caches
        measure(clients["blocked"], 200, None)
        for _ in range(a.rounds):
            for label in rates:
                wall, cpu = measure_cpu(clients[label], a.per_round)
                rates[label].append(wall)
                cpu_rates[label].append(cpu)
        for label, runs in rates.items():
            out[label] = {"per_s": round(statistics.median(runs)), "best_per_s": round(max(runs)),
                          "per_cpu_s": round(statistics.median(cpu_rates[label])),
                          "runs": [round(r) for r in runs]}
            print(f"[workflows] {a.engine} claims beside {label}: {out[label]['per_s']:,}/s"
                  f" median, {out[label]['best_per_s']:,} best;"
                  f" {out[label]['per_cpu_s']:,} per CPU second of this process (median)",
                  file=sys.stderr)
        out["ratio_blocked_cpu"] = round(out["blocked"]["per_cpu_s"] / out["none"]["per_cpu_s"], 3)
        ready = clients["blocked"].backend.fetch(
            "SELECT count(*) FROM tasks WHERE status = 'queued'")[0][0]
        out["queued_rows_beside_blocked"] = ready  # what the ready index holds: no blocked task
        print(f"[workflows] ratio blocked/none per CPU second: {out['ratio_blocked_cpu']};"
              f" queued rows (the ready index) in the blocked database after the rounds:"
              f" {ready}", file=sys.stderr)
        out["ratio_blocked"] = round(out["blocked"]["per_s"] / out["none"]["per_s"], 3)
        out["ratio_blocked_best"] = round(out["blocked"]["best_per_s"]
                                          / out["none"]["best_per_s"], 3)
        print(f"[workflows] ratio blocked/none: median {out['ratio_blocked']},"
              f" best {out['ratio_blocked_best']}", file=sys.stderr)
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=2))
        print(json.dumps(out))
    finally:
        teardown(clients, tmp, dbs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
