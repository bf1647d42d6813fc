#!/usr/bin/env python3
"""PostgreSQL peers on the peer harness's workload: PgQueuer and procrastinate.

Run with the peers' own virtual environment (``bench/setup_pgpeers.sh`` makes it):

    /tmp/pgpeervenv/bin/python bench/bench_pgpeers.py --queue pgqueuer --json out.json

Same task body, done-marker and phases as ``../shared/bench-peers/bench_rq.py``
and ``bench/bench_hopper.py`` (each queue has its own no-op task that calls
``peer_common.DoneMarker.mark`` with the start time taken on entry):

  for each worker count in ``--workers-list`` (default 1,2,4,8), in a fresh database:
    (a) enqueue N tasks with no consumer running: single calls when the worker
        count is ``--workers`` (timed, the enqueue rate), else in batches of
        1,000 (untimed, only to fill the queue)
    (b) start that many consumer processes; drain time = spawn -> last marker
    (t) dead and live tuples per table right after the drain (pg_stat_user_tables)
  and at ``--workers`` only:
    (c) pickup latency: 200 tasks on a 20 ms schedule to idle consumers
    (x) cold pickup of single tasks after 5 s idle

Consumers run each queue's defaults except where noted in ``settings``:
PgQueuer 1.6 with asyncpg, ``QueueManager.run(batch_size=10)`` (its ``pgq run``
command fails at start in 1.6, so a small script drives it, as its docs show);
procrastinate 3.10 with its psycopg connector, ``App.run_worker(concurrency=1)``
(its defaults: LISTEN/NOTIFY on, 5 s fallback poll).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("PEER_DIR", os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                "shared", "bench-peers"))
for _p in (PEERS, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import pg_common  # noqa: E402  (importable once sys.path is set above)
from peer_common import DoneMarker  # noqa: E402  (importable once sys.path is set above)

BATCH = 1000


# ------------------------------------------------------------------ PgQueuer
class PgQueuerQueue:
    """Producer side of PgQueuer (asyncpg), with its own event loop."""

    name = "pgqueuer"

    def __init__(self, url: str):
        import asyncpg
        from pgqueuer import Queries
        from pgqueuer.db import AsyncpgDriver

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(url))
        self.queries = Queries(AsyncpgDriver(self.conn))

    @staticmethod
    def version() -> str:
        from importlib.metadata import version

        return version("pgqueuer")

    def install(self) -> None:
        self.loop.run_until_complete(self.queries.install())

    def enqueue(self, idx: int, enq_ts: float | None, tag: str) -> None:
        payload = json.dumps({"idx": idx, "enq_ts": enq_ts, "tag": tag}).encode()
        self.loop.run_until_complete(self.queries.enqueue("noop", payload))

    def enqueue_batch(self, items: list[tuple]) -> None:
        payloads = [json.dumps({"idx": i, "enq_ts": e, "tag": t}).encode() for i, e, t in items]
        self.loop.run_until_complete(self.queries.enqueue(
            ["noop"] * len(items), payloads, [0] * len(items)))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def consume_pgqueuer(url: str, done: str) -> None:
    """One PgQueuer consumer process (its docs' shape: driver, PgQueuer, entrypoint)."""
    import asyncpg
    from pgqueuer import PgQueuer
    from pgqueuer.db import AsyncpgDriver

    marker = DoneMarker(done)

    async def main():
        conn = await asyncpg.connect(url)
        pgq = PgQueuer(AsyncpgDriver(conn))

        @pgq.entrypoint("noop")
        async def noop(job) -> None:
            start = time.time()
            p = json.loads(job.payload)
            marker.mark(p["idx"], p["tag"], p["enq_ts"], start)

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, pgq.shutdown.set)
        await pgq.qm.run(batch_size=10)
        await conn.close()

    asyncio.run(main())


