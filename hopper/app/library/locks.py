"""Advisory locks for the pipeline, taken with ``flock``.

flock locks belong to an open file and vanish when the process dies, so a
worker killed with SIGKILL never leaves a stale lock behind: the next attempt
simply takes it.

- The source lock (on the inbox file itself) keeps two ingests of the same
  file (e.g. the watcher's and a scan's) from working on it at once.
- The content lock (one of 256 stripes, by sha256 prefix) keeps two different
  files with the same content from both being organized: the second waits and
  then sees the first one's index row.

Lock files live in the data folder (:func:`hopper.app.library.paths.locks_dir`),
never inside the library root.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting; False if held elsewhere."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def content_lock(folder: Path, sha256: str) -> Iterator[None]:
    """Hold the lock stripe of this content (a file in ``folder``) for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{sha256[:2]}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
