#!/usr/bin/env python3
"""HTTP enqueue benchmark: single ``echo`` enqueues over keep-alive connections.

Starts a real daemon (``python run.py``) on a loopback port in a temporary
folder, waits for its web server, then runs a bounded load client: THREADS
threads, each with one persistent ``http.client`` connection, POSTing
``/api/tasks`` for DURATION seconds while the daemon's workers drain the queue.
Prints requests/s and latency percentiles, and how many tasks the workers
finished meanwhile.

    python bench/bench_http.py [--threads 4] [--duration 10] [--workers 2]
                               [--durability full] [--server-threads 4]
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


def load(port: int, stop_at: float, latencies: list[float], errors: list[str]) -> None:
    """One client thread: one keep-alive connection, requests back to back."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    n = 0
    local: list[float] = []
    while time.monotonic() < stop_at:
        body = json.dumps({"name": "echo", "args": {"n": n}})
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/tasks", body, headers)
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


def finished_count(config: Path) -> int:
    sys.path.insert(0, str(REPO))
    from hopper.app.backends import open_backend
    from hopper.app.settings import load as load_settings

    backend = open_backend(load_settings(config).database)
    counts = backend.counts()
    backend.close()
    return sum(statuses.get("succeeded", 0) for statuses in counts.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=4)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hopper-bench-") as tmp:
        process, port, config = start_daemon(Path(tmp), args)
        try:
            latencies: list[float] = []
            errors: list[str] = []
            stop_at = time.monotonic() + args.duration
            threads = [threading.Thread(target=load, args=(port, stop_at, latencies, errors))
                       for _ in range(args.threads)]
            began = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - began
            drained = finished_count(config)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    latencies.sort()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    print(f"threads={args.threads} duration={args.duration:g}s workers={args.workers} "
          f"durability={args.durability} server_threads={args.server_threads}")
    print(f"requests: {len(latencies)} in {elapsed:.2f}s = {len(latencies) / elapsed:,.0f} req/s")
    print(f"latency ms: p50 {quantiles[49] * 1000:.2f}  p90 {quantiles[89] * 1000:.2f}  "
          f"p99 {quantiles[98] * 1000:.2f}  max {latencies[-1] * 1000:.2f}")
    print(f"tasks succeeded meanwhile: {drained}")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