# ------------------------------------------------------------------ procrastinate
def _procrastinate_app(url: str, done: str | None):
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    marker = DoneMarker(done) if done else None

    @app.task(name="noop")
    def noop(idx, enq_ts, tag):
        start = time.time()
        marker.mark(idx, tag, enq_ts, start)

    return app, noop


class ProcrastinateQueue:
    """Producer side of procrastinate (its synchronous ``defer``)."""

    name = "procrastinate"

    def __init__(self, url: str):
        self.app, self.task = _procrastinate_app(url, None)
        self.app.open()

    @staticmethod
    def version() -> str:
        from importlib.metadata import version

        return version("procrastinate")

    def install(self) -> None:
        self.app.schema_manager.apply_schema()

    def enqueue(self, idx: int, enq_ts: float | None, tag: str) -> None:
        self.task.defer(idx=idx, enq_ts=enq_ts, tag=tag)

    def enqueue_batch(self, items: list[tuple]) -> None:
        self.task.batch_defer(*({"idx": i, "enq_ts": e, "tag": t} for i, e, t in items))

    def close(self) -> None:
        self.app.close()


def consume_procrastinate(url: str, done: str) -> None:
    """One procrastinate worker process, concurrency 1, its defaults otherwise."""
    app, _ = _procrastinate_app(url, done)
    app.run_worker(concurrency=1, install_signal_handlers=True)


QUEUES = {"pgqueuer": PgQueuerQueue, "procrastinate": ProcrastinateQueue}
CONSUMERS = {"pgqueuer": consume_pgqueuer, "procrastinate": consume_procrastinate}


