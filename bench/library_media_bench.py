"""The media part of ``bench/bench_library.py --media``: phone-sized photos and videos
dropped into a running daemon at once, timed to all indexed and all previews ready,
beside a floor measured in the same run: the same files decoded, thumbnailed and
encoded (1,600 px preview and 320 px thumbnail, WebP) by a bare Pillow /
pillow-heif / PyAV loop with one process per core.

Each kind is encoded once (a 12-megapixel JPEG and HEIC, a one-minute 1080p H.264
video) and copied with a unique tail so every file is new content: JPEGs get their
own EXIF capture time, HEIC and MP4 files a trailing ISO-BMFF ``free`` box.
"""
from __future__ import annotations

import io
import math
import multiprocessing
import os
import sqlite3
import struct
import time
from pathlib import Path

PHOTO_SIZE = (4000, 3000)   # 12 megapixels, as phones shoot
VIDEO_SIZE = (1920, 1080)
VIDEO_SECONDS = 60
VIDEO_FPS = 30


def _scene(size: tuple[int, int]):
    from PIL import Image, ImageDraw, ImageFilter

    w, h = size
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for n in range(60):  # detail for the encoder, like a real scene
        x, y = (n * 733) % w, (n * 397) % h
        draw.ellipse((x, y, x + w // 12, y + h // 12), fill=((n * 40) % 256, 120, (n * 90) % 256))
    return img.filter(ImageFilter.GaussianBlur(2))


def _jpeg_with_exif(base: bytes, n: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = f"2023:{1 + n % 12:02d}:{1 + n % 28:02d} 10:{n % 60:02d}:00"
    # The dates repeat every 420 files; a unique id keeps every file distinct content
    # (the library would record the 421st as a duplicate of the first).
    exif.get_ifd(0x8769)[0xA420] = f"hopper-bench-{n:08d}"
    payload = exif.tobytes()  # starts with the "Exif\0\0" header itself
    return base[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + base[2:]


def _free_box(n: int) -> bytes:
    payload = f"hopper-bench-{n}".encode()
    return struct.pack(">I", len(payload) + 8) + b"free" + payload


def _video_bytes(path: Path) -> None:
    import av
    from PIL import ImageDraw

    base = _scene(VIDEO_SIZE)
    with av.open(str(path), "w", format="mp4") as box:
        box.metadata["creation_time"] = "2023-06-18T18:00:00Z"
        stream = box.add_stream("libx264", rate=VIDEO_FPS)
        stream.width, stream.height = VIDEO_SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(VIDEO_FPS * 2)}
        for i in range(VIDEO_SECONDS * VIDEO_FPS):
            frame_img = base.copy()
            bar = (0, 0, (i * 7) % VIDEO_SIZE[0], 60)  # motion, so frames differ
            ImageDraw.Draw(frame_img).rectangle(bar, fill=(250, 250, 0))
            for packet in stream.encode(av.VideoFrame.from_image(frame_img)):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)


def make_corpus(staging: Path, jpegs: int, heics: int, videos: int) -> dict:
    """Write the files into ``staging``; returns counts, bytes and the seconds it took."""
    import pillow_heif
    from PIL import Image  # noqa: F401

    started = time.monotonic()
    staging.mkdir(parents=True, exist_ok=True)
    scene = _scene(PHOTO_SIZE)
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=90)
    base_jpeg = out.getvalue()
    for n in range(jpegs):
        (staging / f"IMG_{n:05d}.JPG").write_bytes(_jpeg_with_exif(base_jpeg, n))
    if heics:
        pillow_heif.register_heif_opener()
        out = io.BytesIO()
        scene.save(out, "HEIF", quality=60)
        for n in range(heics):
            (staging / f"IMG_{n:05d}.HEIC").write_bytes(out.getvalue() + _free_box(n))
    if videos:
        master = staging.parent / "master.mp4"
        _video_bytes(master)
        data = master.read_bytes()
        master.unlink()
        for n in range(videos):
            (staging / f"VID_{n:05d}.MP4").write_bytes(data + _free_box(n))
    files = sorted(staging.iterdir())
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "seconds": time.monotonic() - started}


# ------------------------------------------------------------------ the floor


def _floor_one(args: tuple[str, str]) -> None:
    """Decode, make the preview and thumbnail, encode both: the bare libraries only."""
    source, out = args
    from PIL import Image, ImageOps

    if source.endswith(".MP4"):
        import av

        with av.open(source) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            at = container.duration / av.time_base * 0.1
            container.seek(int(at / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                if frame.time >= at:
                    break
            img = frame.to_image()
    else:
        import pillow_heif
        pillow_heif.register_heif_opener()
        with Image.open(source) as opened:
            w, h = opened.size
            opened.draft("RGB", (1600 * w // max(w, h), 1600 * h // max(w, h)))
            img = ImageOps.exif_transpose(opened)
            img.load()
    img.thumbnail((1600, 1600), Image.Resampling.LANCZOS)
    img.convert("RGB").save(out + "-large.webp", "WEBP", quality=80)
    img.thumbnail((320, 320), Image.Resampling.LANCZOS)
    img.convert("RGB").save(out + ".webp", "WEBP", quality=80)


def floor(files: list[Path], out: Path, processes: int) -> float:
    """Seconds for a pool of ``processes`` to preview every file (the best Hopper could do
    without hashing, moving or indexing)."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(p), str(out / p.name)) for p in files]
    started = time.monotonic()
    # Videos first: the longest jobs should not start last.
    jobs.sort(key=lambda j: not j[0].endswith(".MP4"))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_floor_one, jobs, chunksize=1)
    return time.monotonic() - started


# ------------------------------------------------------------------ Hopper


def _counts(db: Path) -> tuple[int, int]:
    try:
        conn = sqlite3.connect(db, timeout=30)
        try:
            return conn.execute("SELECT count(*), count(thumbnail) FROM library_items").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0, 0


def hopper_run(staging: Path, inbox: Path, db: Path, timeout: float) -> dict:
    """Drop everything at once; seconds until all are indexed and all previews are done."""
    names = sorted(os.listdir(staging))
    started = time.monotonic()
    for name in names:
        os.rename(staging / name, inbox / name)
    indexed_at = None
    deadline = started + timeout
    while time.monotonic() < deadline:
        items, previews = _counts(db)
        now = time.monotonic()
        if indexed_at is None and items >= len(names) and not os.listdir(inbox):
            indexed_at = now
        if indexed_at is not None and previews >= len(names):
            return {"files": len(names), "indexed_s": indexed_at - started,
                    "previews_s": now - started}
        time.sleep(0.1)
    raise SystemExit(f"timed out: {_counts(db)} of {len(names)} indexed / previewed")


def scaled(count: int, scale: float) -> int:
    return max(1, math.ceil(count * scale)) if count else 0
