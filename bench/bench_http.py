#!/usr/bin/env python3
"""HTTP enqueue benchmark: Hopper's ``POST /api/tasks`` beside a bare Flask endpoint.

In one run, on loopback, with the same bounded load client (THREADS threads,
each one persistent keep-alive ``http.client`` connection, requests back to
back for DURATION seconds):

  bare    ``bench/bare_flask.py`` (parse the JSON body, answer 201 with a small
          JSON object, no database) under Gunicorn started with exactly the
          command line Hopper's supervisor uses for its own web server
  single  a real daemon (``python run.py``: Gunicorn gthread, 2 workers draining
          the queue meanwhile), single ``echo`` enqueues
  batch   the same daemon, ``POST /api/tasks/batch`` with BATCH tasks per request

bare and single alternate for ROUNDS rounds so machine noise hits both alike.
Prints requests/s and latency percentiles per phase and the ratios; ``--json``
writes them for ``bench/report.py``.

    python bench/bench_http.py [--threads 4] [--duration 10] [--rounds 2] [--workers 2]
                               [--durability full] [--server-threads 4] [--json OUT]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(folder: Path, args) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "database": "sqlite:///data/hopper.db", "durability": args.durability,
        "workers": args.workers,
        "server": {"bind": f"127.0.0.1:{port}", "threads": args.server_threads},
    }))
    log = open(folder / "daemon.log", "wb")
    process = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "HOPPER_CONFIG": str(config)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process, port, config
        except OSError:
            pass  # not listening yet
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"daemon did not become healthy:\n{(folder / 'daemon.log').read_text()}")


def load(port: int, stop_at: float, latencies: list[float], errors: list[str],
         batch: int = 0) -> None:
    """One client thread: one keep-alive connection, requests back to back."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    path = "/api/tasks/batch" if batch else "/api/tasks"
    n = 0
    local: list[float] = []
    while time.monotonic() < stop_at:
        if batch:
            body = json.dumps([{"name": "echo", "args": {"n": n + k}} for k in range(batch)])
        else:
            body = json.dumps({"name": "echo", "args": {"n": n}})
        started = time.perf_counter()
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        local.append(time.perf_counter() - started)
        if response.status != 201:
            errors.append(f"HTTP {response.status}")
        n += 1
    conn.close()
    latencies.extend(local)


def run_load(port: int, threads: int, duration: float, batch: int = 0) -> dict:
    """``threads`` clients for ``duration`` seconds; requests/s and latency in ms."""
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.monotonic() + duration
    workers = [threading.Thread(target=load, args=(port, stop_at, latencies, errors, batch))
               for _ in range(threads)]
    began = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"requests": len(latencies), "seconds": round(elapsed, 3),
            "per_s": round(len(latencies) / elapsed, 1),
            "tasks_per_s": round(len(latencies) * max(batch, 1) / elapsed, 1),
            "p50_ms": round(q[49] * 1000, 2), "p90_ms": round(q[89] * 1000, 2),
            "p99_ms": round(q[98] * 1000, 2),
            "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
            "errors": len(errors), "first_error": errors[0] if errors else None}


def start_bare(folder: Path, config: Path) -> tuple[subprocess.Popen, int]:
    """Gunicorn serving bench/bare_flask.py with Hopper's own Gunicorn command line."""
    sys.path.insert(0, str(REPO))
    from hopper.app.settings import load as load_settings
    from hopper.app.web_process import WebServer

    port = free_port()
    settings = load_settings(config)
    cmd = WebServer(settings).command()
    # Same worker class, threads, timeouts and keep-alive; only the app and the
    # hooks (which start Hopper's inbox watcher) differ.
    at = cmd.index("--config")
    del cmd[at:at + 2]
    cmd[-1] = "bare_flask:create_app()"
    cmd[cmd.index("--bind") + 1] = f"127.0.0.1:{port}"
    log = open(folder / "bare.log", "wb")
    process = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.1)
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit(f"bare Gunicorn did not start:\n{(folder / 'bare.log').read_text()}")


def finished_count(config: Path) -> int:
    sys.path.insert(0, str(REPO))
    from hopper.app.backends import open_backend
    from hopper.app.settings import load as load_settings

    backend = open_backend(load_settings(config).database)
    counts = backend.counts()
    backend.close()
    return sum(statuses.get("succeeded", 0) for statuses in counts.values())


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the processes under ``root``, by role."""
    import psutil

    out: dict[str, float] = {}
    try:
        procs = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return out
    for proc in procs:
        try:
            cmd = " ".join(proc.cmdline())
            times = proc.cpu_times()
        except psutil.Error:
            continue
        role = ("web" if "gunicorn" in cmd else "fork server / workers" if "forkserver" in cmd
                else "supervisor")
        out[role] = out.get(role, 0.0) + times.user + times.system
    return out


def measured(port: int, root: int, threads: int, duration: float, batch: int = 0) -> dict:
    """run_load, plus the CPU seconds each role of the server used meanwhile."""
    before = cpu_by_role(root)
    result = run_load(port, threads, duration, batch)
    after = cpu_by_role(root)
    result["cpu_s"] = {role: round(after[role] - before.get(role, 0.0), 2) for role in after}
    return result


def _summary(rounds: list[dict]) -> dict:
    """Rounds of one phase pooled: total requests / total time, worst p99."""
    requests = sum(r["requests"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    return {"per_s": round(requests / seconds, 1),
            "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
            "p99_ms": max(r["p99_ms"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds), "rounds": rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=4)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--batch", type=int, default=1000, help="tasks per batch request")
    parser.add_argument("--batch-threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    out: dict = {"threads": args.threads, "duration_s": args.duration, "rounds": args.rounds,
                 "workers": args.workers, "durability": args.durability,
                 "server_threads": args.server_threads, "batch": args.batch}
    bare_rounds, single_rounds = [], []
    with tempfile.TemporaryDirectory(prefix="hopper-bench-") as tmp:
        process, port, config = start_daemon(Path(tmp), args)
        bare, bare_port = start_bare(Path(tmp), config)
        try:
            for _ in range(args.rounds):
                bare_rounds.append(measured(bare_port, bare.pid, args.threads, args.duration))
                single_rounds.append(measured(port, process.pid, args.threads, args.duration))
            bare.send_signal(signal.SIGTERM)
            bare.wait(30)
            out["batch_run"] = measured(port, process.pid, args.batch_threads, args.duration,
                                        args.batch)
            out["drained"] = finished_count(config)
        finally:
            if bare.poll() is None:
                bare.kill()
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    out["bare"], out["single"] = _summary(bare_rounds), _summary(single_rounds)
    out["ratio"] = round(out["single"]["per_s"] / out["bare"]["per_s"], 3)
    print(f"threads={args.threads} duration={args.duration:g}s x{args.rounds} "
          f"workers={args.workers} durability={args.durability} "
          f"server_threads={args.server_threads}")
    for name in ("bare", "single"):
        r = out[name]
        print(f"{name:7s} {r['per_s']:>8,.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
              f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']}  CPU s "
              f"{[x['cpu_s'] for x in r['rounds']]}")
    b = out["batch_run"]
    print(f"batch   {b['per_s']:>8,.1f} req/s of {args.batch} = {b['tasks_per_s']:,.0f} tasks/s  "
          f"p50 {b['p50_ms']:.1f} ms  p99 {b['p99_ms']:.1f} ms  errors {b['errors']}  "
          f"CPU s {b['cpu_s']}")
    print(f"single / bare = {out['ratio']:.2f}; tasks succeeded meanwhile: {out['drained']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    errors = out["bare"]["errors"] + out["single"]["errors"] + b["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
