"""Numbered SQL migrations, applied in order and recorded in ``schema_migrations``.

Files live in ``migrations/<engine>/NNNN_description.sql``. Applying is
idempotent and safe when several processes start at once: the check and the
changes happen inside one write transaction.
"""
from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def migration_files(engine: str) -> list[tuple[int, Path]]:
    """``(version, path)`` for every migration of an engine, in order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / engine).glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_description.sql")
        found.append((int(match.group(1)), path))
    return found


def split_statements(sql: str) -> list[str]:
    """Split a script into complete SQL statements (comments and strings respected)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(line.strip().startswith("--") for line in current.splitlines()
                                  if line.strip()):
        raise ValueError(f"incomplete SQL statement at end of migration: {current.strip()[:80]}")
    return statements


def apply_sqlite_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply pending SQLite migrations on an autocommit connection."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    applied = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, path in migration_files("sqlite"):
            if version in done:
                continue
            for statement in split_statements(path.read_text()):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                         (version, path.name, time.time()))
            applied.append(path.name)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied


_PG_LOCK_KEY = 0x486F70706572  # any constant: serializes migrating processes


def apply_postgres_migrations(conn) -> list[str]:
    """Apply pending PostgreSQL migrations under an advisory lock, in one transaction."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at DOUBLE PRECISION NOT NULL)")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, path in migration_files("postgres"):
            if version in done:
                continue
            conn.execute(path.read_text())
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                         (version, path.name, time.time()))
            applied.append(path.name)
    return applied
