"""The media library as a Hopper plugin: its settings section (``library:``), its
tasks, its recurring scan, its serve-only queue, its inbox watcher and its
``run.py library`` command, registered through :mod:`hopper.app.plugins`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hopper.app.plugins import Command, Plugin
from hopper.app.settings import SettingsError, parse_duration, resolve_path
from hopper.app.watch.ignores import check_patterns

DEFAULT_LAYOUT = "{kind}/{year}/{month}/{name}"
KEYS = {"inbox": None, "root": None, "quarantine": None, "layout": None,
        "rescan_interval": None, "settle_time": None, "polling": None, "ignore": None}


@dataclass(frozen=True)
class LibrarySettings:
    """``library:`` validated; read as ``settings.inbox``, ``settings.library_root``..."""

    inbox: Path
    library_root: Path
    quarantine: Path
    layout: str = DEFAULT_LAYOUT
    rescan_interval: float = 3600.0
    settle_time: float = 5.0
    library_polling: bool = False
    library_ignore: tuple[str, ...] = ()


def parse(section: dict, base: Path) -> LibrarySettings:
    """Validate the ``library:`` section (SettingsError naming the key)."""
    layout = section.get("layout", DEFAULT_LAYOUT)
    if not isinstance(layout, str) or "{name}" not in layout:
        raise SettingsError("library.layout: must be a string containing {name}")
    try:
        ignore = check_patterns(section.get("ignore"), "library.ignore")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return LibrarySettings(
        inbox=resolve_path(base, section.get("inbox", "data/inbox"), "library.inbox"),
        library_root=resolve_path(base, section.get("root", "data/library"), "library.root"),
        quarantine=resolve_path(base, section.get("quarantine", "data/quarantine"),
                                "library.quarantine"),
        layout=layout,
        rescan_interval=parse_duration(section.get("rescan_interval", "1h"),
                                       "library.rescan_interval"),
        settle_time=parse_duration(section.get("settle_time", "5s"), "library.settle_time"),
        library_polling=bool(section.get("polling", False)),
        library_ignore=ignore)


def schedules(settings) -> tuple[dict, ...]:
    """The catch-up scan of the inbox every ``library.rescan_interval`` (0: off)."""
    if settings.rescan_interval <= 0:
        return ()
    return ({"name": "library.scan", "every": settings.rescan_interval},)


def watchers(settings):
    """The inbox watcher (library.inbox → library.ingest), with its startup scan."""
    from hopper.app.library.watcher import InboxWatcher

    watcher = InboxWatcher(settings)
    watcher.start()
    return watcher


def public(s) -> dict:
    """``library:`` as ``GET /api/settings`` shows it."""
    return {"inbox": str(s.inbox), "root": str(s.library_root), "quarantine": str(s.quarantine),
            "layout": s.layout, "rescan_interval": s.rescan_interval,
            "settle_time": s.settle_time, "polling": s.library_polling,
            "ignore": list(s.library_ignore)}


_LIBRARY_HELP = (
    "Library maintenance. reindex: identify every file under library.root again and"
    " rebuild the index from them; each file found keeps its id and added time (matched"
    " by path, then by content), only rows whose file is gone are removed, and previews"
    " still missing are queued.")


def _reindex_arguments(parser) -> None:
    parser.description = _LIBRARY_HELP
    parser.add_argument("action", choices=["reindex"],
                        help="reindex: rebuild the index from the files under library.root")


def _reindex(args, client) -> int:
    from hopper.app.library.index import images_without_thumbnail
    from hopper.app.library.reindex import reindex
    from hopper.app.library.tasks import enqueue_thumbnails

    count = reindex(client.settings, client.backend)
    print(f"indexed {count} file(s) under {client.settings.library_root} (ids kept)")
    queued = enqueue_thumbnails(images_without_thumbnail(client.backend))
    print(f"queued {queued} preview task(s)")
    return 0


plugin = Plugin(
    name="library",
    section="library",
    keys=KEYS,
    parse=parse,
    task_modules=("hopper.app.library.tasks", "hopper.app.library.verify"),
    schedules=schedules,
    serve_only_queues=("library",),
    watchers=watchers,
    public=public,
    commands=(Command("library", "library maintenance", _reindex_arguments, _reindex),),
)
