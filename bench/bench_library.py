"""Library ingest benchmark: a real daemon with 2 workers ingests files dropped in its inbox.

    python bench/bench_library.py [--small 10000] [--large 20] [--large-mib 50] [--workers 2]
    python bench/bench_library.py --media [--jpegs 1000 --heics 20 --videos 5] [--scale 0.1]

Phases (each timed from the moment the files appear in the inbox until every
one is indexed and the inbox is empty):
  1. ``--small`` files of 1-64 KiB of random bytes;
  2. ``--large`` files of ``--large-mib`` MiB.
Then the hashing throughput of Hopper's identify (streamed sha256) against
``sha256sum`` on the same large files, both with the files in the page cache.

``--media`` instead: 12-megapixel JPEGs, HEIC photos and one-minute 1080p videos
dropped at once, timed to all indexed and all previews ready, beside a floor
measured in the same run (``bench/library_media_bench.py`` says how); ``--scale``
runs a fraction of the counts on a small machine.

Files are created in a staging folder on the same filesystem and renamed into
the inbox, as a copy tool that finishes with a rename would. Everything is
created under one temp folder that is removed at the end.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # library_media_bench

from hopper.app.library.identify import sha256_fd  # noqa: E402  (importable once sys.path is set above)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, workers: int) -> Path:
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "database": "sqlite:///data/hopper.db", "workers": workers,
        "server": {"bind": f"127.0.0.1:{free_port()}", "threads": 4},
        "library": {"inbox": "data/inbox", "root": "data/library",
                    "quarantine": "data/quarantine", "settle_time": "200ms"},
    }))
    return config


def indexed(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=30)
        try:
            return conn.execute("SELECT count(*) FROM library_items").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def make_files(staging: Path, sizes: list[int], prefix: str) -> int:
    staging.mkdir(parents=True, exist_ok=True)
    rng = random.Random(prefix)
    chunk = os.urandom(1 << 20)
    for i, size in enumerate(sizes):
        with open(staging / f"{prefix}_{i:05d}.bin", "wb") as f:
            f.write(i.to_bytes(8, "little") + rng.randbytes(8))   # unique content per file
            left = size - 16
            while left > 0:
                f.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return sum(sizes)


def ingest_phase(label: str, staging: Path, inbox: Path, db: Path, total_bytes: int,
                 timeout: float) -> dict:
    names = sorted(os.listdir(staging))
    before = indexed(db)
    started = time.monotonic()
    for name in names:
        os.rename(staging / name, inbox / name)
    wait_for(lambda: indexed(db) >= before + len(names) and not os.listdir(inbox),
             timeout, f"{label} ingest")
    took = time.monotonic() - started
    return {"phase": label, "files": len(names), "seconds": took,
            "files_per_s": len(names) / took, "mb_per_s": total_bytes / took / 1e6}


def hash_throughput(files: list[Path]) -> dict:
    total = sum(p.stat().st_size for p in files)
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    results = {}
    for _attempt in range(3):
        started = time.monotonic()
        subprocess.run(["sha256sum", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
        results.setdefault("sha256sum", []).append(time.monotonic() - started)
        started = time.monotonic()
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                sha256_fd(fd)
            finally:
                os.close(fd)
        results.setdefault("hopper", []).append(time.monotonic() - started)
    best = {k: total / min(v) / 1e6 for k, v in results.items()}
    return {"sha256sum_mb_per_s": best["sha256sum"], "hopper_mb_per_s": best["hopper"],
            "ratio": best["hopper"] / best["sha256sum"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-mib", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", help="parent folder for the temp files (default: system temp)")
    parser.add_argument("--media", action="store_true",
                        help="the media benchmark (photos, HEIC, videos and their previews)")
    parser.add_argument("--jpegs", type=int, default=1000)
    parser.add_argument("--heics", type=int, default=20)
    parser.add_argument("--videos", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="run this fraction of --jpegs/--heics/--videos (at least one each)")
    args = parser.parse_args()
    if args.media:
        return media_main(args)
    # SIGTERM (e.g. from timeout) must still stop the daemon and remove the temp files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    top = Path(tempfile.mkdtemp(prefix="hopper-bench-library-", dir=args.dir))
    daemon = None
    try:
        config = write_config(top, args.workers)
        data = top / "data"
        inbox, db = data / "inbox", data / "hopper.db"
        rng = random.Random(1)
        small_sizes = [rng.randint(1024, 64 * 1024) for _ in range(args.small)]
        large_sizes = [args.large_mib * 1024 * 1024] * args.large
        small_bytes = make_files(top / "staging-small", small_sizes, "small")
        large_bytes = make_files(top / "staging-large", large_sizes, "large")
        large_copies = top / "hash-check"
        shutil.copytree(top / "staging-large", large_copies)

        log = open(top / "daemon.log", "wb")
        daemon = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                                  cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: inbox.is_dir() and indexed(db) == 0 and db.exists(), 60, "daemon start")
        time.sleep(2)  # let the startup scan of the empty inbox finish before timing
        phases = [ingest_phase("small", top / "staging-small", inbox, db, small_bytes, 1800),
                  ingest_phase("large", top / "staging-large", inbox, db, large_bytes, 1800)]
        hashing = hash_throughput(sorted(large_copies.iterdir()))
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(top, ignore_errors=True)

    print(f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for p in phases:
        print(f"{p['phase']:>5}: {p['files']} files in {p['seconds']:.1f} s = "
              f"{p['files_per_s']:.0f} files/s, {p['mb_per_s']:.1f} MB/s")
    print(f"hashing (page cache): hopper {hashing['hopper_mb_per_s']:.0f} MB/s, sha256sum "
          f"{hashing['sha256sum_mb_per_s']:.0f} MB/s, ratio {hashing['ratio']:.2f}")
    return 0


def start_daemon(top: Path, workers: int):
    config = write_config(top, workers)
    data = top / "data"
    log = open(top / "daemon.log", "wb")
    daemon = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: (data / "inbox").is_dir() and (data / "hopper.db").exists()
             and indexed(data / "hopper.db") == 0, 60, "daemon start")
    time.sleep(2)  # let the startup scan of the empty inbox finish before timing
    return daemon, data / "inbox", data / "hopper.db"


def media_main(args) -> int:
    """``--media``: the floor first (bare libraries, one process per core), then Hopper."""
    import library_media_bench as media

    counts = {k: media.scaled(getattr(args, k), args.scale) for k in ("jpegs", "heics", "videos")}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    top = Path(tempfile.mkdtemp(prefix="hopper-bench-media-", dir=args.dir))
    daemon = None
    try:
        staging = top / "staging"
        made = media.make_corpus(staging, counts["jpegs"], counts["heics"], counts["videos"])
        files = sorted(staging.iterdir())
        floor_s = media.floor(files, top / "floor-out", os.cpu_count() or 1)
        daemon, inbox, db = start_daemon(top, args.workers)
        run = media.hopper_run(staging, inbox, db, timeout=7200)
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(top, ignore_errors=True)
    print(f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"corpus: {counts['jpegs']} JPEG 12 MP + {counts['heics']} HEIC 12 MP + "
          f"{counts['videos']} x 60 s 1080p MP4 = {made['files']} files, "
          f"{made['bytes'] / 1e6:.0f} MB (made in {made['seconds']:.0f} s)")
    n = run["files"]
    print(f"floor (bare Pillow/pillow-heif/PyAV, {os.cpu_count()} processes): {floor_s:.1f} s"
          f" = {n / floor_s:.1f} files/s")
    print(f"hopper ({args.workers} workers): all indexed {run['indexed_s']:.1f} s, all previews"
          f" ready {run['previews_s']:.1f} s = {n / run['previews_s']:.1f} files/s")
    print(f"ratio to the floor: {run['previews_s'] / floor_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
