"""Folder-trigger fixtures live in ``watch_support`` (importable by name)."""
from watch_support import watch_config  # noqa: F401
