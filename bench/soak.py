#!/usr/bin/env python3
"""Soak benchmark: a daemon under constant enqueue and drain for many minutes.

Starts a real daemon (``python run.py``) in a temporary folder with retention of one
minute for finished tasks, enqueues ``echo`` tasks at a constant rate from this
process, and every few seconds samples the SQLite database file size, the WAL size,
the task table's row count and queue depth, and the resident memory (RSS) of every
Hopper process (supervisor, fork server, workers, Gunicorn arbiter and worker).
Writes ``soak.csv`` (one row per sample), ``soak-rss.csv`` (one row per process and
sample) and a plot ``soak.png``, and prints how each measure moved between the
first and the last third of the run (after a warm-up of two retention periods).

    python bench/soak.py [--minutes 10] [--rate 200] [--interval 5] [--workers 2]
                         [--out bench/out]

Needs the ``bench`` extra for the plot: ``pip install -e '.[bench]'``.
"""
from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
RETENTION = "1m"
WARMUP_S = 150      # the first prune runs a minute after start and deletes a minute's tasks
BATCH = 20          # tasks per enqueue_many call: the rate is kept in steps of this size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(folder: Path, workers: int) -> tuple[subprocess.Popen, Path]:
    port = free_port()
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "database": "sqlite:///data/hopper.db", "workers": workers,
        "server": {"bind": f"127.0.0.1:{port}"},
        "retention": {"succeeded": RETENTION, "failed": RETENTION},
        "library": {"rescan_interval": 0},
    }))
    log = open(folder / "daemon.log", "wb")
    process = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                               cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "HOPPER_CONFIG": str(config)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return process, config
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the daemon did not start; see {folder / 'daemon.log'}")


class Producer(threading.Thread):
    """Enqueues ``rate`` echo tasks per second in batches until stopped."""

    def __init__(self, rate: float):
        super().__init__(name="producer", daemon=True)
        self.rate, self.sent, self.stop = rate, 0, threading.Event()

    def run(self) -> None:
        from hopper.app import queue

        queue.configure()
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            if due - self.sent >= BATCH:
                queue.enqueue_many([{"name": "echo", "args": {"n": self.sent + i}}
                                    for i in range(BATCH)])
                self.sent += BATCH
            else:
                self.stop.wait(BATCH / self.rate / 4)


def role(proc: psutil.Process, supervisor: int) -> str:
    """What a Hopper process is, from its command line and parent."""
    if proc.pid == supervisor:
        return "supervisor"
    cmdline = " ".join(proc.cmdline())
    if "gunicorn" in cmdline:
        return "web-arbiter" if proc.ppid() == supervisor else "web-worker"
    if "forkserver" in cmdline:  # workers are forked from the fork server and keep its command line
        return "fork-server" if proc.ppid() == supervisor else "worker"
    if "resource_tracker" in cmdline:
        return "resource-tracker"
    return "worker"


def processes(supervisor: int) -> list[tuple[int, str, int]]:
    """(pid, role, rss bytes) of the supervisor and everything below it."""
    try:
        root = psutil.Process(supervisor)
        found = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    out = []
    for proc in found:
        try:
            out.append((proc.pid, role(proc, supervisor), proc.memory_info().rss))
        except psutil.NoSuchProcess:
            continue
    return out


