"""Real test files for the library pipeline: JPEGs with EXIF dates (Pillow), PNGs, PDFs, text."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from PIL import Image

TAG_DATETIME = 0x0132
TAG_EXIF_IFD = 0x8769
TAG_DATETIME_ORIGINAL = 0x9003


def jpeg_bytes(seed: int, original: str | None = None, datetime: str | None = None,
               size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG whose pixels depend on ``seed``, with optional EXIF dates ("YYYY:MM:DD HH:MM:SS")."""
    import io

    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    img.putpixel((seed % size[0], 0), (255 - seed % 256, 0, 0))
    exif = Image.Exif()
    if datetime:
        exif[TAG_DATETIME] = datetime
    if original:
        exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes() if (datetime or original) else b"", quality=90)
    return out.getvalue()


def png_bytes(seed: int, size: tuple[int, int] = (32, 24)) -> bytes:
    import io

    img = Image.new("RGB", size, ((seed * 53) % 256, (seed * 7) % 256, (seed * 29) % 256))
    img.putpixel((seed % size[0], seed % size[1]), (1, 2, 3))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def pdf_bytes(seed: int) -> bytes:
    """A minimal valid one-page PDF with unique text."""
    text = f"Hopper test document {seed}".encode()
    stream = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
               + b"\nendstream"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return out


def text_bytes(seed: int) -> bytes:
    return f"note {seed}\n".encode() * (1 + seed % 7)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def set_mtime(path: Path, when: dt.datetime) -> None:
    ts = when.timestamp()
    os.utime(path, (ts, ts))


def drop(inbox: Path, name: str, data: bytes, mtime: dt.datetime | None = None,
         staging: Path | None = None) -> Path:
    """Put a complete file into the inbox: written in ``staging`` and moved in when
    given (as a copy tool finishing with a rename does), else written in place."""
    target = inbox / name
    target.parent.mkdir(parents=True, exist_ok=True)
    first = (staging / name.replace("/", "_")) if staging else target
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_bytes(data)
    if mtime is not None:
        set_mtime(first, mtime)
    if staging:
        os.rename(first, target)
    return target


def files_under(folder: Path) -> list[Path]:
    """Every non-folder entry below ``folder`` (symlinks and hidden files included)."""
    out = []
    for dirpath, _, filenames in os.walk(folder):
        out += [Path(dirpath) / f for f in filenames]
    return sorted(out)


TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_ORIENTATION = 0x0112


def photo_bytes(seed: int, size: tuple[int, int] = (800, 600), original: str | None = None,
                make: str | None = None, model: str | None = None,
                orientation: int | None = None) -> bytes:
    """A camera-like JPEG: a left-to-right gradient (so orientation shows), EXIF capture
    time, Make, Model and Orientation when given."""
    import io

    img = Image.linear_gradient("L").resize(size).convert("RGB")
    img.putpixel((seed % size[0], 0), (seed % 256, 255 - seed % 256, 7))
    exif = Image.Exif()
    for tag, value in ((TAG_MAKE, make), (TAG_MODEL, model), (TAG_ORIENTATION, orientation)):
        if value is not None:
            exif[tag] = value
    if original:
        exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=85)
    return out.getvalue()


def broken_jpeg_bytes(seed: int) -> bytes:
    """JPEG magic and a header, then noise: sniffed as an image, not decodable."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + \
        bytes((seed * 31 + i * 17) % 251 for i in range(4096))


_PALETTES = [((255, 183, 94), (214, 95, 84), (46, 79, 79)),
             ((135, 206, 235), (250, 250, 210), (34, 139, 34)),
             ((25, 25, 112), (255, 140, 0), (47, 47, 47)),
             ((176, 224, 230), (255, 255, 255), (70, 130, 180)),
             ((255, 218, 185), (255, 105, 97), (139, 69, 19)),
             ((72, 61, 139), (221, 160, 221), (25, 25, 25))]


def scene_bytes(seed: int, size: tuple[int, int] = (1200, 800), original: str | None = None,
                make: str | None = None, model: str | None = None) -> bytes:
    """A colourful landscape-like JPEG (sky gradient, sun, hills) with EXIF, for screenshots."""
    import io

    from PIL import ImageDraw

    top, horizon, ground = _PALETTES[seed % len(_PALETTES)]
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        fill = tuple(int(a + (b - a) * t) for a, b in zip(top, horizon, strict=True))
        draw.line([(0, y), (w, y)], fill=fill)
    r = min(w, h) // 8
    cx, cy = w * (0.2 + 0.6 * ((seed * 37) % 100) / 100), h * 0.45
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 244, 214))
    for layer in range(3):
        shade = tuple(max(0, c - 25 * layer) for c in ground)
        base = h * (0.6 + 0.12 * layer)
        points = [(0, h)] + [(x, base - (h / 10)
                              * abs(((x + seed * 97 + layer * 211) % 400) - 200) / 200)
                             for x in range(0, w + 40, 40)] + [(w, h)]
        draw.polygon(points, fill=shade)
    exif = Image.Exif()
    if make:
        exif[TAG_MAKE] = make
    if model:
        exif[TAG_MODEL] = model
    if original:
        exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=85)
    return out.getvalue()
