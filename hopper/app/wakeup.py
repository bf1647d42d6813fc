"""Waking idle workers on this machine when a task is enqueued.

SQLite has no LISTEN/NOTIFY, so idle workers block on a named pipe next to the
database file and an enqueuer writes a byte to it. A byte wakes one idle
worker; nobody listening costs the enqueuer one failed ``open`` at most every
half second. Workers still poll slowly, which catches delayed tasks coming due
and tasks enqueued from other machines.
"""
from __future__ import annotations

import errno
import os
import select
import stat
import time
from pathlib import Path

_REOPEN_AFTER_S = 0.5


class Doorbell:
    """The enqueuer's side: ring to wake up to ``n`` idle workers."""

    def __init__(self, path: Path):
        self.path = str(path)
        self._fd: int | None = None
        self._fd_pid = 0
        self._retry_at = 0.0

    def ring(self, n: int = 1) -> None:
        fd = self._open()
        if fd is None:
            return
        try:
            os.write(fd, b"!" * max(1, min(n, 64)))
        except BlockingIOError:
            pass  # the pipe is full of unread wake-ups: workers are awake already
        except BrokenPipeError:
            self.close()  # every listener is gone; reopen later

    def _open(self) -> int | None:
        if self._fd is not None and self._fd_pid == os.getpid():
            return self._fd
        now = time.monotonic()
        if now < self._retry_at:
            return None
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self._fd_pid = os.getpid()
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
            self._fd, self._retry_at = None, now + _REOPEN_AFTER_S
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None


class DoorbellListener:
    """The worker's side: block until rung or until the timeout."""

    def __init__(self, path: Path):
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                raise RuntimeError(f"{path} exists and is not a named pipe") from None
        # Read-write keeps a writer attached, so the pipe never reports EOF.
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def wait(self, timeout: float) -> bool:
        """True if a wake-up byte was taken, False on timeout or a lost race."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return False
        try:
            return bool(os.read(self._fd, 1))
        except BlockingIOError:
            return False  # another worker took it

    def close(self) -> None:
        os.close(self._fd)


def doorbell_path(database_url: str) -> Path | None:
    """Where the wake-up pipe of a SQLite database lives (None for other engines)."""
    if not database_url.startswith("sqlite:///"):
        return None
    return Path(database_url[len("sqlite:///"):] + ".wake")
