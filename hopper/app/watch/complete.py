"""Is a file complete, or is some process on this machine still writing it?

Linux answers through a read lease: ``fcntl(fd, F_SETLEASE, F_RDLCK)`` on a
read-only descriptor fails with EAGAIN while any process holds the file open for
writing. The lease is released at once; taking one needs the file's owner (or
CAP_LEASE), so where it is not permitted, or on network shares, settle time
alone decides.
"""
from __future__ import annotations

import errno
import fcntl
import os

_SETLEASE = getattr(fcntl, "F_SETLEASE", None)


def open_for_writing(path: str | os.PathLike) -> bool | None:
    """True while a writer holds ``path`` open, False when none does, None when this
    machine cannot tell (no lease support, not permitted, or the file is gone)."""
    if _SETLEASE is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.fcntl(fd, _SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EBUSY):
                return True
            return None  # EACCES/EPERM (not the owner), EINVAL (filesystem without leases)
        fcntl.fcntl(fd, _SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)
