#!/usr/bin/env python3
"""What the counting triggers cost the queue's hot path, measured in one process.

Runs the same work on a fresh SQLite database with the counting triggers
(migration 0008) and without them (dropped after migrating), alternating
``--runs`` times so that drift in the machine's load hits both alike:
enqueue ``--n`` tasks in batches of 500, then claim and finish them in
batches of 10 through ``finish_and_claim`` (the worker loop's group commit).

    python bench/bench_counters.py [--n 20000] [--runs 3] [--durability normal]
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


def one_run(folder: Path, n: int, durability: str, triggers: bool) -> tuple[float, float]:
    from hopper.app.backends.base import NewTask, Outcome
    from hopper.app.backends.sqlite import SqliteBackend

    backend = SqliteBackend(f"sqlite:///{folder / ('on' if triggers else 'off')}-{time.time_ns()}.db",
                            durability)
    backend.migrate()
    if not triggers:
        for name in TRIGGERS:
            backend._conn().execute(f"DROP TRIGGER {name}")
    start = time.perf_counter()
    for low in range(0, n, 500):
        backend.enqueue([NewTask(name="echo", args={"i": i}) for i in range(low, min(n, low + 500))])
    enqueued = time.perf_counter()
    done, claimed = 0, []
    while done < n:
        now = time.time()
        outcomes = [Outcome(c.id, True, now, now, "null") for c in claimed]
        done += len(outcomes)
        claimed = backend.finish_and_claim("bench:1-0", outcomes, [], 10 if done < n else 0, 30)
    drained = time.perf_counter()
    backend.close()
    return n / (enqueued - start), n / (drained - enqueued)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--durability", default="normal", choices=("full", "normal"))
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="hopper-counters-") as tmp:
        for _ in range(args.runs):
            for triggers in (False, True):
                results[triggers].append(one_run(Path(tmp), args.n, args.durability, triggers))
    print(f"| counting triggers (n={args.n}, durability {args.durability}, median of {args.runs}) "
          "| enqueue tasks/s | claim+finish tasks/s |")
    print("|---|---:|---:|")
    for triggers in (False, True):
        enq = statistics.median(r[0] for r in results[triggers])
        drain = statistics.median(r[1] for r in results[triggers])
        print(f"| {'with' if triggers else 'without'} | {enq:,.0f} | {drain:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
