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


def is_unavailable(url: str, exc: BaseException) -> bool:
    """Whether ``exc``, raised while using the database at ``url``, means the
    database cannot be reached (judged by the error's type and code, never its text)."""
    if url.startswith("sqlite:///"):
        from hopper.app.backends.sqlite import is_unavailable as check
    elif url.startswith(("postgresql://", "postgres://")):
        from hopper.app.backends.postgres import is_unavailable as check
    else:
        return False
    return check(exc)


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean the database could not be reached or used,
    for callers that turn them into a one-line message."""
    import sqlite3

    import psycopg

    from hopper.app.backends.base import QueueUnavailable

    return (sqlite3.Error, psycopg.Error, QueueUnavailable)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a transaction the database chose to abort (a deadlock, a
    serialization failure): the same call simply runs again. Judged by SQLSTATE class 40."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    state = getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None
    return state is not None and state.startswith("40")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached right now, whatever the
    engine: judged by the exception's type and its error code, never its text."""
    from hopper.app.backends.base import QueueUnavailable

    if isinstance(exc, QueueUnavailable):
        return True
    import sqlite3

    if isinstance(exc, (sqlite3.Error, OSError)):
        from hopper.app.backends.sqlite import is_unavailable as sqlite_unavailable

        return sqlite_unavailable(exc)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if isinstance(exc, psycopg.Error):
        from hopper.app.backends.postgres import is_unavailable as postgres_unavailable

        return postgres_unavailable(exc)
    return False
