"""Where tasks write the files they offer for download (their artifacts).

A task that returns ``{"artifact": "<name>"}`` has the file ``<name>`` of the
artifacts folder (``data/artifacts/``, ``Settings.artifacts_dir``) served at
``GET /api/tasks/<id>/artifact``.
"""
from __future__ import annotations

from pathlib import Path


def artifact_path(name: str) -> Path:
    """The path to write an artifact called ``name`` to (its folder is created).

    Return ``{"artifact": name}`` from the task to offer it for download.
    """
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name \
            or "\\" in name or "\0" in name:
        raise ValueError(f"an artifact name is a plain file name, got {name!r}")
    from hopper.app.queue import client

    folder = client().settings.artifacts_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
