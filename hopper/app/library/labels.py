"""Short, human names for file types (``PDF``, ``Word``, ``MP4``...), shown on the grid
instead of a MIME type, and which originals a browser can show by itself."""
from __future__ import annotations

_LABELS = {
    "application/pdf": "PDF", "application/msword": "Word",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
    "application/vnd.oasis.opendocument.text": "Writer", "application/rtf": "RTF",
    "application/vnd.ms-excel": "Excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
    "application/vnd.oasis.opendocument.spreadsheet": "Calc",
    "application/vnd.ms-powerpoint": "PowerPoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
    "application/vnd.oasis.opendocument.presentation": "Impress",
    "application/epub+zip": "EPUB", "application/postscript": "PostScript",
    "application/zip": "ZIP", "application/gzip": "GZip", "application/x-tar": "TAR",
    "application/x-7z-compressed": "7z", "application/x-rar-compressed": "RAR",
    "text/plain": "Text", "text/html": "HTML", "text/csv": "CSV",
    "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP",
    "image/heic": "HEIC", "image/heif": "HEIF", "image/avif": "AVIF", "image/tiff": "TIFF",
    "image/bmp": "BMP", "image/x-icon": "ICO", "image/vnd.adobe.photoshop": "PSD",
    "video/mp4": "MP4", "video/quicktime": "MOV", "video/x-matroska": "MKV",
    "video/webm": "WebM", "video/x-msvideo": "AVI", "video/3gpp": "3GP", "video/mpeg": "MPEG",
    "video/x-m4v": "M4V", "audio/mpeg": "MP3", "audio/mp4": "M4A", "audio/x-wav": "WAV",
    "audio/ogg": "Ogg", "audio/x-flac": "FLAC", "application/octet-stream": "File",
}
# Images every current browser decodes itself (SVG is left out: it can carry scripts).
BROWSER_IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp")


def kind_label(mime: str | None, kind: str | None = None) -> str:
    """``application/pdf`` → ``PDF``; an unknown type → its subtype in capitals, short."""
    if not mime:
        return (kind or "file").capitalize()
    if mime in _LABELS:
        return _LABELS[mime]
    sub = mime.split("/", 1)[-1].split(";")[0]
    sub = sub.rsplit(".", 1)[-1].removeprefix("x-")
    return sub.upper()[:8] or (kind or "file").capitalize()


def shows_in_browser(mime: str | None) -> bool:
    """True for originals a browser can display full size without a plugin."""
    return mime in BROWSER_IMAGES
