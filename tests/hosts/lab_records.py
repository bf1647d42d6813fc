"""What the lab's daemons left behind: live worker rows and the lines their tasks wrote.

A module of its own (not conftest) so the tests import it by a name no other folder uses.
"""
from __future__ import annotations

from collections import Counter

import psycopg


def live_workers(url: str, host: str) -> int:
    """Worker rows of ``host`` with a fresh heartbeat (0 before the schema exists)."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM workers WHERE host = %s AND"
                                " heartbeat_at > extract(epoch from now()) - 3",
                                (host,)).fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0


def runs(lab) -> list[tuple[str, int, str, float]]:
    """Every line the lab's tasks wrote: ``(event, task id, host, time)``."""
    out = []
    for host in lab.hosts:
        path = host.folder / "runs.log"
        if path.exists():
            for line in path.read_text().splitlines():
                event, task_id, name, at = line.split()
                out.append((event, int(task_id), name, float(at)))
    return out


def run_counts(lab) -> Counter:
    """How many times each task started."""
    return Counter(task_id for event, task_id, _, _ in runs(lab) if event == "run")
