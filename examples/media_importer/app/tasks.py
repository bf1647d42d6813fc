"""The import task. Hopper runs it inside this app's context (``tasks.flask_app``),
so it reads and updates the job through the same ``db.session`` as the views;
Hopper removes the session after each task, as Flask does after a request."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import shutil
from pathlib import Path

from flask import current_app

from app.models import ImportJob, db
from hopper import artifact_path, set_meta, task

MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".mp4", ".mov", ".mkv",
                  ".mp3", ".flac", ".wav"}


@task(name="media.import", max_attempts=2, timeout=600)
def import_media(job_id: int) -> dict:
    """Copy the media files of the job's folder into the user's media folder and
    write a CSV manifest (name, bytes, sha256), offered as the task's artifact."""
    job = db.session.get(ImportJob, job_id)
    if job is None:
        raise LookupError(f"no import job {job_id}")
    job.status, job.error = "running", None
    db.session.commit()
    try:
        rows = _copy_media(Path(job.source), Path(current_app.config["MEDIA_ROOT"]) / job.user)
        manifest = f"import-{job_id}.csv"
        with open(artifact_path(manifest), "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["name", "bytes", "sha256"])
            writer.writerows(rows)
    except Exception as exc:
        db.session.rollback()
        job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        job.finished_at = dt.datetime.now(dt.timezone.utc)
        db.session.commit()
        raise
    job.status, job.files = "completed", len(rows)
    job.total_bytes = sum(size for _, size, _ in rows)
    job.finished_at = dt.datetime.now(dt.timezone.utc)
    db.session.commit()
    return {"artifact": manifest, "files": job.files, "bytes": job.total_bytes}


def _copy_media(source: Path, target: Path) -> list[tuple[str, int, str]]:
    """Copy every media file directly in ``source``; report progress as task meta."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder")
    files = sorted(p for p in source.iterdir() if p.is_file()
                   and p.suffix.lower() in MEDIA_SUFFIXES)
    target.mkdir(parents=True, exist_ok=True)
    rows = []
    for done, path in enumerate(files, start=1):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copy2(path, target / path.name)
        rows.append((path.name, path.stat().st_size, digest))
        set_meta({"imported": done, "total": len(files)})  # shown on the jobs page while it runs
    return rows
