"""What the media libraries read from a file: image orientation and GPS (Pillow, with
pillow-heif for HEIC/HEIF), video duration, size, codec, creation time and location
(PyAV), PDF page count and creation date (pypdfium2).

Every reader takes an open file descriptor and returns :class:`MediaFacts`; a file
its library cannot parse yields empty facts (the file is still ingested, dated by
its mtime), never an exception.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import warnings
from dataclasses import dataclass, field

import pillow_heif
from PIL import Image, features

log = logging.getLogger("hopper.library")

# HEIC/HEIF (the iPhone default) through libheif; AVIF too where Pillow has no own plugin.
pillow_heif.register_heif_opener()
if not features.check("avif") and hasattr(pillow_heif, "register_avif_opener"):
    # pillow-heif 1.x dropped its AVIF opener: Pillow 11.3+ decodes AVIF itself.
    pillow_heif.register_avif_opener()

TAG_ORIENTATION = 0x0112
TAG_GPS_IFD = 0x8825
TAG_EXIF_IFD = 0x8769
ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
VIDEO_TIME_KEYS = ("creation_time", "com.apple.quicktime.creationdate", "date")
VIDEO_LOCATION_KEYS = ("location", "com.apple.quicktime.location.ISO6709", "location-eng")
_ISO6709 = re.compile(r"([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")
_PDF_DATE = re.compile(r"D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?"
                       r"(?:(Z)|([+-])(\d{2})'?(\d{2})?'?)?")
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, KeyError, TypeError,
               Image.DecompressionBombError)
MIME_PDF = "application/pdf"
MAX_CAMERA_CHARS = 100       # a camera name longer than this is garbage in the EXIF


@dataclass
class MediaFacts:
    """What a media library told about a file; None where it did not say."""

    times: dict[str, dt.datetime] = field(default_factory=dict)  # capture time by source
    width: int | None = None
    height: int | None = None
    camera: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    duration: float | None = None   # seconds (videos)
    pages: int | None = None        # PDFs
    codec: str | None = None        # videos


def _stream(fd: int):
    """A file object on ``fd`` from offset 0 (a dup shares the offset, so rewind it)."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.fdopen(os.dup(fd), "rb")


# ---------------------------------------------------------------- images


def image_facts(fd: int) -> MediaFacts:
    """Displayed size (after EXIF orientation), EXIF times, camera and GPS of an image.

    Pillow reads headers only (pixel data is decoded lazily, and never here)."""
    facts = MediaFacts()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupt EXIF warns; what counts is what is read
            with _stream(fd) as stream, Image.open(stream) as img:
                facts.width, facts.height = img.size
                exif = img.getexif()
                if exif.get(TAG_ORIENTATION) in ROTATED_ORIENTATIONS:
                    facts.width, facts.height = facts.height, facts.width
                facts.latitude, facts.longitude = gps_position(exif.get_ifd(TAG_GPS_IFD))
                sub = exif.get_ifd(TAG_EXIF_IFD)
                for source, value in (("exif:DateTimeOriginal", sub.get(0x9003)),
                                      ("exif:DateTime", exif.get(0x0132))):
                    parsed = _exif_time(value)
                    if parsed is not None:
                        facts.times[source] = parsed
                facts.camera = camera_name(exif.get(0x010F), exif.get(0x0110))
    except _PIL_ERRORS as exc:
        log.debug("no image facts: %s: %s", type(exc).__name__, exc)
    return facts


def _exif_time(value) -> dt.datetime | None:
    return parse_exif_time(value) if isinstance(value, str) else None


def parse_exif_time(value: str) -> dt.datetime | None:
    """An EXIF ``YYYY:MM:DD HH:MM:SS`` value, or None when it is blank or invalid."""
    text = value.strip().strip("\x00").strip()
    for fmt, length in (("%Y:%m:%d %H:%M:%S", 19), ("%Y-%m-%d %H:%M:%S", 19),
                        ("%Y:%m:%d %H:%M", 16), ("%Y:%m:%d", 10)):
        try:
            parsed = dt.datetime.strptime(text[:length], fmt)
        except ValueError:
            continue
        return parsed if parsed.year >= 1900 else None
    return None


def camera_name(make: object, model: object) -> str | None:
    """``Make Model`` as one printable name ("Canon" + "Canon EOS 5D" → "Canon EOS 5D")."""
    parts = []
    for value in (make, model):
        text = _exif_text(value)
        if text:
            parts.append(text)
    if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
        parts = parts[1:]
    name = " ".join(parts)
    return name[:MAX_CAMERA_CHARS] or None


def _exif_text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable()).strip()


def _degrees(value) -> float:
    d, m, s = (float(v) for v in value)
    return d + m / 60 + s / 3600