# ------------------------------------------------------------------ one run
def run_one(queue: str, workers: int, n: int, full: bool, a, tmp: str) -> dict:
    """One fresh database, one worker count: (a), (b), (t), and with ``full`` (c), (x)."""
    from peer_common import lat_summary, log, paced_enqueue, stop_tree, wait_drain, wait_until

    db, url = pg_common.fresh_database(f"peer_{queue}")
    done = os.path.join(tmp, f"done-{queue}-{workers}.db")
    DoneMarker(done).create()
    marker = DoneMarker(done)
    q = QUEUES[queue](url)
    res: dict = {"queue": queue, "mode": f"postgres x{workers}", "worker_type": "process",
                 "workers": workers, "n": n, "engine": "postgres"}
    procs, logs = [], []
    try:
        q.install()
        t0 = time.perf_counter()
        if full:
            for i in range(n):
                q.enqueue(i, None, "drain")
            res["enqueue_per_s"] = round(n / (time.perf_counter() - t0), 1)
        else:
            for i in range(0, n, BATCH):
                q.enqueue_batch([(k, None, "drain") for k in range(i, min(n, i + BATCH))])
        log(f"{queue} x{workers}: enqueued {n} in {time.perf_counter() - t0:.2f}s"
            f"{'' if full else ' (batches, untimed)'}")

        cmd = [sys.executable, os.path.abspath(__file__), "--consume", queue, "--url", url,
               "--done", done]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, PEERS]))
        t_start = time.time()
        for k in range(workers):
            lf = open(os.path.join(tmp, f"{queue}-{workers}-{k}.log"), "wb")
            logs.append(lf)
            procs.append(subprocess.Popen(cmd, cwd=HERE, env=env, stdout=lf,
                                          stderr=subprocess.STDOUT))

        def dead():
            return any(p.poll() is not None for p in procs)

        res.update(wait_drain(marker, n, t_start, a.drain_cap_s, dead))
        log(f"{queue} x{workers}: drained {res['done']}/{n} in {res['drain_s']:.2f}s "
            f"incl. startup {res['startup_s']:.2f}s -> {res['drain_per_s']:.0f}/s "
            f"(first->last {res['steady_per_s']}/s)")
        if dead():
            raise RuntimeError(f"{queue} x{workers}: consumer exited "
                               f"rcs={[p.poll() for p in procs]}")
        res["tables_after_drain"] = pg_common.table_stats(url)
        if res["partial"]:
            return res
        if full:
            q.enqueue(-1, time.time(), "warm")
            wait_until(lambda: marker.count("warm") >= 1, timeout=30)
            time.sleep(0.5)
            durs = paced_enqueue(a.lat_n, a.gap_ms / 1000.0,
                                 lambda i, ts: q.enqueue(i, ts, "lat"))
            wait_until(lambda: marker.count("lat") >= a.lat_n, timeout=60)
            rows = marker.rows("lat")
            res["latency"] = lat_summary([s - e for (_i, e, s, _end) in rows])
            res["latency"]["missing"] = a.lat_n - len(rows)
            res["enqueue_call_p50_ms"] = round(sorted(durs)[len(durs) // 2] * 1e3, 3)
            log(f"{queue} x{workers}: pickup latency {res['latency']}")
            for k in range(a.cold_n):
                time.sleep(a.cold_idle)
                q.enqueue(k, time.time(), "cold")
                wait_until(lambda k=k: marker.count("cold") >= k + 1, timeout=30, interval=0.005)
            rows = marker.rows("cold")
            res["cold"] = {"idle_s": a.cold_idle, "n": len(rows),
                           "ms": [round((s - e) * 1e3, 1) for (_i, e, s, _end) in rows]}
            log(f"{queue} x{workers}: cold pickup {res['cold']['ms']} ms")
    finally:
        res["shutdown"] = ",".join(stop_tree(p, first_sig=signal.SIGTERM, grace=10)
                                   for p in procs)
        for lf in logs:
            lf.close()
        marker.close()
        q.close()
        pg_common.drop_database(db)
    return res


def main() -> int:
    """Every worker count for one queue; JSON in the peer harness's shape."""
    from peer_common import env_float, env_int, install_sigterm_as_exit, log, write_json

    ap = argparse.ArgumentParser()
    ap.add_argument("--queue", choices=sorted(QUEUES))
    ap.add_argument("--consume", choices=sorted(CONSUMERS), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--done", help=argparse.SUPPRESS)
    ap.add_argument("--json")
    ap.add_argument("--n", type=int, default=env_int("N", 20000))
    ap.add_argument("--workers", type=int, default=env_int("WORKERS", 2))
    ap.add_argument("--workers-list", default=os.environ.get("PG_WORKERS_LIST", "1,2,4,8"))
    ap.add_argument("--lat-n", type=int, default=env_int("LAT_N", 200))
    ap.add_argument("--gap-ms", type=float, default=env_float("LAT_GAP_MS", 20))
    ap.add_argument("--cold-n", type=int, default=env_int("COLD_N", 3))
    ap.add_argument("--cold-idle", type=float, default=env_float("COLD_IDLE_S", 5))
    ap.add_argument("--drain-cap-s", type=float, default=env_float("PG_DRAIN_CAP_S", 30))
    a = ap.parse_args()
    if a.consume:
        CONSUMERS[a.consume](a.url, a.done)
        return 0
    if not a.queue:
        ap.error("--queue is required")
    install_sigterm_as_exit()
    counts = sorted({int(w) for w in a.workers_list.split(",")} | {a.workers})
    out = {"bench": a.queue, "version": QUEUES[a.queue].version(), "engine": "postgres",
           "runs": [], "server": pg_common.server_settings(pg_common.ADMIN_URL)}
    with tempfile.TemporaryDirectory(prefix=f"pgpeer-{a.queue}-") as tmp:
        for w in counts:
            try:
                out["runs"].append(run_one(a.queue, w, a.n, w == a.workers, a, tmp))
            except RuntimeError as exc:
                log(str(exc))
                out["runs"].append({"queue": a.queue, "mode": f"postgres x{w}", "workers": w,
                                    "error": str(exc)})
    write_json(a.json, out)
    return 0 if all("error" not in r for r in out["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
