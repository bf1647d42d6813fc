"""Moving a file that cannot be ingested to ``library.quarantine``, with a reason.

The file keeps its name (a collision gets a suffix) and ``<name>.reason.txt``
beside it says why. The reason is written complete to a private draft first,
then hard-linked to the reason name: that link is an atomic, exclusive claim of
the name pair, so two quarantines of the same name at once take different
names, and nothing ever replaces an earlier quarantined file or its reason.
Only then is the file moved with a no-replace link. A crash in between leaves
the file in the inbox (retried, under the next free name) and at worst a reason
with no file beside it: nothing is ever lost.
Symlinks, FIFOs and other special files are moved as themselves, never opened.
"""
from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from hopper.app.library.inbox import printable
from hopper.app.library.organize import candidates, fsync_dir

log = logging.getLogger("hopper.library")

REASON_SUFFIX = ".reason.txt"
DRAFT_PREFIX = ".hopper-reason-"


def quarantine_name(name: str) -> str:
    """A storable version of any file name (undecodable bytes and separators replaced)."""
    safe = name.encode("utf-8", "backslashreplace").decode("utf-8")
    safe = re.sub(r"[\x00-\x1f\x7f/]", "_", safe).strip()
    if safe in ("", ".", ".."):
        safe = "file" + safe.replace(".", "_")
    return safe[:200]


def quarantine(source: Path, folder: Path, reason: str, relative: str | None = None) -> Path:
    """Move ``source`` into ``folder`` with a reason file; return where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    st = os.lstat(source)
    name = quarantine_name(os.path.basename(source))
    draft = _write_draft(folder, _reason_text(source, relative, reason, st))
    try:
        target = _move_under_free_name(source, folder, name, draft, st)
    finally:
        os.unlink(draft)
    fsync_dir(folder)
    try:
        fsync_dir(source.parent)
    except OSError as exc:
        log.warning("cannot fsync %s after quarantining: %s", printable(source.parent), exc)
    log.warning("quarantined %s as %s: %s", printable(source), printable(target),
                printable(reason))
    return target


def _move_under_free_name(source: Path, folder: Path, name: str, draft: Path,
                          st: os.stat_result) -> Path:
    for candidate in candidates(name):
        target = folder / candidate
        reason_path = target.with_name(target.name + REASON_SUFFIX)
        try:
            os.link(draft, reason_path)  # claims the pair; fails if the reason name is taken
        except FileExistsError:
            continue  # an earlier quarantine, or one running now, has this name
        try:
            _move_no_replace(source, target, st)
        except FileExistsError:
            os.unlink(reason_path)  # our own claim: a file without a reason holds the name
            continue
        except BaseException:
            os.unlink(reason_path)  # e.g. the source went away (moved by a peer): no stray reason
            raise
        return target
    raise AssertionError("unreachable: candidates() raises when exhausted")


def _reason_text(source: Path, relative: str | None, reason: str, st: os.stat_result) -> str:
    return (f"file: {quarantine_name(relative or source.name)}\n"
            f"quarantined at: {dt.datetime.now().isoformat(timespec='seconds')}\n"
            f"type: {_file_type(st)}, {st.st_size} bytes\n"
            f"reason: {printable(reason)}\n")


def _write_draft(folder: Path, text: str) -> Path:
    """The reason, complete and fsynced, under a private name in ``folder``."""
    fd, draft = tempfile.mkstemp(prefix=DRAFT_PREFIX, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(draft, 0o644)
    except BaseException:
        os.unlink(draft)
        raise
    return Path(draft)


def _file_type(st: os.stat_result) -> str:
    for test, label in ((stat.S_ISREG, "regular file"), (stat.S_ISLNK, "symlink"),
                        (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe"),
                        (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                        (stat.S_ISBLK, "block device")):
        if test(st.st_mode):
            return label
    return "unknown"


def _move_no_replace(source: Path, target: Path, st: os.stat_result) -> None:
    """Move one directory entry without replacing anything at ``target``."""
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(target)       # claims the name (FileExistsError if taken) …
        os.rename(source, target)  # … and rename may replace an empty folder: ours
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_across(source, target, st)
    os.unlink(source)


def _copy_across(source: Path, target: Path, st: os.stat_result) -> None:
    """The quarantine is on another filesystem: recreate the entry there."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(target, stat.S_IMODE(st.st_mode))
    elif stat.S_ISREG(st.st_mode):
        fd, temp = tempfile.mkstemp(prefix=DRAFT_PREFIX, suffix=".partial", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, temp, follow_symlinks=False)
            with open(temp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(temp, stat.S_IMODE(st.st_mode))
            os.link(temp, target)  # never replaces
        finally:
            os.unlink(temp)
    else:
        raise OSError(errno.EXDEV, f"cannot move a {_file_type(st)} across filesystems",
                      str(source))
