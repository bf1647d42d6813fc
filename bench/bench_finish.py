"""Claim+complete rate of the state machine, in-process, on SQLite and PostgreSQL.

Each round fills a fresh database with ``--tasks`` echo tasks (children of one
parent with ``--children``, so every completion locks and settles through the
tree code), then drains it through ``Backend.finish_and_claim`` in batches of
64, the way a worker's group commit does. Prints tasks/s per engine, median of
``--rounds``. PostgreSQL is at ``HOPPER_TEST_PG_URL`` (default as the tests).

    python bench/bench_finish.py [--tasks 20000] [--rounds 3] [--children]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid

from hopper.app.backends import open_backend
from hopper.app.backends.base import NewTask, Outcome

PG_URL = os.environ.get("HOPPER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def drain_rate(url: str, tasks: int, children: bool) -> float:
    backend = open_backend(url)
    backend.migrate()
    parent = None
    if children:
        (parent, _), = backend.enqueue([NewTask(name="echo", args={})])
        backend.finish_and_claim("bench:parent", [], [], 1, 60)  # running: children may settle it
    for start in range(0, tasks, 1000):
        backend.enqueue([NewTask(name="echo", args={"i": start + i}, parent_id=parent)
                         for i in range(min(1000, tasks - start))])
    pending: list[Outcome] = []
    started = time.perf_counter()
    while True:
        claimed = backend.finish_and_claim("bench:drain", pending, [], 64, 60)
        now = time.time()
        pending = [Outcome(t.id, True, now, now, result="null", parent_id=t.parent_id)
                   for t in claimed]
        if not claimed:
            break
    rate = tasks / (time.perf_counter() - started)
    backend.close()
    return rate


def one_round(engine: str, tasks: int, children: bool) -> float:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            return drain_rate(f"sqlite:///{folder}/bench.db", tasks, children)
    import psycopg

    admin = psycopg.connect(PG_URL, autocommit=True)
    name = f"hopper_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        return drain_rate(PG_URL.rsplit("/", 1)[0] + "/" + name, tasks, children)
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--children", action="store_true",
                        help="all tasks are one parent's children")
    args = parser.parse_args()
    for engine in ("sqlite", "postgres"):
        rates = [one_round(engine, args.tasks, args.children) for _ in range(args.rounds)]
        print(f"{engine:9s} {statistics.median(rates):9.0f} tasks/s "
              f"(rounds: {', '.join(f'{r:.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
