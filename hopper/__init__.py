"""Hopper's public Python API.

Hopper's own code lives in the ``hopper.app`` and ``hopper.worker`` packages; this
name is what user code imports, so a user's project may itself have packages
called ``app`` or ``worker`` (the usual Flask layout)::

    from hopper import task, enqueue, get_task, wait
"""
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
from hopper.app.watch.quiet import moved, quiet  # noqa: F401

__all__ = ["task", "enqueue", "enqueue_many", "get_task", "wait", "current_task_id",
           "set_progress", "set_meta", "list_tasks", "cancel", "retry", "artifact_path",
           "QueueUnavailable", "pause_queue", "resume_queue", "quiet", "moved"]
