"""Identify a file: sha256, size, MIME type from content, capture time, dimensions,
camera, GPS position, and a video's duration and codec or a PDF's page count.

Everything is read from an already-open file descriptor, so the file that is
hashed is the file that is later moved (no re-open by path in between).
The MIME sniffing and EXIF parsers only see the first ``HEADER_BYTES``; the media
libraries (:mod:`hopper.app.library.media`) read container headers from the file.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
from dataclasses import dataclass

import exifread
import filetype

from hopper.app.library.media import camera_name, facts_for, parse_exif_time  # noqa: F401 (API)

log = logging.getLogger("hopper.library")

HASH_BUFFER = 1 << 20        # 1 MiB: large reads keep sha256 near sha256sum's speed
HEADER_BYTES = 256 * 1024    # EXIF (APP1 <= 64 KiB) and image headers live here
FUTURE_SLACK = dt.timedelta(days=1)  # EXIF has no time zone: allow a day of skew
EXIF_TAGS = (("EXIF DateTimeOriginal", "exif:DateTimeOriginal"),
             ("Image DateTime", "exif:DateTime"))
# Capture-time sources, most trusted first; the file's mtime comes after all of them.
TIME_SOURCES = ("exif:DateTimeOriginal", "exif:DateTime", "video:creation_time",
                "pdf:CreationDate")
EXIF_CAMERA_TAGS = ("Image Make", "Image Model")

# exifread reports every oddity of a malformed file as a warning; we handle
# its failures ourselves and only want real errors in the daemon's log.
logging.getLogger("exifread").setLevel(logging.ERROR)

_DOCUMENT_MIMES = {
    "application/pdf", "application/rtf", "application/epub+zip", "application/msword",
    "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation", "application/postscript",
}


@dataclass(frozen=True)
class Identity:
    """What the pipeline knows about a file's content."""

    sha256: str
    size: int
    mime: str
    kind: str
    taken_at: dt.datetime          # naive local wall-clock time, as cameras record it
    taken_at_source: str           # one of TIME_SOURCES | mtime | ingest
    width: int | None = None       # as displayed (EXIF orientation applied)
    height: int | None = None
    camera: str | None = None      # EXIF Make and Model
    latitude: float | None = None  # GPS position, signed decimal degrees
    longitude: float | None = None
    duration: float | None = None  # seconds (videos)
    pages: int | None = None       # page count (PDFs)
    codec: str | None = None       # video codec (e.g. h264, hevc)


def sha256_fd(fd: int, buffer_size: int = HASH_BUFFER) -> tuple[str, int]:
    """Stream the file from offset 0 through sha256 with one reused buffer: (hex, bytes read)."""
    digest = hashlib.sha256()
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(os.dup(fd), "rb", buffering=0) as stream:
        while True:
            n = stream.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def read_header(fd: int, limit: int = HEADER_BYTES) -> bytes:
    """The first ``limit`` bytes (fewer for a short file), without moving the offset."""
    chunks, offset = [], 0
    while offset < limit:
        chunk = os.pread(fd, limit - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def sniff_mime(header: bytes) -> str:
    """MIME type from magic numbers; text is recognised as UTF-8 without NUL bytes."""
    kind = filetype.guess(header[:8192]) if header else None
    if kind is not None:
        return kind.mime
    if header and _looks_like_text(header):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(header: bytes) -> bool:
    sample = header[:65536]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        return exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data"
    return True


def kind_of(mime: str) -> str:
    """The layout's ``{kind}``: image, video, audio, document or other."""
    major = mime.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major
    if major == "text" or mime in _DOCUMENT_MIMES:
        return "document"
    return "other"


@dataclass(frozen=True)
class ExifInfo:
    """What the EXIF of a file's header tells: capture times by source, and the camera."""

    times: dict[str, dt.datetime]
    camera: str | None = None


def exif_info(header: bytes) -> ExifInfo:
    """Capture times and camera found in the EXIF of a file's header.

    A malformed or truncated EXIF block yields what could be read, never an
    exception: the file is still ingested with its mtime.
    """
    try:
        tags = exifread.process_file(io.BytesIO(header), details=False, extract_thumbnail=False)
    except Exception as exc:  # exifread raises many types on hostile input; the file still counts
        log.info("unreadable EXIF (%s: %s); using the next capture-time source",
                 type(exc).__name__, exc)
        return ExifInfo({})
    found = {}
    for tag, source in EXIF_TAGS:
        value = tags.get(tag)
        if value is None:
            continue
        parsed = parse_exif_time(str(value))
        if parsed is not None:
            found[source] = parsed
    camera = camera_name(*(str(tags[t]) if t in tags else None for t in EXIF_CAMERA_TAGS))
    return ExifInfo(found, camera)


def capture_time(exif: dict[str, dt.datetime], mtime: float,
                 now: dt.datetime | None = None) -> tuple[dt.datetime, str]:
    """The first trustworthy of TIME_SOURCES (EXIF DateTimeOriginal, EXIF DateTime, a
    video's creation_time, a PDF's CreationDate), then the mtime.

    A time in the future is a wrong camera clock or a bad copy, not a capture
    time; if every source is in the future the ingest time is used.
    """
    now = now or dt.datetime.now()
    limit = now + FUTURE_SLACK
    for source in TIME_SOURCES:
        when = exif.get(source)
        if when is not None and when <= limit:
            return when, source
    modified = dt.datetime.fromtimestamp(mtime)
    if modified <= limit:
        return modified.replace(microsecond=0), "mtime"
    return now.replace(microsecond=0), "ingest"


def identify_fd(fd: int, mtime: float) -> Identity:
    """Identify an open regular file (the caller has checked it is one)."""
    sha, size = sha256_fd(fd)
    header = read_header(fd)
    mime = sniff_mime(header)
    kind = kind_of(mime)
    facts = facts_for(fd, mime, kind)
    times, camera = dict(facts.times), facts.camera
    if kind == "image" and not times:
        # Pillow read no capture time: exifread reads some EXIF Pillow rejects. Only then,
        # as it is slow (pure Python, and it scans a malformed block byte by byte).
        exif = exif_info(header)
        times.update(exif.times)
        camera = camera or exif.camera
    taken_at, source = capture_time(times, mtime)
    return Identity(sha, size, mime, kind, taken_at, source, facts.width, facts.height, camera,
                    facts.latitude, facts.longitude, facts.duration, facts.pages, facts.codec)


def identify_path(path: str | os.PathLike) -> Identity:
    """Identify a file by path (reindex, tests); symlinks are not followed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return identify_fd(fd, os.fstat(fd).st_mtime)
    finally:
        os.close(fd)