def table_counts(db: Path) -> tuple[int, int]:
    """(rows in tasks, queued tasks), read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM tasks WHERE status = 'queued'").fetchone()[0]
        return rows, queued
    finally:
        conn.close()


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def soak(args) -> tuple[list[dict], list[dict]]:
    folder = Path(tempfile.mkdtemp(prefix="hopper-soak-"))
    daemon, config = start_daemon(folder, args.workers)
    os.environ["HOPPER_CONFIG"] = str(config)
    db = folder / "data" / "hopper.db"
    wal = db.with_name(db.name + "-wal")
    producer = Producer(args.rate)
    producer.start()
    samples, rss_rows = [], []
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            procs = processes(daemon.pid)
            rows, queued = table_counts(db)
            sample = {"t_s": round(elapsed, 1), "enqueued": producer.sent,
                      "db_bytes": file_size(db), "wal_bytes": file_size(wal),
                      "task_rows": rows, "queued": queued,
                      "rss_total": sum(r for _, _, r in procs), "processes": len(procs)}
            for name in ("supervisor", "fork-server", "worker", "web-arbiter", "web-worker"):
                sample[f"rss_{name}"] = sum(r for _, n, r in procs if n == name)
            samples.append(sample)
            rss_rows += [{"t_s": sample["t_s"], "pid": pid, "role": name, "rss_bytes": rss}
                         for pid, name, rss in procs]
            print(f"{sample['t_s']:7.1f}s enqueued {producer.sent:>8} rows {rows:>7} "
                  f"queued {queued:>5} db {sample['db_bytes'] / 1e6:7.2f} MB "
                  f"wal {sample['wal_bytes'] / 1e6:6.2f} MB"
                  f" rss {sample['rss_total'] / 1e6:7.1f} MB",
                  flush=True)
            time.sleep(max(0.0, args.interval - (time.monotonic() - started - elapsed)))
    finally:
        producer.stop.set()
        producer.join(10)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    print(f"data and daemon log kept in {folder}")
    return samples, rss_rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summarize(samples: list[dict]) -> list[str]:
    """Each measure's mean over the first and the last third after the warm-up."""
    steady = [s for s in samples if s["t_s"] >= WARMUP_S]
    if len(steady) < 6:
        return ["run too short for a steady-state comparison (needs > 3 minutes)"]
    third = len(steady) // 3
    first, last = steady[:third], steady[-third:]
    lines = [f"steady state from {WARMUP_S}s:"
             f" first third {first[0]['t_s']:.0f}-{first[-1]['t_s']:.0f}s,"
             f" last third {last[0]['t_s']:.0f}-{last[-1]['t_s']:.0f}s"]
    for key in ("db_bytes", "wal_bytes", "task_rows", "queued", "rss_total", "rss_supervisor",
                "rss_fork-server", "rss_worker", "rss_web-arbiter", "rss_web-worker"):
        a, b = statistics.mean(s[key] for s in first), statistics.mean(s[key] for s in last)
        change = (b - a) / a * 100 if a else 0.0
        peak = max(s[key] for s in samples)
        lines.append(f"{key:17} first {a:14,.0f}  last {b:14,.0f}  change {change:+6.1f}%"
                     f"  peak {peak:14,.0f}")
    return lines


def plot(samples: list[dict], rss_rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    ax1.plot(t, [s["db_bytes"] / 1e6 for s in samples], label="database file")
    ax1.plot(t, [s["wal_bytes"] / 1e6 for s in samples], label="WAL file")
    ax1.set_ylabel("MB")
    ax1.set_ylim(bottom=0)
    ax1.legend(loc="upper left")
    ax1.set_title(title)
    by_pid: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for row in rss_rows:
        by_pid.setdefault((row["pid"], row["role"]), []).append((row["t_s"] / 60,
                                                                 row["rss_bytes"] / 1e6))
    for (pid, name), points in sorted(by_pid.items(), key=lambda item: item[0][1]):
        ax2.plot([p[0] for p in points], [p[1] for p in points], label=f"{name} {pid}")
    ax2.set_ylabel("RSS, MB")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="lower right", fontsize="small", ncol=2)
    ax3.plot(t, [s["task_rows"] for s in samples], label="rows in tasks")
    ax3.plot(t, [s["queued"] for s in samples], label="queued")
    ax3.set_ylabel("tasks")
    ax3.set_xlabel("minutes")
    ax3.set_ylim(bottom=0)
    ax3.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="tasks enqueued per second")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    samples, rss_rows = soak(args)
    write_csv(args.out / "soak.csv", samples)
    write_csv(args.out / "soak-rss.csv", rss_rows)
    title = (f"soak: {args.rate:.0f} echo tasks/s for {args.minutes:g} min, {args.workers} workers,"
             f" retention {RETENTION}")
    plot(samples, rss_rows, args.out / "soak.png", title)
    print("\n".join(summarize(samples)))
    print(f"wrote {args.out / 'soak.csv'}, {args.out / 'soak-rss.csv'}, {args.out / 'soak.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
