#!/usr/bin/env python3
"""Single enqueue at equal durability, Hopper vs SqliteHuey, interleaved.

A single enqueue at ``durability: full`` (and SqliteHuey's default,
``synchronous=FULL`` in WAL mode) waits for one fsync of the write-ahead log,
and on a shared disk the fsync time swings by 10x within minutes: two rates
measured minutes apart compare the disk's moods, not the queues. Here the two
alternate in short bursts (ROUNDS rounds of BURST enqueues each, a fresh
database per burst, each in its own process), and the ratio is taken per round.

    python bench/bench_enqueue_ab.py [--rounds 6] [--burst 2000] [--json OUT]

The huey side runs with the peer harness's virtual environment (PEER_VENV,
default /tmp/peervenv), the Hopper side with this interpreter.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HUEY = """
import sys, tempfile, time
from huey import SqliteHuey
huey = SqliteHuey(filename=tempfile.mkdtemp() + "/huey.db")
@huey.task()
def noop(idx, enq_ts, tag):
    pass
for i in range(50):
    noop(i, None, "warm")
n = int(sys.argv[1]); t = time.perf_counter()
for i in range(n):
    noop(i, None, "drain")
print(n / (time.perf_counter() - t))
"""

HOPPER = """
import os, sys, tempfile, time
d = tempfile.mkdtemp()
open(d + "/settings.yaml", "w").write("database: sqlite:///h.db\\ndurability: full\\n")
os.environ["HOPPER_CONFIG"] = d + "/settings.yaml"
from hopper.app import queue
queue.configure()
for i in range(50):
    queue.enqueue("echo", {"idx": i, "enq_ts": None, "tag": "warm"})
n = int(sys.argv[1]); t = time.perf_counter()
for i in range(n):
    queue.enqueue("echo", {"idx": i, "enq_ts": None, "tag": "drain"})
print(n / (time.perf_counter() - t))
"""


def burst(python: str, code: str, n: int) -> float:
    """Enqueues per second of one burst in a fresh process and database."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([python, "-c", code, str(n)], cwd=tmp, capture_output=True,
                             text=True, timeout=600, env={**os.environ, "TMPDIR": tmp})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    """Alternate huey and Hopper bursts; print and optionally write the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--json")
    a = ap.parse_args()
    huey_py = os.path.join(os.environ.get("PEER_VENV", "/tmp/peervenv"), "bin", "python")
    rounds = []
    for k in range(a.rounds):
        # Alternate which goes first, so a drift within a round hits both alike.
        order = [("huey", huey_py, HUEY), ("hopper", sys.executable, HOPPER)]
        if k % 2:
            order.reverse()
        rates = {name: burst(py, code, a.burst) for name, py, code in order}
        rates["ratio"] = rates["hopper"] / rates["huey"]
        rounds.append(rates)
        print(f"round {k + 1}: hopper {rates['hopper']:,.0f}/s  huey {rates['huey']:,.0f}/s"
              f"  ratio {rates['ratio']:.2f}", file=sys.stderr, flush=True)
    out = {"rounds": rounds, "burst": a.burst,
           "ratio_median": round(statistics.median(r["ratio"] for r in rounds), 3),
           "hopper_median": round(statistics.median(r["hopper"] for r in rounds), 1),
           "huey_median": round(statistics.median(r["huey"] for r in rounds), 1)}
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
