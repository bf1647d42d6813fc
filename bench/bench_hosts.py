"""Several hosts on one PostgreSQL: 1, 2 and 3 simulated hosts (network namespaces,
see tests/hosts/netlab.py) x 2 workers each, drain throughput and pickup latency.

Run as root from the repository root: ``.venv/bin/python bench/bench_hosts.py [--n 20000]``.
Every host shares this machine's cores with the others and with the server, so on a
small machine the ratio shows the cost of coordination, not added capacity.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "hosts"), str(REPO / "tests")]

import netlab  # noqa: E402
import psycopg  # noqa: E402
import yaml  # noqa: E402

from hopper.app import queue  # noqa: E402
from hopper.app import settings as settings_mod  # noqa: E402


def _rows(url: str, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


def _execute(url: str, statement: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.05)


def measure(hosts: int, n: int, pickups: int) -> dict:
    """One fresh lab with ``hosts`` hosts: drain ``n`` no-op tasks, then pickup latency."""
    lab = netlab.Lab()
    try:
        url = lab.start_postgres()
        daemons = []
        for i in range(hosts):
            host = lab.add_host(f"h{i + 1}")
            settings = lab.settings(host, url, lease="30s")
            daemons.append(netlab.Daemon(host, settings, "worker",
                                         env={"HOPPER_LAB_RUNS": str(host.folder / "runs")}))
            _wait(lambda h=host: _rows(url, "SELECT count(*) FROM workers WHERE host = %s",
                                       (h.name,))[0][0] >= 2 if _schema(url) else False,
                  60, f"{host.name} workers")
        client = lab.folder / "client.yaml"
        client.write_text(yaml.safe_dump({"database": url, "tasks": {"modules": ["lab_tasks"]}}))
        queue.configure(settings_mod.load(client))
        queue.enqueue_many([{"name": "lab.noop"} for _ in range(n)])
        started = time.perf_counter()
        _wait(lambda: _rows(url, "SELECT count(*) FROM tasks WHERE status = 'succeeded'")[0][0]
              >= n, 600, "drain")
        drain_s = time.perf_counter() - started
        _execute(url, "DELETE FROM tasks")
        time.sleep(2)  # idle workers: the pickup measure starts from idle
        ids = []
        for _ in range(pickups):
            ids.append(queue.enqueue("lab.noop"))
            time.sleep(0.02)
        _wait(lambda: _rows(url, "SELECT count(*) FROM tasks WHERE status = 'succeeded'")[0][0]
              >= pickups, 120, "pickups")
        delays = [r[0] for r in _rows(url, "SELECT started_at - created_at FROM tasks")]
        for daemon in daemons:
            daemon.stop()
        return {"hosts": hosts, "workers": 2 * hosts, "n": n, "drain_s": round(drain_s, 3),
                "tasks_per_s": round(n / drain_s, 1),
                "pickup_p50_ms": round(statistics.median(delays) * 1000, 2),
                "pickup_p95_ms": round(statistics.quantiles(delays, n=20)[18] * 1000, 2)}
    finally:
        lab.close()


def _schema(url: str) -> bool:
    return bool(_rows(url, "SELECT to_regclass('workers') IS NOT NULL")[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--pickups", type=int, default=200)
    args = parser.parse_args()
    reason = netlab.unavailable_reason()
    if reason:
        sys.exit(f"cannot simulate hosts here: {reason}")
    results = [measure(hosts, args.n, args.pickups) for hosts in (1, 2, 3)]
    base = results[0]["tasks_per_s"]
    for row in results:
        row["throughput_vs_1_host"] = round(row["tasks_per_s"] / base, 2)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
