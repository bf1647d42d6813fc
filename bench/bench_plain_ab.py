#!/usr/bin/env python3
"""The ordinary claim (tasks without keys) of two checkouts, side by side.

Usage (from the repository root, with the project's virtualenv):

    git archive <base-commit> | tar -x -C /tmp/base
    .venv/bin/python bench/bench_plain_ab.py /tmp/base . [--engine postgres] [--rounds 8]

Each round runs, for each checkout in turn, a fresh process that migrates a fresh
database with that checkout's code, enqueues 2,000 plain tasks (untimed) and claims
and completes them as a worker does (``finish_and_claim``, 64 per transaction),
three times, keeping the best. Medians per checkout and their ratio (second /
first) are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, sys, tempfile, time, uuid
sys.path.insert(0, os.getcwd())
from hopper.app import queue, settings
from hopper.app.backends.base import Outcome
engine, n = sys.argv[1], int(sys.argv[2])
folder = tempfile.mkdtemp()
url, name = f"sqlite:///{folder}/h.db", None
if engine == "postgres":
    import psycopg
    name = f"hopper_ab_{uuid.uuid4().hex[:10]}"
    admin = os.environ.get("HOPPER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with psycopg.connect(admin, autocommit=True) as a:
        a.execute(f"CREATE DATABASE {name}")
    url = admin.rsplit("/", 1)[0] + "/" + name
path = os.path.join(folder, "settings.yaml")
open(path, "w").write(f"database: {url}\ndurability: normal\n")
client = queue.configure(settings.load(path))
best = 0.0
try:
    for _ in range(3):
        queue.enqueue_many([{"name": "echo", "args": {"k": k}} for k in range(n)])
        backend, pending, left = client.backend, [], n
        t0 = time.perf_counter()
        while left > 0 or pending:
            claimed = backend.finish_and_claim("ab", pending, [], min(64, left), 30)
            left -= len(claimed)
            now = time.time()
            pending = [Outcome(t.id, True, now, now, result="null") for t in claimed]
        best = max(best, n / (time.perf_counter() - t0))
finally:
    client.backend.close()
    if name:
        with psycopg.connect(admin, autocommit=True) as a:
            a.execute(f"DROP DATABASE {name} WITH (FORCE)")
print(json.dumps(best))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--per-round", type=int, default=2000)
    a = ap.parse_args()
    rates: dict[str, list[float]] = {a.first: [], a.second: []}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(CHILD)
    try:
        for _ in range(a.rounds):
            for tree in (a.first, a.second):
                out = subprocess.run([sys.executable, f.name, a.engine, str(a.per_round)],
                                     cwd=os.path.abspath(tree), capture_output=True, text=True,
                                     check=True)
                rates[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        os.unlink(f.name)
    medians = {tree: statistics.median(values) for tree, values in rates.items()}
    result = {"engine": a.engine, "rounds": a.rounds,
              "first": {"tree": a.first, "per_s": round(medians[a.first]),
                        "runs": [round(v) for v in rates[a.first]]},
              "second": {"tree": a.second, "per_s": round(medians[a.second]),
                         "runs": [round(v) for v in rates[a.second]]},
              "ratio_second_first": round(medians[a.second] / medians[a.first], 3)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
