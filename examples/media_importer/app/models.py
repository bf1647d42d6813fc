"""The app's own database: one ImportJob row per import a user asked for."""
from __future__ import annotations

import datetime as dt

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()

STATUSES = ("pending", "running", "completed", "failed")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ImportJob(db.Model):
    """An import of one folder of media files: pending → running → completed | failed."""

    __tablename__ = "import_jobs"

    id = db.Column(db.Integer, primary_key=True)
    user = db.Column(db.String(32), nullable=False, index=True)
    source = db.Column(db.String(1000), nullable=False)
    status = db.Column(db.String(16), nullable=False, default="pending")
    task_id = db.Column(db.Integer)  # Hopper's task that runs the import
    files = db.Column(db.Integer)
    total_bytes = db.Column(db.Integer)
    error = db.Column(db.Text)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False, default=_now)
    finished_at = db.Column(db.DateTime(timezone=True))
