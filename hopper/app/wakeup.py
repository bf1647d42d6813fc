"""Waking idle workers on this machine when a task becomes claimable (SQLite's notifier).

SQLite has no LISTEN/NOTIFY, so idle workers block on a named pipe next to the
database file and an enqueuer writes a byte to it. A byte wakes one idle
worker; nobody listening costs the enqueuer one failed ``open`` at most every
half second (the gap doubles from a millisecond, so a worker that has just
started listening is found at the next ring). Workers still poll slowly, which
catches delayed tasks coming due and tasks enqueued from other machines.
"""
from __future__ import annotations

import errno
import os
import select
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

_REOPEN_FIRST_S = 0.001  # after a failed open, the next try waits this long ...
_REOPEN_AFTER_S = 0.5    # ... doubling up to this while nobody listens


class Doorbell:
    """The enqueuer's side: ring to wake up to ``n`` idle workers."""

    def __init__(self, path: Path):
        self.path = str(path)
        self._fd: int | None = None
        self._fd_pid = 0
        self._retry_at = 0.0
        self._retry_gap = _REOPEN_FIRST_S

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
            self._fd_pid, self._retry_gap = os.getpid(), _REOPEN_FIRST_S
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
            self._fd, self._retry_at = None, now + self._retry_gap
            self._retry_gap = min(self._retry_gap * 2, _REOPEN_AFTER_S)
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

    def reset(self) -> None:
        """Nothing to drop: the pipe is a local file, not a database connection."""


class DoorbellNotifier:
    """SQLite's notifier: the doorbell beside the database file, for this machine's
    workers (a database file is not shared across machines)."""

    def __init__(self, path: Path):
        self.path = path
        self._bell = Doorbell(path)
        self._held = threading.local()

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` idle workers of this machine (at the end of ``held``)."""
        held = getattr(self._held, "n", None)
        if held is None:
            self._bell.ring(n)
        else:
            self._held.n = held + n

    def after_held(self, step: Callable[[], None]) -> None:
        """Run ``step`` once this thread's wake-ups are sent: when the ``held`` block
        ends, or now outside one. (An enqueue syncs its log this way, after the
        wake-up: workers claim its tasks while the disk syncs.)"""
        if getattr(self._held, "n", None) is None:
            step()
        else:
            self._held.after.append(step)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wake-ups of this thread inside the block are sent when it ends, then the
        steps ``after_held`` deferred run."""
        if getattr(self._held, "n", None) is not None:
            yield  # nested: the outer block sends them
            return
        self._held.n, self._held.after = 0, []
        try:
            yield
        finally:
            n, after = self._held.n, self._held.after
            self._held.n, self._held.after = None, []
            try:
                if n:
                    self._bell.ring(n)
            finally:
                for step in after:
                    step()

    def listen(self) -> DoorbellListener:
        """The pipe an idle worker of this process blocks on."""
        return DoorbellListener(self.path)
