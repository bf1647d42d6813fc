"""The inbox side of the pipeline: which paths belong to it, walking it, and the
``library.ingest`` request (with its unique key) for a file found there.

Both the watcher and ``library.scan`` build requests here, so a file seen by
both gets the same unique key and is enqueued once while unfinished.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Iterator

from hopper.app.settings import Settings
from hopper.app.watch.ignores import IgnoreRules, holds_ignored


class OutsideInbox(ValueError):
    """A path given to library.ingest that is not inside library.inbox."""


def resolve_source(inbox: Path, path: str | os.PathLike) -> Path:
    """The absolute path of a file in the inbox; OutsideInbox for anything else.

    ``..`` is resolved lexically and the folders above the file must not be
    symlinks leading elsewhere; the file itself is not followed (it may be a
    symlink, which is quarantined, not read).
    """
    candidate = Path(os.path.normpath(inbox / path))
    real_inbox = os.path.realpath(inbox)
    if os.path.commonpath([str(inbox), str(candidate)]) != str(inbox) or candidate == inbox:
        raise OutsideInbox(f"{os.fsdecode(path)!r} is not inside the inbox {inbox}")
    real_parent = os.path.realpath(candidate.parent)
    if os.path.commonpath([real_inbox, real_parent]) != real_inbox:
        raise OutsideInbox(f"{os.fsdecode(path)!r} is reached through a symlink leaving the inbox")
    return candidate


def printable(text: str | os.PathLike) -> str:
    """A path or message safe for logs, the database and reason files: bytes that are
    not UTF-8 (kept by Python as surrogates) are shown as ``\\xNN`` escapes."""
    return os.fspath(text).encode("utf-8", "backslashreplace").decode("utf-8")


def relative(inbox: Path, path: Path) -> str:
    """``path`` relative to the inbox, '/'-separated."""
    return path.relative_to(inbox).as_posix()


def excluded_folders(settings: Settings) -> set[str]:
    """Folders inside the inbox that are not input: the library and the quarantine
    when someone placed them there (their files are our own output)."""
    return {os.path.normpath(p) for p in (settings.library_root, settings.quarantine)}


def ignored(path: Path, excluded: set[str]) -> bool:
    """True for paths the pipeline itself writes: the library and quarantine folders
    when they sit inside the inbox. Nothing else is skipped, whatever its name: our
    temp files only ever live in the library folder, locks in the data folder."""
    text = os.path.normpath(path)
    return any(text == folder or text.startswith(folder + os.sep) for folder in excluded)


def inbox_rules(settings: Settings) -> IgnoreRules:
    """The inbox's ignores: the built-in set plus ``library.ignore``."""
    return IgnoreRules(settings.inbox, settings.library_ignore)


def walk(folder: Path, excluded: set[str],
         rules: IgnoreRules | None = None) -> Iterator[tuple[Path, os.stat_result]]:
    """Every non-folder entry below ``folder`` with its lstat; symlinks are listed,
    never followed. Entries that vanish while walking are skipped (moved away); a
    sub-folder that cannot be listed is itself listed, so it is quarantined, not skipped.
    Paths ``rules`` ignore are not listed (nor is anything below an ignored folder)."""
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        except PermissionError:
            if current == folder:
                raise
            yield current, os.lstat(current)
            continue
        for entry in entries:
            path = Path(entry.path)
            if ignored(path, excluded):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if rules is not None and rules.ignores(path, is_dir):
                continue
            if is_dir:
                stack.append(path)
            else:
                yield path, st


def unique_key(rel: str, st: os.stat_result) -> str:
    """``library.ingest`` unique key: the same file in the same state is queued once."""
    return f"library.ingest:{printable(rel)}:{st.st_size}:{st.st_mtime_ns}"


def ingest_request(inbox: Path, path: Path, st: os.stat_result,
                   parent_id: int | None = None) -> dict:
    """The enqueue request (for ``enqueue_many``) that ingests one inbox file."""
    rel = relative(inbox, path)
    request: dict[str, Any] = {"name": "library.ingest", "args": {"path": rel},
               "unique_key": unique_key(rel, st)}
    if parent_id is not None:
        request["parent_id"] = parent_id
    return request


def prune_empty_folders(inbox: Path, excluded: set[str], older_than: float, now: float,
                        rules: IgnoreRules) -> int:
    """Remove empty sub-folders of the inbox untouched for ``older_than`` seconds
    (a folder someone is about to copy into is younger than that); a folder the
    inbox's rules ignore (a sync tool's marker, a user's pattern) is never removed."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(inbox, topdown=False):
        path = Path(dirpath)
        if path == inbox or ignored(path, excluded) or filenames or dirnames and any(
                (path / d).exists() for d in dirnames):
            continue
        if rules.ignores(path, True):
            continue
        try:
            if now - os.lstat(path).st_mtime >= older_than:
                os.rmdir(path)
                removed += 1
        except OSError:
            continue  # not empty any more, or already gone: leave it
    return removed


def remove_emptied_parents(inbox: Path, source: Path, rules: IgnoreRules) -> int:
    """After ``source`` left the inbox, remove the folders above it that are now
    empty, up to (never including) the inbox; a folder holding anything, an
    ignored file included, stays. How many were removed."""
    removed = 0
    folder = source.parent
    while folder != inbox and inbox in folder.parents:
        if rules.ignores(folder, True) or holds_ignored(folder, rules):
            break
        try:
            os.rmdir(folder)
        except OSError:
            break  # not empty (or gone): the folders above it are not empty either
        removed += 1
        folder = folder.parent
    return removed
