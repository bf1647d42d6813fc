"""Database URLs: which engine a URL names, and where a SQLite database's file is."""
from __future__ import annotations

from pathlib import Path

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> Path:
    """The file path in a ``sqlite:///path`` URL."""
    return Path(url[len(SQLITE_PREFIX):])
