"""A phone's camera roll dropped into a running daemon (``run.py serve``), on both engines:
HEIC, AVIF, MP4, MOV, rotated and geotagged JPEGs, a 3-page PDF, a transparent PNG,
text and Word files, all made by the test itself."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from daemons import REPO
from helpers import poll_until
from library_media import (
    alpha_png_bytes,
    avif_bytes,
    avif_writable,
    camera_jpeg_bytes,
    docx_bytes,
    heic_bytes,
    pdf_pages_bytes,
    sha,
    text_bytes,
    video_bytes,
)
from library_support import index_rows

OLD = dt.datetime(2012, 2, 2, 2, 2, 2)  # the mtime of every dropped file


def _utc_local(text: str) -> str:
    return dt.datetime.fromisoformat(text).astimezone().replace(tzinfo=None).isoformat()


def _corpus() -> dict[str, tuple[bytes, str | None, str]]:
    """{inbox path: (bytes, expected taken_at or None for the mtime, expected thumbnail)}."""
    files = {
        "DCIM/100APPLE/IMG_0001.JPG": (camera_jpeg_bytes(1, "2019:06:01 10:00:00", 48.8584,
                                                         2.2945), "2019-06-01T10:00:00", "ready"),
        "DCIM/100APPLE/IMG_0002.JPG": (camera_jpeg_bytes(2, "2019:06:02 11:00:00", -33.85,
                                                         151.21), "2019-06-02T11:00:00", "ready"),
        "DCIM/100APPLE/IMG_0003.HEIC": (heic_bytes(3, "2020:01:02 03:04:05"),
                                        "2020-01-02T03:04:05", "ready"),
        "DCIM/100APPLE/IMG_0004.HEIC": (heic_bytes(4, "2020:01:03 03:04:05", size=(480, 640)),
                                        "2020-01-03T03:04:05", "ready"),
        "DCIM/100APPLE/IMG_0005.MP4": (video_bytes(5, "mp4", "2021-07-04T12:00:00Z"),
                                       _utc_local("2021-07-04T12:00:00+00:00"), "ready"),
        "DCIM/100APPLE/IMG_0006.MOV": (video_bytes(6, "mov", "2021-07-05T13:00:00Z",
                                                   location="+40.6892-074.0445/"),
                                       _utc_local("2021-07-05T13:00:00+00:00"), "ready"),
        "Documents/report.pdf": (pdf_pages_bytes(7, 3, "D:20180304050607Z"),
                                 _utc_local("2018-03-04T05:06:07+00:00"), "ready"),
        "logo.png": (alpha_png_bytes(8), None, "ready"),
        "notes.txt": (text_bytes(9), None, "none"),
        "letter.docx": (docx_bytes(10), None, "none"),
    }
    if avif_writable():
        files["DCIM/100APPLE/IMG_0011.AVIF"] = (avif_bytes(11, "2022:05:06 07:08:09"),
                                                "2022-05-06T07:08:09", "ready")
    return files


def _drop_all(inbox, staging, files) -> None:
    for name, (data, _, _) in files.items():
        staged = staging / name.replace("/", "_")
        staged.write_bytes(data)
        os.utime(staged, (OLD.timestamp(), OLD.timestamp()))
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, inbox / name)  # complete when it appears, as a sync tool does


def _settled(config, count: int):
    rows = index_rows(config)
    if len(rows) != count or any(r["thumbnail"] == "pending" for r in rows):
        return None
    return {r["source_path"]: r for r in rows}


@pytest.fixture
def phone_library(make_daemon, database, tmp_path):
    daemon = make_daemon(database=database, workers=2)
    inbox = daemon.config.parent / "data" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    staging = tmp_path / "staging"
    staging.mkdir()
    files = _corpus()
    _drop_all(inbox, staging, files)
    rows = poll_until(lambda: _settled(daemon.config, len(files)), timeout=120, interval=0.2,
                      message=lambda: f"{len(index_rows(daemon.config))} indexed\n"
                                      f"{daemon.read_log()[-3000:]}")
    return daemon, files, rows


def test_every_phone_file_lands_with_its_capture_date_and_preview_state(phone_library):
    daemon, files, rows = phone_library
    root = daemon.config.parent / "data" / "library"
    for name, (data, taken, thumbnail) in files.items():
        row = rows[name]
        assert row["sha256"] == sha(data) and (root / row["path"]).read_bytes() == data, name
        assert row["taken_at"] == (taken or OLD.isoformat()), name
        assert row["thumbnail"] == thumbnail, (name, row["thumbnail_reason"])
        if thumbnail == "none":
            assert row["thumbnail_reason"] == f"no preview for {row['mime']}"
    assert rows["DCIM/100APPLE/IMG_0006.MOV"]["latitude"] == pytest.approx(40.6892)
    assert rows["Documents/report.pdf"]["pages"] == 3
    assert (rows["DCIM/100APPLE/IMG_0001.JPG"]["width"],
            rows["DCIM/100APPLE/IMG_0001.JPG"]["height"]) == (480, 640)
    thumbs = daemon.config.parent / "data" / "thumbnails"
    ready = [r for r in rows.values() if r["thumbnail"] == "ready"]
    assert all(len(list(thumbs.glob(f"{r['sha256'][:2]}/{r['sha256']}*"))) == 2 for r in ready)


def test_library_reindex_command_keeps_every_id(phone_library):
    daemon, files, rows = phone_library
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}  # the settings name sample_tasks
    done = subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(daemon.config),
                           "library", "reindex"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert f"indexed {len(files)} file(s)" in done.stdout
    after = {r["source_path"]: (r["id"], r["created_at"]) for r in index_rows(daemon.config)}
    assert after == {name: (r["id"], r["created_at"]) for name, r in rows.items()}
