"""Where tasks write the files they offer for download (their artifacts).

A task that returns ``{"artifact": "artifacts/<name>"}`` has its file served at
``GET /api/tasks/<id>/artifact``; the path is relative to the data folder
(``Settings.data_dir``: the SQLite database's folder, or ``data/`` beside the
settings file on PostgreSQL).
"""
from __future__ import annotations

from pathlib import Path

ARTIFACTS_FOLDER = "artifacts"


def artifact_path(name: str) -> Path:
    """The path to write an artifact called ``name`` to (its folder is created).

    Return ``{"artifact": f"artifacts/{name}"}`` from the task to offer it.
    """
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
            or "\\" in name or "\0" in name:
        raise ValueError(f"an artifact name is a plain file name, got {name!r}")
    from hopper.app.queue import client

    folder = client().settings.data_dir / ARTIFACTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
