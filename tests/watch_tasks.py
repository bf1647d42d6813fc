"""Tasks the folder-trigger tests start (loaded through ``tasks.modules``)."""
from __future__ import annotations

import os

import hopper
from hopper.app.queue import task


@task(name="watchtest.added")
def added(path: str, size: int, mtime: float) -> dict:
    """Return what the watcher passed."""
    return {"path": path, "size": size, "mtime": mtime}


@task(name="watchtest.moved")
def moved(src_path: str, path: str) -> dict:
    return {"src_path": src_path, "path": path}


@task(name="watchtest.deleted")
def deleted(path: str) -> dict:
    return {"path": path}


@task(name="watchtest.organize")
def organize(path: str, size: int, mtime: float) -> dict:
    """Move a file into ``sorted/`` of its folder, quietly: no event of its own."""
    target = os.path.join(os.path.dirname(path), "sorted", os.path.basename(path))
    with hopper.quiet(path, target):
        os.renames(path, target)
    return {"path": target}


@task(name="watchtest.slow")
def slow(path: str, size: int, mtime: float) -> dict:
    """Take a moment, so several workers (of several daemons) share a drop."""
    import time

    time.sleep(0.3)
    return {"path": path, "pid": os.getpid()}
