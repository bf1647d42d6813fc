"""PostgreSQL helpers shared by the PostgreSQL benchmarks (Hopper and its peers).

Each run gets a fresh database on the server at ``PG_ADMIN_URL`` (default
``postgresql://127.0.0.1:5432/test``, trust auth), dropped again at the end, so
no run sees another's rows or dead tuples. Needs only psycopg 3.
"""
from __future__ import annotations

import os
import re
import time

ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://127.0.0.1:5432/test")


def _admin():
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True)


def database_url(name: str) -> str:
    """The URL of database ``name`` on the admin URL's server."""
    return re.sub(r"/[^/]*$", f"/{name}", ADMIN_URL)


def fresh_database(prefix: str) -> tuple[str, str]:
    """Create an empty database; return ``(name, url)``."""
    name = f"{prefix}_{os.getpid()}_{int(time.time() * 1000) % 10_000_000}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, database_url(name)


def drop_database(name: str) -> None:
    """Drop a database made by :func:`fresh_database` (its sessions are ended first)."""
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_stats(url: str) -> list[dict]:
    """Live and dead tuples per user table (``pg_stat_user_tables``), biggest first."""
    import psycopg

    time.sleep(1.1)  # backends flush their table counters at most once a second
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd,"
            " autovacuum_count, pg_total_relation_size(relid)"
            " FROM pg_stat_user_tables ORDER BY n_live_tup + n_dead_tup DESC").fetchall()
    names = ("table", "live", "dead", "updates", "hot_updates", "autovacuums", "bytes")
    return [dict(zip(names, r, strict=True)) for r in rows if (r[1] or r[2])]


def server_settings(url: str) -> dict:
    """The server settings that shape a queue's speed, for the report."""
    import psycopg

    keys = ("server_version", "synchronous_commit", "fsync", "shared_buffers",
            "autovacuum_naptime")
    with psycopg.connect(url, autocommit=True) as conn:
        return {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in keys}
