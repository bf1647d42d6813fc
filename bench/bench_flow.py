#!/usr/bin/env python3
"""Flow control's cost in the claim: keyed tasks against plain ones, and a deep
backlog under one key against none.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/bench_flow.py                       # SQLite
    .venv/bin/python bench/bench_flow.py --engine postgres     # PostgreSQL (HOPPER_BENCH_PG_URL)

1. ``limits``: two databases. Each round enqueues ``--per-round`` tasks (untimed)
   and claims and completes them the way a worker does (``finish_and_claim``, 64
   per transaction, outcomes recorded in the next one) and times that: in
   ``plain`` the tasks have no key; in ``keyed`` each has one of ``--keys`` (1,000)
   concurrency keys with limit 1. Ratio keyed / plain (target: at least 0.7).
2. ``backlog``: two databases, one holding ``--backlog`` (10,000) queued tasks
   under the key ``user:3`` (limit 1, one of them running, so the rest wait).
   Each round claims and completes ``--other`` (500) tasks of another key (limit
   500) in one, and ordinary tasks of another queue in the other measure.
   Ratio with backlog / without (target: at least 0.8, i.e. under 20 % slower).

Rounds alternate between the databases so machine noise hits both alike; the
medians and their ratios are printed and, with ``--json``, written.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from bench_claim import setup, teardown  # noqa: E402

from hopper.app.backends.base import Outcome  # noqa: E402

BATCH = 64


def _enqueue(client, items: list[dict]) -> None:
    from hopper.app import queue as queue_mod

    queue_mod._client = client  # enqueue_many writes to the database being measured
    for start in range(0, len(items), 1000):
        queue_mod.enqueue_many(items[start:start + 1000])


def drain(client, n: int, worker: str = "bench:flow") -> float:
    """Claim and complete ``n`` ready tasks like a worker; tasks per second."""
    backend, pending, left = client.backend, [], n
    t0 = time.perf_counter()
    while left > 0 or pending:
        claimed = backend.finish_and_claim(worker, pending, [], min(BATCH, left), 30)
        left -= len(claimed)
        now = time.time()
        pending = [Outcome(t.id, True, now, now, result="null") for t in claimed]
        if not claimed and left > 0:
            raise RuntimeError(f"ran out of claimable tasks with {left} left")
    return n / (time.perf_counter() - t0)


def _median(values: list[float]) -> int:
    return round(statistics.median(values))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--backlog", type=int, default=10_000)
    ap.add_argument("--other", type=int, default=500)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp, dbs, clients = tempfile.mkdtemp(prefix="hopper-flow-"), [], {}
    try:
        for label in ("plain", "keyed", "clean", "backlog"):
            clients[label] = setup(a.engine, tmp, label, None, 0, dbs, "normal")
        _enqueue(clients["backlog"], [{"name": "echo", "concurrency_key": "user:3"}
                                      for _ in range(a.backlog)])
        held = clients["backlog"].backend.finish_and_claim("bench:holder", [], [], 1, 3600)
        assert len(held) == 1  # user:3's one slot is taken: the backlog waits behind it
        rates: dict[str, list[float]] = {k: [] for k in
                                         ("plain", "keyed", "clean_key", "backlog_key",
                                          "clean_queue", "backlog_queue")}
        _enqueue(clients["plain"], [{"name": "echo"} for _ in range(200)])
        drain(clients["plain"], 200)  # warm-up: imports, statement caches
        for _ in range(a.rounds):
            _enqueue(clients["plain"], [{"name": "echo"} for _ in range(a.per_round)])
            rates["plain"].append(drain(clients["plain"], a.per_round))
            _enqueue(clients["keyed"], [{"name": "echo", "concurrency_key": f"user:{i % a.keys}"}
                                        for i in range(a.per_round)])
            rates["keyed"].append(drain(clients["keyed"], a.per_round))
            for label in ("clean", "backlog"):
                other = [{"name": "echo", "concurrency_key": "user:4", "concurrency": a.other}
                         for _ in range(a.other)]
                _enqueue(clients[label], other)
                rates[f"{label}_key"].append(drain(clients[label], a.other))
                _enqueue(clients[label], [{"name": "echo", "queue": "other"}
                                          for _ in range(a.other)])
                rates[f"{label}_queue"].append(drain(clients[label], a.other))
        out = {"engine": a.engine, "rounds": a.rounds, "per_round": a.per_round,
               "keys": a.keys, "backlog": a.backlog, "other": a.other, "batch": BATCH}
        for label, values in rates.items():
            out[label] = {"per_s": _median(values), "runs": [round(v) for v in values]}
        out["ratio_keyed_plain"] = round(out["keyed"]["per_s"] / out["plain"]["per_s"], 3)
        out["ratio_backlog_other_key"] = round(out["backlog_key"]["per_s"]
                                               / out["clean_key"]["per_s"], 3)
        out["ratio_backlog_other_queue"] = round(out["backlog_queue"]["per_s"]
                                                 / out["clean_queue"]["per_s"], 3)
        for key in ("ratio_keyed_plain", "ratio_backlog_other_key", "ratio_backlog_other_queue"):
            print(f"[flow] {a.engine} {key}: {out[key]}", file=sys.stderr)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=2)
        print(json.dumps(out))
    finally:
        teardown(clients, tmp, dbs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
