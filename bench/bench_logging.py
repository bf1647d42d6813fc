#!/usr/bin/env python3
"""What a task-event log line costs the worker: ``started`` + ``succeeded`` per task.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/bench_logging.py

Calls ``logs.task_event`` the way the worker loop does, 100,000 times, with logs
going to /dev/null, for each format at level warning (events off: the default
cost) and debug (every event written).
"""
from __future__ import annotations

import os
import sys
import time

from hopper.app import logs

N = 100_000


def main() -> None:
    out = sys.stdout
    sys.stderr = open(os.devnull, "w")  # the handler writes to stderr, as in the daemon
    for fmt in logs.FORMATS:
        for level in ("warning", "debug"):
            logs.configure(fmt, level)
            started = time.perf_counter()
            for i in range(N):
                logs.task_event("started", i, "echo", "default", "host:1-ab", 1)
                logs.task_event("succeeded", i, "echo", "default", "host:1-ab", 1, 0.0001)
            per_task = (time.perf_counter() - started) / N * 1e6
            print(f"{fmt:5} level {level:8} {per_task:6.2f} us per task", file=out)


if __name__ == "__main__":
    main()
