#!/usr/bin/env python3
"""The machine's floor under a cold pickup: how long a process blocked on a pipe takes
to run again when written to, after the machine sat idle.

Usage (from the repository root):

    .venv/bin/python bench/bench_wake.py [--idle 5] [--n 3] [--json OUT]

A cold pickup (``bench_hopper.py``: one task enqueued after 5 s with nothing to do)
wakes at least one idle process, the worker; on PostgreSQL also the server processes
of the enqueue and of the worker's claim. On a virtual machine an idle vCPU is halted
and the hypervisor takes a while to run it again, so the same code picks up in 1 ms
on one machine and 4 ms on another. This measures that one wake-up, no queue involved:
a parent sleeps ``--idle`` seconds, writes a byte to a child blocked in ``read()``, and
the child answers with the time it ran. Warm (20 ms apart) for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def wake_ups(idle_s: float, n: int) -> list[float]:
    """Milliseconds from a write to the blocked child's first line after it, ``n`` times,
    each after ``idle_s`` seconds with nothing running."""
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(parent_writes)
        os.close(parent_reads)
        while os.read(child_reads, 1):
            os.write(child_writes, repr(time.time()).encode().ljust(32))
        os._exit(0)
    os.close(child_reads)
    os.close(child_writes)
    samples = []
    try:
        for _ in range(n):
            time.sleep(idle_s)
            sent = time.time()
            os.write(parent_writes, b"x")
            woke = float(os.read(parent_reads, 32))
            samples.append(round((woke - sent) * 1e3, 3))
    finally:
        os.close(parent_writes)
        os.waitpid(pid, 0)
    return samples


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    cold = wake_ups(a.idle, a.n)
    warm = wake_ups(0.02, 50)
    out = {"idle_s": a.idle, "cold_ms": cold, "cold_median_ms": statistics.median(cold),
           "warm_median_ms": statistics.median(warm)}
    print(f"[wake] one wake-up after {a.idle:g} s idle: {cold} ms (median "
          f"{out['cold_median_ms']}); warm median {out['warm_median_ms']} ms", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
