"""Queue storage backends, chosen by the database URL."""
from __future__ import annotations

from hopper.app.backends.base import Backend


def open_backend(url: str, durability: str = "full") -> Backend:
    """The backend for a ``sqlite:///`` or ``postgresql://`` URL."""
    if url.startswith("sqlite:///"):
        from hopper.app.backends.sqlite import SqliteBackend

        return SqliteBackend(url, durability)
    if url.startswith(("postgresql://", "postgres://")):
        from hopper.app.backends.postgres import PostgresBackend

        return PostgresBackend(url)
    raise ValueError(f"unsupported database URL: {url}")


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean the database could not be reached or used,
    for callers that turn them into a one-line message."""
    import sqlite3

    import psycopg

    return (sqlite3.Error, psycopg.Error)
