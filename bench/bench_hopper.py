#!/usr/bin/env python3
"""Hopper on the peer benchmark's workload (see ../shared/bench-peers/README.md).

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/bench_hopper.py --json bench/out/hopper.json

Same task body, marker and phases as ``bench_rq.py`` in the peer harness, for
``durability: full`` (the default) and ``durability: normal``:

  (a) enqueue N no-op tasks with single ``enqueue()`` calls, no worker running
  (b) spawn ``python run.py --config <tmp>/settings.yaml worker`` with 2
      workers; drain time = Popen() -> last task's done-marker
  (c) pickup latency: 200 tasks on a 20 ms schedule after a warm-up task and
      0.5 s idle; then cold pickup of single tasks after 5 s idle each
  (x) idle CPU of the worker processes (psutil cpu_times, and the
      nanosecond counters in /proc/<pid>/schedstat) over the first 5 s idle

and once, at the default durability:

  batch enqueue   ``enqueue_many`` in chunks of 1,000 tasks
  claim rate      one process claiming 64 tasks per transaction and recording
                  the previous batch's outcomes in the same transaction (the
                  worker's own ``finish_and_claim``), with 1,000 vs 1,000,000
                  tasks queued

The module doubles as the task module the workers load (``tasks.modules:
[bench_hopper]``), like ``bench_rq`` is for RQ's workers.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS = os.environ.get("PEER_DIR", os.path.join(os.path.dirname(REPO), "shared",
                                                "bench-peers"))
for _p in (PEERS, REPO, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from peer_common import DoneMarker  # noqa: E402  (importable once sys.path is set above)

from hopper.app.registry import task  # noqa: E402  (importable once sys.path is set above)

_marker = DoneMarker(os.environ["PEER_DONE_DB"]) \
    if os.environ.get("PEER_DONE_DB") else None


@task(name="bench.noop", max_attempts=3)
def noop(idx, enq_ts, tag):
    """The job: the peers' no-op, which records its start in the marker file."""
    start = time.time()
    _marker.mark(idx, tag, enq_ts, start)


# ------------------------------------------------------------------ helpers
def write_settings(folder: str, durability: str, workers: int,
                   database: str = "sqlite:///hopper.db") -> str:
    """A settings file for one run (SQLite: the database inside ``folder``)."""
    path = os.path.join(folder, "settings.yaml")
    with open(path, "w") as f:
        f.write(
            f"database: {database}\n"
            f"durability: {durability}\n"
            f"workers: {workers}\n"
            "server: {bind: '127.0.0.1:0'}\n"
            "tasks: {modules: [bench_hopper]}\n"
            "shutdown_grace: 10s\n")
    return path


def bind(settings_path: str):
    """Point this process's queue client at a settings file."""
    from hopper.app import queue
    from hopper.app import settings as settings_mod

    os.environ["HOPPER_CONFIG"] = settings_path
    return queue.configure(settings_mod.load(settings_path))


