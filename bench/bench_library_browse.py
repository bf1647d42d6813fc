"""Library browser queries on a large index: timeline, pages, month filter, deep cursor.

    python bench/bench_library_browse.py [--items 200000] [--pg postgresql://...]

Fills ``library_items`` of a fresh database (SQLite in a temp folder, and
PostgreSQL when ``--pg`` names a server database to create a scratch database
in) with ``--items`` rows spread over 20 years, then times each query the
browser makes (median of 7 runs, after one warm-up) and prints the query plan
of the paged listing. The database is removed at the end.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hopper.app.backends import open_backend  # noqa: E402  (importable once sys.path is set above)
from hopper.app.library import index  # noqa: E402  (importable once sys.path is set above)
from hopper.app.library.identify import Identity  # noqa: E402  (importable once sys.path is set above)

KINDS = ("image",) * 8 + ("video", "document")


def fill(backend, count: int) -> None:
    rng = random.Random(7)
    start = dt.datetime(2005, 1, 1)
    entries = []
    for i in range(count):
        taken = start + dt.timedelta(seconds=rng.randrange(20 * 365 * 86400))
        kind = rng.choice(KINDS)
        identity = Identity(sha256=f"{i:064x}", size=1000 + i, mime=f"{kind}/x", kind=kind,
                            taken_at=taken, taken_at_source="exif:DateTimeOriginal",
                            width=4000, height=3000, camera="Canon EOS R6")
        entries.append((f"{kind}/{taken:%Y/%m}/IMG_{i:07d}.jpg", identity, None))
    index.replace_all(backend, entries)


def timed(fn, runs: int = 7) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def measure(backend, label: str) -> None:
    first = index.search_items(backend, limit=60)
    deep = index.search_items(backend, limit=60, cursor=first[-1]["id"])
    for _ in range(200):  # walk 200 pages in, as "load more" would
        deep = index.search_items(backend, limit=60, cursor=deep[-1]["id"])
    cases = {
        "timeline (all months)": lambda: index.timeline(backend),
        "timeline, kind=image": lambda: index.timeline(backend, kind="image"),
        "first page (60)": lambda: index.search_items(backend, limit=60),
        "page 200 via cursor": lambda: index.search_items(backend, limit=60,
                                                          cursor=deep[-1]["id"]),
        "one month (timeline click)": lambda: index.search_items(
            backend, limit=60, taken_from="2014-03-01T00:00:00",
            taken_before="2014-04-01T00:00:00"),
        "kind=video, first page": lambda: index.search_items(backend, kind="video", limit=60),
        "name search q=IMG_01234": lambda: index.search_items(backend, q="IMG_01234", limit=60),
    }
    print(f"\n{label}")
    for name, fn in cases.items():
        print(f"  {name:32s} {timed(fn):8.2f} ms")


def sqlite_run(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        backend = open_backend(f"sqlite:///{folder}/bench.db")
        backend.migrate()
        t0 = time.perf_counter()
        fill(backend, count)
        print(f"SQLite: {count} items inserted in {time.perf_counter() - t0:.1f} s")
        plan = backend.fetch("EXPLAIN QUERY PLAN SELECT id FROM library_items WHERE kind = ?"
                             " AND (taken_at, id) < (?, ?) ORDER BY taken_at DESC, id DESC"
                             " LIMIT 60", ("image", "2014", 5))
        print("  plan:", "; ".join(str(row[-1]) for row in plan))
        measure(backend, f"SQLite, {count} items")
        backend.close()


def pg_run(url: str, count: int) -> None:
    import psycopg

    name = f"hopper_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        backend = open_backend(url.rsplit("/", 1)[0] + "/" + name)
        backend.migrate()
        t0 = time.perf_counter()
        fill(backend, count)
        print(f"PostgreSQL: {count} items inserted in {time.perf_counter() - t0:.1f} s")
        with backend.transaction() as conn:
            backend.run(conn, "ANALYZE library_items")
        measure(backend, f"PostgreSQL, {count} items")
        backend.close()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL to create a scratch db from")
    args = parser.parse_args()
    sqlite_run(args.items)
    if args.pg:
        pg_run(args.pg, args.items)


if __name__ == "__main__":
    main()
