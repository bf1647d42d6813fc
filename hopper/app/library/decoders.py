"""Decoding a library file into one upright picture, for its previews.

Images through Pillow (HEIC/HEIF through pillow-heif, registered by
:mod:`hopper.app.library.media`), videos through PyAV (a frame about a tenth of
the way in), PDFs through pypdfium2 (the first page). Each decoder is asked for a
picture at least ``size`` pixels on its longest side and decodes no more than
it needs: a JPEG is decoded at a reduced scale (``draft``), a PDF page is
rendered at that size. Anything the file's library cannot decode raises
:class:`Undecodable` with the reason.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from hopper.app.defaults import VIDEO_POSTER_AT
from hopper.app.library import media  # noqa: F401 (registers the HEIF opener)

_IMAGE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                 Image.DecompressionBombError)


class Undecodable(Exception):
    """The file's library cannot decode it into a picture (the message says why)."""


def decode(source: Path, mime: str, kind: str, size: int) -> Image.Image:
    """An upright picture of the file at ``source``, at least ``size`` on its longest side
    where the original is that large."""
    if kind == "video":
        return video_frame(source)
    if mime == media.MIME_PDF:
        return pdf_page(source, size)
    return image(source, size)


def image(source: Path, size: int) -> Image.Image:
    """An image, EXIF orientation applied; a JPEG decoded at the smallest scale that
    still gives ``size`` pixels on its longest side."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with warnings.catch_warnings():
            # A corrupt EXIF block or a big image raises warnings; errors are what count.
            warnings.simplefilter("ignore")
            with os.fdopen(fd, "rb") as stream, Image.open(stream) as img:
                w, h = img.size
                longest = max(w, h, 1)
                # draft() keeps both sides >= the request: ask for the aspect's own box.
                img.draft("RGB", (max(1, size * w // longest), max(1, size * h // longest)))
                upright = ImageOps.exif_transpose(img)
                upright.load()
                return upright
    except _IMAGE_ERRORS as exc:
        raise Undecodable(f"{type(exc).__name__}: {exc}") from None


def video_frame(source: Path, at: float = VIDEO_POSTER_AT) -> Image.Image:
    """The first frame at or after ``at`` (a fraction) of the video's duration, rotated
    as the container says it is displayed."""
    import av

    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise Undecodable("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            seconds = (container.duration or 0) / av.time_base * at
            if seconds > 0 and stream.time_base:
                container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
            frame = None
            for frame in container.decode(stream):
                if frame.time is None or frame.time >= seconds:
                    break
            if frame is None:
                raise Undecodable("the video has no decodable frame")
            picture = frame.to_image()
            rotation = getattr(frame, "rotation", 0) or 0
            return picture.rotate(rotation, expand=True) if rotation % 360 else picture
    except av.FFmpegError as exc:
        raise Undecodable(f"{type(exc).__name__}: {exc}") from None


def pdf_page(source: Path, size: int) -> Image.Image:
    """The first page rendered with ``size`` pixels on its longest side, on white."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(source))
    except pdfium.PdfiumError as exc:
        raise Undecodable(f"PdfiumError: {exc}") from None
    try:
        if len(pdf) == 0:
            raise Undecodable("the PDF has no pages")
        page = pdf[0]
        width, height = page.get_size()
        scale = size / max(width, height, 1.0)
        return page.render(scale=scale).to_pil()
    except pdfium.PdfiumError as exc:
        raise Undecodable(f"PdfiumError: {exc}") from None
    finally:
        pdf.close()