def schedstat_ns(pid: int) -> int:
    """CPU time of a process in nanoseconds (finer than psutil's 10 ms ticks)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total


def cpu_snapshot(pids: list[int]) -> dict[int, tuple[float, int]]:
    """psutil user+system seconds and schedstat ns per pid."""
    import psutil

    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = (t.user + t.system, schedstat_ns(pid))
        except psutil.Error:
            continue
    return out


# ------------------------------------------------------------------ one run
def run_mode(durability: str, workers: int, n: int, lat_n: int, gap: float,
             cold_n: int, cold_idle: float, tmp: str, drain_cap: float,
             engine: str = "sqlite", full: bool = True) -> dict:
    """Phases (a), (b), (c), (x) for one durability setting and worker count.

    On PostgreSQL each run gets a fresh database. Without ``full`` only the
    drain is measured: the queue is filled with ``enqueue_many`` (untimed).
    """
    from peer_common import log, stop_tree, wait_drain

    folder = os.path.join(tmp, f"{engine}-{durability}-{workers}")
    os.makedirs(folder)
    pg_db = None
    database = "sqlite:///hopper.db"
    if engine == "postgres":
        import pg_common

        pg_db, database = pg_common.fresh_database("hopperbench")
    settings_path = write_settings(folder, durability, workers, database)
    done = os.path.join(folder, "done.db")
    DoneMarker(done).create()
    marker = DoneMarker(done)
    client = bind(settings_path)
    from hopper.app.queue import enqueue, enqueue_many

    tag = f"{engine}/{durability} x{workers}"
    res: dict = {"queue": "hopper", "mode": f"{engine} durability={durability} x{workers}",
                 "worker_type": "process", "workers": workers, "n": n,
                 "durability": durability, "engine": engine}

    # (a) enqueue rate, single calls, no worker running
    t0 = time.perf_counter()
    if full:
        for i in range(n):
            enqueue("bench.noop", {"idx": i, "enq_ts": None, "tag": "drain"})
        enq_s = time.perf_counter() - t0
        res["enqueue_per_s"] = round(n / enq_s, 1)
        log(f"hopper {tag}: enqueued {n} in {enq_s:.2f}s ({n / enq_s:.0f}/s)")
    else:
        for i in range(0, n, 1000):
            enqueue_many([{"name": "bench.noop", "args": {"idx": k, "enq_ts": None,
                                                          "tag": "drain"}}
                          for k in range(i, min(n, i + 1000))])

    # (b) drain: the worker daemon as a separate process
    cmd = [sys.executable, os.path.join(REPO, "run.py"), "--config", settings_path,
           "worker"]
    env = dict(os.environ, PEER_DONE_DB=done, HOPPER_CONFIG=settings_path,
               PYTHONPATH=os.pathsep.join([HERE, PEERS, os.environ.get("PYTHONPATH", "")]))
    res["worker_cmd"] = "python run.py --config <tmp>/settings.yaml worker"
    logf = open(os.path.join(folder, "daemon.log"), "wb")
    t_start = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        def dead():
            return proc.poll() is not None

        res.update(wait_drain(marker, n, t_start, drain_cap, dead))
        log(f"hopper {tag}: drained {res['done']}/{n} in {res['drain_s']:.2f}s "
            f"incl. startup {res['startup_s']:.2f}s -> {res['drain_per_s']:.0f}/s "
            f"(first->last {res['steady_per_s']}/s)")
        if dead():
            raise RuntimeError(f"hopper {tag}: daemon exited rc={proc.poll()}")
        if engine == "postgres":
            res["tables_after_drain"] = pg_common.table_stats(database)
        if full:
            latency_phases(res, client, proc, marker, lat_n, gap, cold_n, cold_idle, tag)
        res["runs_once"] = once_check(client.backend)
    finally:
        # Hopper: SIGTERM = graceful (stop claiming, finish, exit 0)
        res["shutdown"] = stop_tree(proc, first_sig=signal.SIGTERM, grace=15)
        res["exit_code"] = proc.returncode
        logf.close()
        marker.close()
        client.backend.close()
        if pg_db is not None:
            pg_common.drop_database(pg_db)
    return res


def latency_phases(res: dict, client, proc, marker, lat_n: int, gap: float, cold_n: int,
                   cold_idle: float, tag: str) -> None:
    """(c) warm pickup latency, (x) idle CPU and cold pickup, into ``res``."""
    from peer_common import lat_summary, log, paced_enqueue, wait_until

    from hopper.app.queue import enqueue

    enqueue("bench.noop", {"idx": -1, "enq_ts": time.time(), "tag": "warm"})
    wait_until(lambda: marker.count("warm") >= 1, timeout=30)
    time.sleep(0.5)
    durs = paced_enqueue(lat_n, gap, lambda i, ts: enqueue(
        "bench.noop", {"idx": i, "enq_ts": ts, "tag": "lat"}))
    wait_until(lambda: marker.count("lat") >= lat_n, timeout=60)
    rows = marker.rows("lat")
    res["latency"] = lat_summary([start - enq for (_i, enq, start, _e) in rows])
    res["latency"]["missing"] = lat_n - len(rows)
    res["enqueue_call_p50_ms"] = round(sorted(durs)[len(durs) // 2] * 1e3, 3)
    log(f"hopper {tag}: pickup latency {res['latency']}")

    # idle CPU is measured over the first idle period before a cold pickup
    worker_pids = sorted(w["pid"] for w in client.backend.live_workers(5.0))
    import psutil

    others = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)
              if p.pid not in worker_pids]
    for k in range(cold_n):
        before = cpu_snapshot(worker_pids + others + [proc.pid]) if k == 0 else None
        time.sleep(cold_idle)
        if before is not None:
            after = cpu_snapshot(list(before))
            res["idle_cpu"] = idle_cpu(before, after, worker_pids, proc.pid, cold_idle)
            log(f"hopper {tag}: idle CPU over {cold_idle}s: {res['idle_cpu']}")
        enqueue("bench.noop", {"idx": k, "enq_ts": time.time(), "tag": "cold"})
        wait_until(lambda k=k: marker.count("cold") >= k + 1, timeout=30, interval=0.005)
    rows = marker.rows("cold")
    cold = [start - enq for (_i, enq, start, _e) in rows]
    res["cold"] = {"idle_s": cold_idle, "n": len(cold),
                   "ms": [round(c * 1e3, 1) for c in cold]}
    log(f"hopper {tag}: cold pickup after {cold_idle}s idle: {res['cold']['ms']} ms")


def idle_cpu(before: dict, after: dict, workers: list[int], supervisor: int,
             seconds: float) -> dict:
    """CPU used while idle: workers (the target) and the other processes."""
    def used(pids):
        sec = sum(after[p][0] - before[p][0] for p in pids if p in after)
        ns = sum(after[p][1] - before[p][1] for p in pids if p in after)
        return round(sec, 3), round(ns / 1e6, 2)

    w_sec, w_ms = used(workers)
    s_sec, s_ms = used([supervisor])
    o_sec, o_ms = used([p for p in before if p not in workers and p != supervisor])
    return {"seconds": seconds, "workers": len(workers),
            "workers_cpu_times_s": w_sec, "workers_schedstat_ms": w_ms,
            "supervisor_cpu_times_s": s_sec, "supervisor_schedstat_ms": s_ms,
            "other_cpu_times_s": o_sec, "other_schedstat_ms": o_ms}


def once_check(backend) -> dict:
    """Every benchmark task succeeded, each in exactly one attempt."""
    rows = backend.fetch("SELECT status, attempts, count(*) FROM tasks GROUP BY status, attempts")
    return {f"{s}/{a}": c for s, a, c in rows}


# ------------------------------------------------------------------ extras
def batch_enqueue(tmp: str, total: int, chunk: int) -> dict:
    """enqueue_many rate, ``chunk`` tasks per call (one transaction each)."""
    from peer_common import log

    folder = os.path.join(tmp, "batch")
    os.makedirs(folder)
    bind(write_settings(folder, "full", 2))
    from hopper.app.queue import enqueue_many

    reqs = [[{"name": "bench.noop", "args": {"idx": i + j, "enq_ts": None, "tag": "batch"}}
             for j in range(chunk)] for i in range(0, total, chunk)]
    t0 = time.perf_counter()
    for r in reqs:
        enqueue_many(r)
    dt = time.perf_counter() - t0
    out = {"tasks": total, "chunk": chunk, "durability": "full",
           "per_s": round(total / dt, 1)}
    log(f"hopper: batch enqueue {out}")
    return out


def claim_rate(tmp: str, small: int, big: int, rounds: int, per_round: int) -> dict:
    """Claim+complete rate (the worker's group commit, 64 per txn) at two backlogs.

    Two databases, one with ``small`` and one with ``big`` tasks queued; rounds
    alternate between them so machine noise hits both alike. Each round claims
    and completes ``per_round`` tasks, then tops the backlog up again (untimed).
    """
    from peer_common import log

    from hopper.app.backends.base import Outcome

    def setup(label, backlog):
        folder = os.path.join(tmp, f"claim-{label}")
        os.makedirs(folder)
        client = bind(write_settings(folder, "full", 2))
        # Bulk fill in SQL (same rows as enqueue_many writes): 1,000,000 tasks
        # through the Python API would take most of this benchmark's time budget.
        conn, now = client.backend._conn(), time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < ?)"
            " INSERT INTO tasks (queue, name, args, priority, run_after, max_attempts,"
            " created_at) SELECT 'default', 'bench.noop',"
            " json_object('idx', x, 'enq_ts', NULL, 'tag', 'claim'), 0, ?, 3, ? FROM n",
            (backlog, now, now))
        conn.execute("COMMIT")
        return client

    def measure(client):
        from hopper.app.queue import enqueue_many

        backend, pending, left = client.backend, [], per_round
        t0 = time.perf_counter()
        while left > 0 or pending:
            claimed = backend.finish_and_claim("bench:claim", pending, [], min(64, left), 30)
            left -= len(claimed)
            now = time.time()
            pending = [Outcome(t.id, True, now, now, result="null") for t in claimed]
            if not claimed and not pending:
                break
        rate = per_round / (time.perf_counter() - t0)
        enqueue_many([{"name": "bench.noop", "args": {"idx": k, "enq_ts": None, "tag": "claim"}}
                      for k in range(per_round)])
        return rate

    clients = {"small": setup("small", small), "big": setup("big", big)}
    rates: dict[str, list[float]] = {"small": [], "big": []}
    from hopper.app import queue as queue_mod

    for _ in range(rounds):
        for label, client in clients.items():
            queue_mod._client = client  # enqueue_many refills the database being measured
            rates[label].append(measure(client))
    out = {"batch": 64, "per_round": per_round, "rounds": rounds}
    for label, backlog in (("small", small), ("big", big)):
        out[label] = {"queued": backlog, "per_s": round(statistics.median(rates[label]), 1),
                      "runs": [round(r) for r in rates[label]]}
        log(f"hopper: claim rate with {backlog:,} queued: {out[label]['per_s']:,.0f}/s "
            f"(runs {out[label]['runs']})")
        clients[label].backend.close()
    out["ratio"] = round(out["big"]["per_s"] / out["small"]["per_s"], 3)
    return out


def main() -> int:
    """Run every phase; write the JSON (same keys as the peers' plus extras)."""
    import sqlite3

    from peer_common import (
        env_float,
        env_int,
        install_sigterm_as_exit,
        log,
        marker_self_cost,
        write_json,
    )

    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--n", type=int, default=env_int("N", 20000))
    ap.add_argument("--workers", type=int, default=env_int("WORKERS", 2))
    ap.add_argument("--durability", default=os.environ.get("HOPPER_DURABILITY", "full,normal"))
    ap.add_argument("--lat-n", type=int, default=env_int("LAT_N", 200))
    ap.add_argument("--gap-ms", type=float, default=env_float("LAT_GAP_MS", 20))
    ap.add_argument("--cold-n", type=int, default=env_int("COLD_N", 3))
    ap.add_argument("--cold-idle", type=float, default=env_float("COLD_IDLE_S", 5))
    ap.add_argument("--drain-cap-s", type=float, default=env_float("DRAIN_CAP_S", 90))
    ap.add_argument("--batch-total", type=int, default=env_int("BATCH_TOTAL", 200000))
    ap.add_argument("--claim-big", type=int, default=env_int("CLAIM_BIG", 1000000))
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers-list", default=os.environ.get("PG_WORKERS_LIST", "1,2,4,8"),
                    help="PostgreSQL: drain with each of these worker counts as well")
    ap.add_argument("--skip-extras", action="store_true")
    ap.add_argument("--label", default="this branch", help="shown in the table's queue column")
    a = ap.parse_args()
    install_sigterm_as_exit()

    tmp = tempfile.mkdtemp(prefix="hopperbench-")
    out = {"bench": "hopper", "version": f"0.1.0 ({a.label})", "label": a.label,
           "engine": a.engine,
           "sqlite": sqlite3.sqlite_version,
           "settings": {"worker": "python run.py worker, workers: 2, lease 30s, defaults",
                        "lat_n": a.lat_n, "gap_ms": a.gap_ms},
           "runs": []}
    try:
        out["marker_cost_us"] = round(marker_self_cost(os.path.join(tmp, "selfcost.db")), 1)
        plan = [(d.strip(), a.workers, True) for d in a.durability.split(",") if d.strip()]
        if a.engine == "postgres":
            # PostgreSQL ignores ``durability`` (every commit is synchronous unless
            # the backend says otherwise): one durability, every worker count.
            counts = sorted({int(w) for w in a.workers_list.split(",")} | {a.workers})
            plan = [("full", w, w == a.workers) for w in counts]
            from pg_common import ADMIN_URL, server_settings

            out["server"] = server_settings(ADMIN_URL)
        for durability, workers, full in plan:
            try:
                out["runs"].append(run_mode(durability, workers, a.n, a.lat_n,
                                            a.gap_ms / 1000.0, a.cold_n, a.cold_idle, tmp,
                                            a.drain_cap_s, a.engine, full))
            except RuntimeError as e:
                log(str(e))
                out["runs"].append({"queue": "hopper", "mode": f"{a.engine} {durability}",
                                    "workers": workers, "error": str(e)})
        if not a.skip_extras and a.engine == "sqlite":
            out["batch_enqueue"] = batch_enqueue(tmp, a.batch_total, 1000)
            out["claim_rate"] = claim_rate(tmp, 1000, a.claim_big, rounds=15, per_round=1000)
    finally:
        if os.environ.get("KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    write_json(a.json, out)
    return 0 if all("error" not in r for r in out["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
