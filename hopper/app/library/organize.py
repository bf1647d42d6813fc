"""Where a file goes in the library, and putting it there safely.

Rules: the rendered path stays inside ``library.root`` (no ``..``, no absolute
path, no symlinked folder on the way), an existing file is never replaced (a
collision gets a ``-1``, ``-2`` … suffix), and a file appears under its final
name only complete and fsynced: it is either hard-linked from the opened, hashed
file (same filesystem) or copied from it to a temporary name in the target folder
first. A new folder's name is fsynced into its parent.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

from hopper.app.library.identify import Identity

TEMP_PREFIX = ".hopper-tmp-"
MAX_NAME_BYTES = 200          # leaves room for a suffix within NAME_MAX (255)
MAX_COLLISIONS = 10_000
COPY_BUFFER = 1 << 20       # 1 MiB reads when a copy is needed
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + "[0-9a-f]{32}")


class UnsafeName(ValueError):
    """A name or layout that cannot be stored inside the library root."""


def escapes(name: str) -> bool:
    """True for a file name crafted to climb out of a folder (``..`` as a component,
    with ``/`` or ``\\`` as separator) or one that is only dots."""
    parts = re.split(r"[/\\]", name)
    return any(part == ".." for part in parts) or set(name.strip()) <= {"."}


def sanitize_name(name: str) -> str:
    """A file name safe to store: printable, no separators, not hidden, bounded length.

    Raises UnsafeName when the name tries to escape or cannot be represented
    as text (bytes that are not valid UTF-8).
    """
    if escapes(name):
        raise UnsafeName(f"the name {name!r} tries to escape the library root")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeName(f"the name {name!r} is not valid UTF-8 and cannot be stored") from None
    clean = unicodedata.normalize("NFC", _UNSAFE_CHARS.sub("_", name)).strip().lstrip(".")
    clean = clean.strip() or "file"
    stem, ext = _split_ext(clean)
    while len((stem + ext).encode("utf-8")) > MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return (stem + ext) if stem else "file" + ext[:MAX_NAME_BYTES - 4]


def _split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        return name, ""
    return stem, "." + ext


def render(layout: str, identity: Identity, name: str) -> PurePosixPath:
    """The path relative to the library root for a file; UnsafeName if it would escape."""
    values = {"kind": identity.kind, "year": f"{identity.taken_at.year:04d}",
              "month": f"{identity.taken_at.month:02d}", "day": f"{identity.taken_at.day:02d}",
              "name": sanitize_name(name)}
    try:
        rendered = layout.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise UnsafeName(f"library.layout {layout!r} cannot be rendered: {exc}") from None
    return check_relative(rendered)


def check_relative(rendered: str) -> PurePosixPath:
    """Validate a relative library path: not absolute, no ``..``, no empty part."""
    path = PurePosixPath(rendered)
    if path.is_absolute() or rendered.startswith("/"):
        raise UnsafeName(f"{rendered!r} is an absolute path;"
                         " library paths are relative to the root")
    if any(part in ("..", "") for part in rendered.split("/")) or not path.parts:
        raise UnsafeName(f"{rendered!r} would leave the library root")
    return path


def ensure_folder(root: Path, relative: PurePosixPath) -> Path:
    """Create ``root/relative`` (a folder) refusing symlinks anywhere below the root."""
    folder = root
    for part in relative.parts:
        folder = folder / part
        try:
            os.mkdir(folder, 0o755)
        except FileExistsError:
            pass  # made earlier or by a peer: checked just below either way
        else:
            fsync_dir(folder.parent)  # the new folder's name survives a power cut
        if folder.is_symlink() or not folder.is_dir():
            raise UnsafeName(f"{folder} is a symlink or not a folder; refusing to write through it")
    real_root, real = os.path.realpath(root), os.path.realpath(folder)
    if os.path.commonpath([real_root, real]) != real_root:
        raise UnsafeName(f"{folder} resolves outside the library root")
    return folder


def candidates(name: str):
    """``name``, then ``name-1``, ``name-2`` … with the extension kept."""
    yield name
    stem, ext = _split_ext(name)
    for n in range(1, MAX_COLLISIONS):
        yield f"{stem}-{n}{ext}"
    raise UnsafeName(f"more than {MAX_COLLISIONS} files named {name!r} in one folder")


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a folder's entries (a new or removed name) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """True for exactly the names :func:`temp_path` makes."""
    return _TEMP_NAME.fullmatch(name) is not None


def temp_path(folder: Path, sha256: str) -> Path:
    """The temporary name a copy of this content uses in ``folder``; one per content,
    so a retry after a crash finds and replaces its own leftover."""
    return folder / f"{TEMP_PREFIX}{sha256[:32]}"


class ContentChanged(Exception):
    """The content read through the descriptor no longer has the hash it was identified by."""


def place(source_fd: int, source: Path, folder: Path, name: str, sha256: str) -> Path:
    """Give the content behind ``source_fd`` a new, unused name in ``folder``; return it.

    What lands in the library is always the inode that was opened and hashed, never
    whatever the inbox name ``source`` points to by now (a sync tool may have
    replaced the file by rename since). The content first gets the temporary name:
    a hard link of the inbox name, kept only if it is that same inode (no copy,
    same filesystem), else a copy read from the descriptor, hashed on the way and
    refused unless it matches ``sha256``. Only then is it linked to the first free
    final name (atomic, never replaces) and the temporary name removed, so a final
    name never shows other content, even for an instant. The inbox name is left
    for the caller to remove once the index says so.
    """
    os.fsync(source_fd)  # the writer may never have flushed: make the content durable first
    temp = temp_path(folder, sha256)
    try:
        os.unlink(temp)  # a leftover of a crashed attempt at this same content
    except FileNotFoundError:
        pass  # no leftover: the usual case
    if not _link_opened(source, temp, source_fd):
        _copy_opened(source_fd, temp, sha256)
    try:
        final = _link_first_free(temp, folder, name)
    finally:
        os.unlink(temp)
    fsync_dir(folder)
    return final


def _link_opened(source: Path, temp: Path, fd: int) -> bool:
    """Hard-link the inbox name to ``temp`` if it still names the opened inode."""
    try:
        _link_by_name(source, temp)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.ENOENT):
            return False  # another filesystem, links refused, or the name is gone: copy
        raise
    found, opened = os.lstat(temp), os.fstat(fd)
    if (found.st_dev, found.st_ino) != (opened.st_dev, opened.st_ino):
        os.unlink(temp)  # the inbox name was replaced after it was opened: not our content
        return False
    return True


def _link_by_name(source: Path, target: Path) -> None:
    os.link(source, target, follow_symlinks=False)


def _link_first_free(source: Path, folder: Path, name: str) -> Path:
    for candidate in candidates(name):
        target = folder / candidate
        try:
            os.link(source, target, follow_symlinks=False)
            return target
        except FileExistsError:
            continue
    raise AssertionError("unreachable: candidates() raises when exhausted")


def _copy_opened(source_fd: int, temp: Path, sha256: str) -> None:
    """Copy the opened file to ``temp`` (fsynced, its mtime kept); ContentChanged
    (and no ``temp``) if what was read is not the content that was identified."""
    out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(os.dup(source_fd), "rb") as src, os.fdopen(out, "wb", closefd=False) as dst:
            src.seek(0)
            copied = _copy_hashing(src, dst)
            dst.flush()
            st = os.fstat(source_fd)  # keep the capture-time fallback (mtime) for reindex
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(out)
    finally:
        os.close(out)
    if copied != sha256:
        os.unlink(temp)
        raise ContentChanged(f"the file changed while it was copied (sha256 {copied},"
                             f" identified as {sha256})")


def _copy_hashing(src, dst) -> str:
    """Copy one stream to another; the sha256 of what was copied."""
    digest = hashlib.sha256()
    while chunk := src.read(COPY_BUFFER):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()
