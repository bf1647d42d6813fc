"""Hopper's public Python API.

Hopper's own code lives in the ``hopper.app`` and ``hopper.worker`` packages; this
name is what user code imports, so a user's project may itself have packages
called ``app`` or ``worker`` (the usual Flask layout)::

    from hopper import task, enqueue, get_task, wait

The names are looked up on first use (PEP 562): ``import hopper.worker.context``
then costs only that module, so the daemon can start its fork server before it
imports the queue.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
_EXPORTS = {
    "artifact_path": "hopper.app.artifacts",
    "QueueUnavailable": "hopper.app.backends.base",
    **{name: "hopper.app.queue" for name in (
        "cancel", "current_task_id", "enqueue", "enqueue_many", "get_task", "list_tasks",
        "pause_queue", "resume_queue", "retry", "set_meta", "set_progress", "task", "wait")},
    "quiet": "hopper.app.watch.quiet",
    "moved": "hopper.app.watch.quiet",
}

__all__ = ["task", "enqueue", "enqueue_many", "get_task", "wait", "current_task_id",
           "set_progress", "set_meta", "list_tasks", "cancel", "retry", "artifact_path",
           "QueueUnavailable", "pause_queue", "resume_queue", "quiet", "moved"]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads them
    from hopper.app.artifacts import artifact_path
    from hopper.app.backends.base import QueueUnavailable
    from hopper.app.queue import (
        cancel,
        current_task_id,
        enqueue,
        enqueue_many,
        get_task,
        list_tasks,
        pause_queue,
        resume_queue,
        retry,
        set_meta,
        set_progress,
        task,
        wait,
    )
    from hopper.app.watch.quiet import moved, quiet


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hopper' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
