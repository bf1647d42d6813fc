"""Database URLs: which engine a URL names, and where a SQLite database's file is."""
from __future__ import annotations

import re
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"
_PASSWORD = re.compile(r"://([^:/@]+):[^@]*@")  # user:password@ in a URL


def sqlite_path(url: str) -> Path:
    """The file path in a ``sqlite:///path`` URL."""
    return Path(url[len(SQLITE_PREFIX):])


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs, errors and the API."""
    return _PASSWORD.sub(r"://\1:***@", url)
