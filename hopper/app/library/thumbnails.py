"""Thumbnails and large previews of library items (images, videos, PDFs), written
under ``data/thumbnails/`` (never the library).

Both are named by the content's sha256, so they follow their item through a
reindex or a rename and are made once per content, from one decode. Each is
written under a temporary name and renamed into place, so a reader sees a
complete file or none. A file that cannot be decoded gets none:
:func:`make_previews` says so with :class:`Undecodable`, and the caller records
that (with the reason) on the item instead of trying again.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image, features

from hopper.app.defaults import (
    PREVIEW_SIZE,
    THUMBNAIL_ORPHAN_AGE_S,
    THUMBNAIL_QUALITY,
    THUMBNAIL_SIZE,
)
from hopper.app.library.decoders import Undecodable, decode  # noqa: F401 (raised to callers)

# WebP is about a third smaller than JPEG at the same quality; JPEG when Pillow lacks it.
FORMAT, SUFFIX, MIME = (("WEBP", ".webp", "image/webp") if features.check("webp")
                        else ("JPEG", ".jpg", "image/jpeg"))
PREVIEW_TAG = "-large"
PRUNE_BATCH = 500
_NAME = re.compile(r"([0-9a-f]{64})(?:" + re.escape(PREVIEW_TAG) + ")?" + re.escape(SUFFIX))


def thumbnail_path(folder: Path, sha256: str) -> Path:
    """Where the thumbnail of this content lives (sharded by the sha256's first byte)."""
    return folder / sha256[:2] / f"{sha256}{SUFFIX}"


def preview_path(folder: Path, sha256: str) -> Path:
    """Where the large preview (PREVIEW_SIZE) of this content lives, beside its thumbnail."""
    return folder / sha256[:2] / f"{sha256}{PREVIEW_TAG}{SUFFIX}"


def make_previews(source: Path, mime: str, kind: str, thumb: Path, preview: Path,
                  size: int = THUMBNAIL_SIZE, large: int = PREVIEW_SIZE) -> tuple[int, int]:
    """Write the thumbnail and the large preview of the file at ``source`` from one
    decode; return the preview's size.

    The picture is upright (EXIF orientation, a video's rotation). Transparency is
    kept (WebP has alpha), so a page can show it on a checkerboard. Raises
    Undecodable for a file its library cannot decode; other OSErrors (the source
    vanished, a full disk) propagate so the task is retried.
    """
    picture = decode(source, mime, kind, large)
    picture.thumbnail((large, large), Image.Resampling.LANCZOS)
    picture = _for_format(picture)
    small = picture.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    _write(small, thumb)
    _write(picture, preview)  # last: its presence says both are complete
    return picture.size


def _write(image: Image.Image, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".thumb-", suffix=SUFFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            image.save(out, FORMAT, quality=THUMBNAIL_QUALITY)
        os.replace(temp, target)
    except BaseException:
        os.unlink(temp)
        raise


def _for_format(img: Image.Image) -> Image.Image:
    """RGB, or RGBA where the picture has transparency and the format keeps it
    (WebP); a JPEG fallback gets transparency laid on white."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha and FORMAT == "WEBP":
        return img.convert("RGBA")
    if has_alpha:
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