def gps_position(gps) -> tuple[float | None, float | None]:
    """(latitude, longitude) in signed decimal degrees from an EXIF GPS IFD, or Nones."""
    try:
        lat, lon = _degrees(gps[2]), _degrees(gps[4])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if str(gps.get(1, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(3, "E")).upper().startswith("W"):
        lon = -lon
    return _valid_position(lat, lon)


def _valid_position(lat: float, lon: float) -> tuple[float | None, float | None]:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat, lon) == (0.0, 0.0):
        return None, None  # (0, 0) is what a phone without a fix writes
    return round(lat, 6), round(lon, 6)


def iso6709_position(text: str) -> tuple[float | None, float | None]:
    """(latitude, longitude) from QuickTime's ISO 6709 text, e.g. ``+48.8584+002.2945/``."""
    match = _ISO6709.match(text.strip())
    if match is None:
        return None, None
    return _valid_position(float(match.group(1)), float(match.group(2)))


# ---------------------------------------------------------------- video


def utc_text_time(text: str) -> dt.datetime | None:
    """A container's ISO 8601 time (``2021-05-01T10:20:30.000000Z``) as naive local
    wall-clock time, the convention of the index; None when unparsable."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone().replace(tzinfo=None)
    return when.replace(microsecond=0) if when.year >= 1971 else None  # 1970/1904: unset


def video_facts(fd: int) -> MediaFacts:
    """Duration, size, codec, creation time and location of a video, from its container."""
    import av

    facts = MediaFacts()
    try:
        with _stream(fd) as stream, av.open(stream, metadata_errors="ignore") as container:
            meta = {k.lower(): v for k, v in container.metadata.items()}
            if container.duration:
                facts.duration = round(container.duration / av.time_base, 3)
            video = next(iter(container.streams.video), None)
            if video is not None:
                meta = {**{k.lower(): v for k, v in video.metadata.items()}, **meta}
                facts.width = video.codec_context.width or None
                facts.height = video.codec_context.height or None
                facts.codec = video.codec_context.name
                if facts.duration is None and video.duration and video.time_base:
                    facts.duration = round(float(video.duration * video.time_base), 3)
    except (av.FFmpegError, OSError, ValueError) as exc:
        log.info("unreadable video container (%s: %s)", type(exc).__name__, exc)
        return facts
    for key in VIDEO_TIME_KEYS:
        when = utc_text_time(meta[key.lower()]) if key.lower() in meta else None
        if when is not None:
            facts.times["video:creation_time"] = when
            break
    for key in VIDEO_LOCATION_KEYS:
        if key.lower() in meta:
            facts.latitude, facts.longitude = iso6709_position(meta[key.lower()])
            if facts.latitude is not None:
                break
    return facts


# ---------------------------------------------------------------- PDF


def pdf_time(text: str) -> dt.datetime | None:
    """A PDF date (``D:20210304050607+01'00'``) as naive local wall-clock time."""
    match = _PDF_DATE.match(text.strip())
    if match is None:
        return None
    defaults = (0, 1, 1, 0, 0, 0)
    parts = [int(p) if p else d for p, d in zip(match.groups()[:6], defaults, strict=True)]
    try:
        year, month, day, hour, minute, second = parts
        when = dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    if match.group(7) or match.group(8):
        sign = -1 if match.group(8) == "-" else 1
        offset = dt.timedelta(hours=int(match.group(9) or 0), minutes=int(match.group(10) or 0))
        when = (when - sign * offset).replace(tzinfo=dt.timezone.utc)
        when = when.astimezone().replace(tzinfo=None)
    return when if when.year >= 1971 else None


def pdf_facts(fd: int) -> MediaFacts:
    """Page count and creation date of a PDF (read through the file, not into memory)."""
    import pypdfium2 as pdfium

    facts = MediaFacts()
    try:
        with _stream(fd) as stream:
            pdf = pdfium.PdfDocument(stream)
            try:
                facts.pages = len(pdf)
                created = pdf.get_metadata_dict().get("CreationDate") or ""
            finally:
                pdf.close()
    except (pdfium.PdfiumError, OSError, ValueError) as exc:
        log.info("unreadable PDF (%s: %s)", type(exc).__name__, exc)
        return facts
    when = pdf_time(created) if created else None
    if when is not None:
        facts.times["pdf:CreationDate"] = when
    return facts


def facts_for(fd: int, mime: str, kind: str) -> MediaFacts:
    """The facts of whatever this content is (empty for kinds with none)."""
    if kind == "image":
        return image_facts(fd)
    if kind == "video":
        return video_facts(fd)
    if mime == MIME_PDF:
        return pdf_facts(fd)
    return MediaFacts()
