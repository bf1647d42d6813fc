"""Which paths of a watched folder are never input: the built-in ignores plus the
user's own, as gitignore-style patterns (``pathspec``).

The built-in set is the names phones, NAS boxes, sync tools and browsers leave
behind. An ignored path is left exactly where it is: nothing that reads this
module may move, rename, remove or quarantine it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pathspec

BUILTIN_IGNORES: tuple[str, ...] = (
    ".DS_Store", "._*", ".AppleDouble/", ".localized", "@eaDir/", "#recycle/", "#snapshot/",
    "Thumbs.db", "desktop.ini", ".stfolder/", ".stversions/", ".stignore", ".sync/",
    "~syncthing~*", ".syncthing.*", ".Trash-*/", "lost+found/", "*.part", "*.partial",
    "*.crdownload", "*.download", "*.tmp", ".~lock.*#", "~$*",
)


class BadPattern(ValueError):
    """An ignore pattern pathspec cannot compile; the message names it."""


class IgnoreRules:
    """The built-in ignores plus ``extra`` patterns, matched relative to ``folder``."""

    def __init__(self, folder: Path, extra: Iterable[str] = ()):
        self.folder = Path(folder)
        self.patterns = (*BUILTIN_IGNORES, *extra)
        # In gitignore syntax a leading '#' starts a comment: the built-in names that
        # begin with one (Synology's #recycle) are escaped; the user's lines are theirs.
        lines = [("\\" + p if p.startswith("#") else p) for p in BUILTIN_IGNORES]
        try:
            self._spec = pathspec.GitIgnoreSpec.from_lines([*lines, *extra])
        except (ValueError, TypeError) as exc:
            raise BadPattern(f"ignore: {exc}") from exc

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the folder, '/'-separated; None outside it."""
        try:
            return Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return None

    def ignores(self, path: Path, is_dir: bool = False) -> bool:
        """True when ``path`` (inside the folder) or any folder above it is ignored."""
        rel = self.relative(path)
        if rel is None or rel in ("", "."):
            return False
        # A folder pattern ("@eaDir/") matches the folder's own path with a slash, and
        # every path below it through its parent.
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self._spec.match_file("/".join(parts[:depth]) + "/"):
                return True
        return self._spec.match_file(rel + "/" if is_dir else rel)


def check_patterns(patterns: object, key: str) -> tuple[str, ...]:
    """``patterns`` as a tuple of strings, or ValueError naming ``key``."""
    if patterns is None:
        return ()
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"{key}: expected a list of gitignore-style patterns")
    try:
        pathspec.GitIgnoreSpec.from_lines(patterns)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{key}: {exc}") from exc
    return tuple(patterns)


def holds_ignored(folder: str | os.PathLike, rules: IgnoreRules) -> bool:
    """True when anything below ``folder`` is ignored (such a folder is never removed)."""
    for dirpath, dirnames, filenames in os.walk(os.fspath(folder)):
        for name in (*dirnames, *filenames):
            if rules.ignores(Path(dirpath) / name, name in dirnames):
                return True
    return False
