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
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
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
        draw.line([(0, y), (w, y)],
                  fill=tuple(int(a + (b - a) * t) for a, b in zip(top, horizon, strict=True)))
    r = min(w, h) // 8
    cx, cy = w * (0.2 + 0.6 * ((seed * 37) % 100) / 100), h * 0.45
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 244, 214))
    for layer in range(3):
        shade = tuple(max(0, c - 25 * layer) for c in ground)
        base = h * (0.6 + 0.12 * layer)
        points = [(0, h)] + [
            (x, base - (h / 10) * abs(((x + seed * 97 + layer * 211) % 400) - 200) / 200)
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


# ---------------------------------------------------------------- phone media
# HEIC, AVIF, MP4/MOV, multi-page PDFs, PNG with alpha and Word files, all made here.

TAG_GPS_IFD = 0x8825


def gps_exif(exif: Image.Exif, lat: float, lon: float) -> None:
    """Write a GPS position into ``exif`` as cameras do (degrees, minutes, seconds)."""
    from PIL.TiffImagePlugin import IFDRational

    def dms(value: float) -> tuple:
        value = abs(value)
        d = int(value)
        m = int((value - d) * 60)
        s = round(((value - d) * 60 - m) * 60 * 1000)
        return (IFDRational(d, 1), IFDRational(m, 1), IFDRational(s, 1000))

    gps = exif.get_ifd(TAG_GPS_IFD)
    gps.update({1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W",
                4: dms(lon)})


def camera_jpeg_bytes(seed: int, original: str, lat: float, lon: float,
                      size: tuple[int, int] = (640, 480), orientation: int = 6) -> bytes:
    """A phone-like JPEG: EXIF capture time, GPS position and an Orientation tag."""
    import io

    img = Image.linear_gradient("L").resize(size).convert("RGB")
    img.putpixel((seed % size[0], 0), (seed % 256, 3, 7))
    exif = Image.Exif()
    exif[TAG_ORIENTATION] = orientation
    exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    gps_exif(exif, lat, lon)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=85)
    return out.getvalue()


def _photo(seed: int, size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, ((seed * 53) % 256, 120, (seed * 29) % 256))
    from PIL import ImageDraw
    ImageDraw.Draw(img).ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4),
                                fill=(250, 200, 40))
    return img


def heic_bytes(seed: int, original: str, size: tuple[int, int] = (640, 480)) -> bytes:
    """An iPhone-like HEIC (written by pillow-heif) with an EXIF capture time."""
    import io

    import pillow_heif
    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    out = io.BytesIO()
    _photo(seed, size).save(out, "HEIF", exif=exif.tobytes(), quality=70)
    return out.getvalue()


def avif_writable() -> bool:
    """True when the installed Pillow (or pillow-heif) can write AVIF."""
    from PIL import features
    return bool(features.check("avif"))


def avif_bytes(seed: int, original: str, size: tuple[int, int] = (320, 240)) -> bytes:
    """An AVIF with an EXIF capture time (Pillow's own AVIF plugin)."""
    import io

    exif = Image.Exif()
    exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    out = io.BytesIO()
    _photo(seed, size).save(out, "AVIF", exif=exif.tobytes(), quality=60)
    return out.getvalue()


def video_bytes(seed: int, container: str = "mp4", creation_time: str | None = None,
                location: str | None = None, seconds: float = 2.0,
                size: tuple[int, int] = (320, 240), fps: int = 25) -> bytes:
    """An H.264 video written by PyAV (``container`` mp4 or mov) whose frames change
    colour over time, with the container's ``creation_time`` (ISO 8601, UTC) and
    QuickTime ``location`` (ISO 6709) when given."""
    import io

    import av
    from PIL import ImageDraw

    out = io.BytesIO()
    with av.open(out, "w", format=container) as box:
        if creation_time:
            box.metadata["creation_time"] = creation_time
        if location:
            box.metadata["location"] = location
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frames = max(1, int(seconds * fps))
        for i in range(frames):
            img = Image.new("RGB", size, ((seed * 40 + i * 255 // frames) % 256, 40, 90))
            draw = ImageDraw.Draw(img)
            draw.rectangle((0, 0, size[0] * (i + 1) // frames, size[1] // 2), fill=(30, 200, 90))
            draw.rectangle((0, size[1] // 2, size[0], size[1]), fill=(20, 60, 160))
            frame = av.VideoFrame.from_image(img)
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return out.getvalue()


def pdf_pages_bytes(seed: int, pages: int = 3, created: str | None = None) -> bytes:
    """A valid PDF of ``pages`` pages with text, and ``/CreationDate`` (a PDF date,
    ``D:YYYYMMDDHHmmSS``) in its document information when given."""
    fonts = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for page in range(pages):
        text = f"Hopper test document {seed}, page {page + 1}".encode()
        stream = b"BT /F1 24 Tf 72 700 Td (" + text + b") Tj ET"
        page_no, content_no = len(objects) + 1, len(objects) + 2
        kids.append(f"{page_no} 0 R".encode())
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       + fonts + f" /Contents {content_no} 0 R >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
                       + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + f"] /Count {pages} >>".encode()
    info = None
    if created:
        objects.append(f"<< /Title (Test {seed}) /CreationDate ({created}) >>".encode())
        info = len(objects)
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "")
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def alpha_png_bytes(seed: int, size: tuple[int, int] = (200, 160)) -> bytes:
    """A PNG with a transparent background and an opaque disc."""
    import io

    from PIL import ImageDraw
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((20, 20, size[0] - 20, size[1] - 20),
                                fill=((seed * 70) % 256, 90, 200, 255))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def docx_bytes(seed: int) -> bytes:
    """A minimal Word document (an OOXML zip with its content types and body)."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                   '2006/content-types"><Override PartName="/word/document.xml" ContentType="'
                   'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main'
                   '+xml"/></Types>')
        z.writestr("word/document.xml",
                   '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                   f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Note {seed}</w:t></w:r>'
                   '</w:p></w:body></w:document>')
    return out.getvalue()


def scene_heic_bytes(seed: int, original: str, size: tuple[int, int] = (1200, 800)) -> bytes:
    """The landscape of :func:`scene_bytes` as an iPhone-like HEIC with its capture time."""
    import io

    import pillow_heif
    pillow_heif.register_heif_opener()
    img = Image.open(io.BytesIO(scene_bytes(seed, size=size)))
    exif = Image.Exif()
    exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = original
    out = io.BytesIO()
    img.save(out, "HEIF", exif=exif.tobytes(), quality=70)
    return out.getvalue()
