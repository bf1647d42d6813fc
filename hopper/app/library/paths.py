"""Where Hopper keeps its own library files: under the data folder, never in the library.

``library.root`` holds the user's files and nothing else. Locks, thumbnails and
exported artifacts (``settings.artifacts_dir``) live in the data folder (the SQLite
database's folder, or ``data/`` beside the settings file on PostgreSQL), so a backup or a
sync of the library folder carries only the user's files.
"""
from __future__ import annotations

from pathlib import Path

from hopper.app.settings import Settings

LOCKS = "locks"
THUMBNAILS = "thumbnails"
# An earlier layout kept its lock files here, inside the library root; reconcile
# removes the folder, and the walkers never index it.
LEGACY_LOCK_FOLDER = ".hopper-locks"


def locks_dir(settings: Settings) -> Path:
    """The folder of the pipeline's flock files."""
    return settings.data_dir / LOCKS / "library"


def thumbnails_dir(settings: Settings) -> Path:
    """The folder of item thumbnails, sharded by the content's sha256 prefix."""
    return settings.data_dir / THUMBNAILS
