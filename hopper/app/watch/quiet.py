"""A task's own moves and writes are not events: ``hopper.quiet`` and ``hopper.moved``.

An organizer that renames files inside a watched folder would otherwise start
its own tasks again (on_moved, or a new file). These calls mark the paths quiet
in the database (``watch_quiet``), so the watcher, in whichever process or host
it runs, updates its record of those files and starts nothing for them::

    with hopper.quiet(src, dst):
        os.renames(src, dst)

    hopper.moved(src, dst)     # the same for a move already done (call it at once)
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from hopper.app.defaults import WATCH_QUIET_GRACE_S
from hopper.app.watch.store import WatchStore


def _store() -> WatchStore:
    from hopper.app import queue

    return WatchStore(queue.client().backend)


def _absolute(paths) -> list[str]:
    return [os.path.abspath(os.fspath(p)) for p in paths]


@contextmanager
def quiet(*paths: str | os.PathLike, grace: float = WATCH_QUIET_GRACE_S) -> Iterator[None]:
    """Within the block and for ``grace`` seconds after it, the next file event on each
    of ``paths`` (a file; a folder covers everything below it until the grace ends)
    starts no task; the watcher still records the files' new state, so a rescan does
    not start them either. A file's mark is used up by the event it silences."""
    absolute = _absolute(paths)
    store = _store()
    # Marked before the block (events may be seen while it runs); after it, the marks
    # not used yet are extended, so the grace counts from the end of a long copy.
    store.hush(absolute, time.time() + grace)
    try:
        yield
    finally:
        store.extend(absolute, time.time() + grace)


def moved(src: str | os.PathLike, dst: str | os.PathLike,
          grace: float = WATCH_QUIET_GRACE_S) -> None:
    """Say that this task moved ``src`` to ``dst`` itself: the watcher renames its
    record and starts no ``on_moved`` (call it right after the move)."""
    _store().hush(_absolute((src, dst)), time.time() + grace)
