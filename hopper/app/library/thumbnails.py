"""Thumbnails of library images, written under ``data/thumbnails/`` (never the library).

A thumbnail is named by the content's sha256, so it follows its item through a
reindex or a rename and is made once per content. It is written under a
temporary name and renamed into place, so a reader sees a complete file or none.
A file Pillow cannot decode gets no thumbnail: :func:`make_thumbnail` says so
with :class:`Undecodable`, and the caller records that on the item instead of
trying again.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image, ImageOps, UnidentifiedImageError, features

from hopper.app.defaults import THUMBNAIL_ORPHAN_AGE_S, THUMBNAIL_QUALITY, THUMBNAIL_SIZE

# WebP is about a third smaller than JPEG at the same quality; JPEG when Pillow lacks it.
FORMAT, SUFFIX, MIME = (("WEBP", ".webp", "image/webp") if features.check("webp")
                        else ("JPEG", ".jpg", "image/jpeg"))
PRUNE_BATCH = 500
_NAME = re.compile(r"([0-9a-f]{64})" + re.escape(SUFFIX))
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                  Image.DecompressionBombError)


class Undecodable(Exception):
    """Pillow cannot decode this file as an image (the message says why)."""


def thumbnail_path(folder: Path, sha256: str) -> Path:
    """Where the thumbnail of this content lives (sharded by the sha256's first byte)."""
    return folder / sha256[:2] / f"{sha256}{SUFFIX}"


def make_thumbnail(source: Path, target: Path, size: int = THUMBNAIL_SIZE) -> tuple[int, int]:
    """Write a thumbnail of the image at ``source`` to ``target``; return its size.

    EXIF orientation is applied, so a portrait photo shot sideways is upright.
    Raises Undecodable for a file that is not a decodable image; other OSErrors
    (the source vanished, a full disk) propagate so the task is retried.
    """
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        image = _decode(stream, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".thumb-", suffix=SUFFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            image.save(out, FORMAT, quality=THUMBNAIL_QUALITY)
        os.replace(temp, target)
    except BaseException:
        os.unlink(temp)
        raise
    return image.size


def _decode(stream, size: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # A corrupt EXIF block or a big image raises warnings; errors are what count.
            warnings.simplefilter("ignore")
            with Image.open(stream) as img:
                img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
                upright = ImageOps.exif_transpose(img)
                upright.thumbnail((size, size), Image.Resampling.LANCZOS)
                return _flatten(upright)
    except _DECODE_ERRORS as exc:
        raise Undecodable(f"{type(exc).__name__}: {exc}") from None


def _flatten(img: Image.Image) -> Image.Image:
    """RGB for the thumbnail format; transparency is laid on white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def prune_orphans(folder: Path, indexed: Callable[[list[str]], set[str]],
                  now: float | None = None) -> int:
    """Remove thumbnails whose content is no longer indexed, and temp files left by
    crashed writes, once older than THUMBNAIL_ORPHAN_AGE_S (younger ones may belong
    to an item being indexed right now); ``indexed(shas)`` says which of a
    batch of contents still have an item. Returns how many files went."""
    cutoff = (time.time() if now is None else now) - THUMBNAIL_ORPHAN_AGE_S
    removed = 0
    batch: list[tuple[str, Path]] = []
    for path in _old_files(folder, cutoff):
        match = _NAME.fullmatch(path.name)
        if match is None:
            removed += _unlink(path) if path.name.startswith(".thumb-") else 0
            continue
        batch.append((match.group(1), path))
        if len(batch) >= PRUNE_BATCH:
            removed += _prune_batch(batch, indexed)
            batch = []
    return removed + (_prune_batch(batch, indexed) if batch else 0)


def _old_files(folder: Path, cutoff: float) -> Iterable[Path]:
    if not folder.is_dir():
        return
    for shard in os.scandir(folder):
        if not shard.is_dir(follow_symlinks=False):
            continue
        for entry in os.scandir(shard.path):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    yield Path(entry.path)
            except FileNotFoundError:
                continue  # replaced or removed meanwhile


def _prune_batch(batch: list[tuple[str, Path]], indexed: Callable[[list[str]], set[str]]) -> int:
    keep = indexed([sha for sha, _ in batch])
    return sum(_unlink(path) for sha, path in batch if sha not in keep)


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
