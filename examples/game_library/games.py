"""A game library on Hopper's folder triggers.

The watched folder ``games/`` holds game files (``*.nsp``, ``*.xci``). Hopper starts:

- ``games.identify`` for each new or changed file: reads its title id and title from
  the header, records them in ``data/catalog.json`` and enqueues the organizer;
- ``games.organize``: moves the file to ``{title}/{name}`` inside the watched folder
  inside ``hopper.quiet(...)``, so its own move starts no task;
- ``games.moved`` / ``games.deleted`` (the entry's ``on_moved`` / ``on_deleted``): a
  user's move or delete keeps the catalog right;
- ``games.scan``: a fan-out over every file not yet in the catalog, one identify child
  each; its continuation ``games.index`` regenerates ``data/games.json``.

Every change rewrites ``data/games.json`` too, so the index is right between scans.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import hopper
from hopper import task
from hopper.app import queue

PATTERNS = ("*.nsp", "*.xci")
_ID = re.compile(rb"[0-9A-Fa-f]{16}")
_UNSAFE = re.compile(r"[^\w .()\-]+")


class NotAGame(ValueError):
    """The file has no readable title id in its header."""


def read_header(path: str | os.PathLike) -> dict:
    """Title id and title of a game file.

    NSP files (a PFS0 archive) carry them right after the ``PFS0`` magic, XCI
    cartridge images after the ``HEAD`` magic at offset 0x100: 16 hex digits of
    title id, then the title, NUL-padded to 64 bytes.
    """
    with open(path, "rb") as f:
        head = f.read(0x200)
    for magic, offset in ((b"PFS0", 0), (b"HEAD", 0x100)):
        if head[offset:offset + 4] == magic:
            raw_id = head[offset + 4:offset + 20]
            if not _ID.fullmatch(raw_id):
                raise NotAGame(f"{path}: no title id after {magic.decode()}")
            title = head[offset + 20:offset + 84].split(b"\0", 1)[0].decode("utf-8", "replace")
            return {"title_id": raw_id.decode().upper(), "title": title.strip() or raw_id.decode()}
    raise NotAGame(f"{path}: neither an NSP (PFS0) nor an XCI (HEAD) header")


# -- where things live -------------------------------------------------------------
def _settings():
    return queue.client().settings


def games_folder() -> Path:
    """The watched folder: the watch entry whose task is games.identify."""
    settings = _settings()
    for entry in settings.raw.get("watch") or []:
        if entry.get("task") == "games.identify":
            folder = Path(entry["path"])
            return folder if folder.is_absolute() else (settings.path.parent / folder).resolve()
    raise LookupError("no watch entry for games.identify in the settings")


def data_folder() -> Path:
    folder = _settings().path.parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def catalog():
    """The catalog (``{relative path: {title_id, title, size, mtime_ns}}``), locked
    for the block and written back (atomically) when it ends."""
    folder = data_folder()
    with open(folder / "catalog.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / "catalog.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
        write_index(data)


def write_index(data: dict) -> Path:
    """``data/games.json``: the catalog's games that are on disk, sorted by path."""
    root = games_folder()
    games = [{"path": rel, **info} for rel, info in sorted(data.items())
             if (root / rel).is_file()]
    target = data_folder() / "games.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generated_at": time.time(), "games": games}, indent=1))
    os.replace(tmp, target)
    return target


def _rel(path: str | os.PathLike) -> str:
    return Path(path).resolve().relative_to(games_folder()).as_posix()


# -- tasks -------------------------------------------------------------------------
@task(name="games.identify", queue="games", max_attempts=3)
def identify(path: str, size: int | None = None, mtime: float | None = None) -> dict:
    """Read a game file's title id, record it, and have it organized."""
    try:
        header = read_header(path)
        st = os.stat(path)
    except FileNotFoundError:
        return {"status": "gone", "path": path}   # moved or deleted since: its event follows
    rel = _rel(path)
    with catalog() as data:
        data[rel] = {**header, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    organizer = hopper.enqueue("games.organize", {"path": path}, queue="games")
    return {"status": "identified", "path": rel, **header, "organize_task": organizer}


@task(name="games.organize", queue="games", max_attempts=3)
def organize(path: str) -> dict:
    """Move a game to ``{title}/{name}`` in the watched folder, never overwriting; the
    move is the task's own (``hopper.quiet``), so the watcher starts nothing for it."""
    root = games_folder()
    source = Path(path)
    rel = _rel(source)
    with catalog() as data:
        info = data.get(rel)
        if info is None or not source.is_file():
            return {"status": "gone", "path": rel}
        folder = root / (_UNSAFE.sub("_", info["title"]).strip(" .") or info["title_id"])
        if source.parent == folder:
            return {"status": "in place", "path": rel}
        target, n = folder / source.name, 2
        while target.exists():
            target = folder / f"{source.stem} ({n}){source.suffix}"
            n += 1
        with hopper.quiet(source, target):
            folder.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
        data[_rel(target)] = data.pop(rel)
    _remove_empty_parents(source.parent, root)
    return {"status": "moved", "from": rel, "path": _rel(target)}


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()  # an emptied folder's removal starts no task: no quiet needed
        except OSError:
            return  # not empty: the folders above are not either
        folder = folder.parent


@task(name="games.moved", queue="games")
def moved(src_path: str, path: str) -> dict:
    """A user moved a game inside the folder: the catalog follows it."""
    src, dst = _rel(src_path), _rel(path)
    with catalog() as data:
        known = data.pop(src, None)
        if known is not None:
            data[dst] = known
    if known is None:  # moved before it was identified (identify found it gone)
        hopper.enqueue("games.identify", {"path": path}, queue="games")
    return {"from": src, "path": dst}


@task(name="games.deleted", queue="games")
def deleted(path: str) -> dict:
    """A user deleted a game: it leaves the catalog."""
    rel = _rel(path)
    with catalog() as data:
        gone = data.pop(rel, None)
    return {"path": rel, "forgotten": gone is not None}


@task(name="games.scan", queue="games", continuation="games.index")
def scan() -> dict:
    """One ``games.identify`` child per game file not in the catalog as it is now
    (with the watcher's unique key, so a file it is starting counts once)."""
    root = games_folder()
    with catalog() as data:
        known = {rel: (i["size"], i["mtime_ns"]) for rel, i in data.items()}
    parent = queue.current_task_id()
    requests = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not any(path.match(p) for p in PATTERNS):
            continue
        st = path.stat()
        if known.get(_rel(path)) == (st.st_size, st.st_mtime_ns):
            continue
        requests.append({"name": "games.identify", "queue": "games", "parent_id": parent,
                         "args": {"path": str(path), "size": st.st_size, "mtime": st.st_mtime},
                         "unique_key": f"watch:games.identify:{path}:{st.st_size}:"
                                       f"{st.st_mtime_ns}"})
    if not requests:
        return {"files": 0, **index()}   # no children, so no continuation: index now
    hopper.enqueue_many(requests)
    return {"files": len(requests)}


@task(name="games.index", queue="games")
def index(parent_id: int | None = None, parent_status: str | None = None) -> dict:
    """The scan's continuation (called with the scan's id and status): drop catalog
    entries whose files are gone, rewrite ``data/games.json``."""
    root = games_folder()
    with catalog() as data:
        for rel in [rel for rel in data if not (root / rel).is_file()]:
            del data[rel]
        count = len(data)
    return {"games": count, "index": str(data_folder() / "games.json")}
