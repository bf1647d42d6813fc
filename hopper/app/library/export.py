"""``library.export``'s file: the whole index as CSV under ``data/artifacts/``.

The CSV is written under a temporary name and renamed, so a download never
gets half a file; rows are read a page at a time, so the library's size does
not matter for memory.
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from pathlib import Path

from hopper.app.library import index

CSV_COLUMNS = ("id", "path", "name", "kind", "mime", "size", "sha256", "taken_at",
               "taken_at_source", "width", "height", "camera", "source_name", "source_path",
               "duplicates")


def export_name(task_id: int | None, now: dt.datetime | None = None) -> str:
    """A file name that sorts by time and is unique per task."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"library-{stamp}-{task_id or os.getpid()}.csv"


def _row(item: dict) -> list:
    values = {**item, "duplicates": len(item["duplicates"])}
    return ["" if values[c] is None else values[c] for c in CSV_COLUMNS]


def write_csv(backend, folder: Path, name: str) -> int:
    """Write every indexed item to ``folder/name``; return the number of rows."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".csv")
    rows = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for item in index.iter_items(backend):
                writer.writerow(_row(item))
                rows += 1
        os.replace(temp, folder / name)
    except BaseException:
        os.unlink(temp)
        raise
    return rows
