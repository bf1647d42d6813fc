"""examples/game_library run for real: a daemon on a copy of the example, game files
dropped, moved, deleted and dropped while it is down; the JSON index must list exactly
the files on disk with their ids, each file version identified once, and the
organizer's own moves start nothing."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml
from daemons import REPO, Daemon, free_port
from helpers import poll_until

from hopper.app import queue
from hopper.app import settings as settings_mod

EXAMPLE = REPO / "examples" / "game_library"


def game_bytes(title_id: str, title: str, kind: str, size: int = 4096) -> bytes:
    """A small fake game file: an NSP (PFS0) or XCI (HEAD at 0x100) header with the id."""
    fields = b"%s%s" % (title_id.encode(), title.encode().ljust(64, b"\0"))
    head = b"PFS0" + fields if kind == "nsp" else b"\0" * 0x100 + b"HEAD" + fields
    body = os.urandom(size - len(head))  # every file's content differs
    return head + body


@pytest.fixture
def example(tmp_path):
    folder = tmp_path / "game_library"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("data", "__pycache__"))
    raw = yaml.safe_load((folder / "settings.yaml").read_text())
    raw["server"]["bind"] = f"127.0.0.1:{free_port()}"
    raw["watch"][0]["settle_time"] = "500ms"
    raw.update({"lease": "5s", "shutdown_grace": "10s",
                "library": {"inbox": "data/inbox", "root": "data/library",
                            "quarantine": "data/quarantine", "settle_time": "300ms"}})
    (folder / "settings.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    daemons: list[Daemon] = []

    def start() -> Daemon:
        daemon = Daemon(folder / "settings.yaml")
        daemons.append(daemon)
        return daemon.start()

    yield folder, start
    for daemon in daemons:
        daemon.stop(timeout=20)
        daemon.kill_everything()


def _index(folder: Path) -> dict[str, str]:
    path = folder / "data" / "games.json"
    if not path.exists():
        return {}
    return {g["path"]: g["title_id"] for g in json.loads(path.read_text())["games"]}


def _on_disk(games: Path) -> dict[str, str]:
    """Every game file under ``games`` with the id its header carries."""
    import sys

    sys.path.insert(0, str(games.parent))
    try:
        from games import read_header  # the example's own parser
    finally:
        sys.path.remove(str(games.parent))
    return {p.relative_to(games).as_posix(): read_header(p)["title_id"]
            for p in games.rglob("*") if p.suffix in (".nsp", ".xci")}


def _quiet_marks(client) -> int:
    return client.backend.fetch("SELECT count(*) FROM watch_quiet")[0][0]


def _tasks(client, name: str) -> list[dict]:
    return client.backend.list(name=name, limit=10_000)


def _drop(games: Path, rel: str, data: bytes) -> None:
    target = games / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / (target.name + ".part")   # written, then renamed into place
    tmp.write_bytes(data)
    os.rename(tmp, target)


def _organized(folder: Path, expected: int) -> bool:
    """The index has ``expected`` games, each in its title's folder."""
    index = _index(folder)
    return len(index) == expected and all(
        rel.split("/")[0] in ("Twins", f"Game {int(tid[4:], 16)}") for rel, tid in index.items())


def test_the_game_library_example_keeps_its_index_right(example):
    folder, start = example
    games = folder / "games"
    daemon = start()
    client = queue.configure(settings_mod.load(folder / "settings.yaml"))
    titles = {f"0100{n:012X}": f"Game {n}" for n in range(34)}
    ids = list(titles)
    # 30 files: some in sub-folders, one copied in slowly, two with the same name.
    for n in range(28):
        rel = (f"incoming/batch{n % 3}/" if n % 2 else "") + f"game{n}.{('nsp', 'xci')[n % 2]}"
        _drop(games, rel, game_bytes(ids[n], titles[ids[n]], rel[-3:]))
    _drop(games, "a/Same.nsp", game_bytes(ids[28], "Twins", "nsp"))
    slow = game_bytes(ids[29], "Twins", "nsp", size=300_000)

    def copy_slowly():
        (games / "b").mkdir(exist_ok=True)
        with open(games / "b" / "Same.nsp", "wb") as f:
            for start_at in (0, 100_000, 200_000):
                f.write(slow[start_at:start_at + 100_000])
                f.flush()
                time.sleep(1.5)   # the copier's own pace, longer than the settle time
    writer = threading.Thread(target=copy_slowly)
    writer.start()
    writer.join()
    poll_until(lambda: _organized(folder, 30), timeout=90,
               message=lambda: f"index: {_index(folder)}\n{daemon.read_log()[-3000:]}")
    assert {"Twins/Same.nsp", "Twins/Same (2).nsp"} <= set(_index(folder))
    # The watcher has taken in the organizer's moves (their quiet marks are used up): a
    # user's move of a file before then would be merged into the organizer's own.
    poll_until(lambda: _quiet_marks(client) == 0, timeout=120)

    # 5 moves by the user.
    for rel in sorted(_index(folder))[:5]:
        target = games / "favourites" / Path(rel).name
        target.parent.mkdir(exist_ok=True)
        os.rename(games / rel, target)
    poll_until(lambda: len(_tasks(client, "games.moved")) == 5 and
               _index(folder) == _on_disk(games), timeout=120)

    # A restart, with 4 files dropped while no daemon watched.
    daemon.stop()
    for n in range(30, 34):
        _drop(games, f"late/game{n}.nsp", game_bytes(ids[n], titles[ids[n]], "nsp"))
    daemon = start()
    poll_until(lambda: len(_index(folder)) == 34 and _index(folder) == _on_disk(games)
               and not (games / "late").exists(), timeout=120)

    # 3 deletes.
    for rel in sorted(_index(folder))[-3:]:
        os.unlink(games / rel)
    poll_until(lambda: len(_tasks(client, "games.deleted")) == 3, timeout=120)

    # The full scan and its continuation: nothing left to identify, the index rebuilt.
    scan_id = client.backend.enqueue([queue.build_task("games.scan", {})])[0][0]
    scan = poll_until(lambda: client.backend.get(scan_id)["status"] == "succeeded"
                      and client.backend.get(scan_id), timeout=120)
    assert scan["result"]["files"] == 0 and scan["result"]["games"] == 31
    on_disk = _on_disk(games)
    assert len(on_disk) == 31
    assert _index(folder) == on_disk
    identified = [t for t in _tasks(client, "games.identify") if t["status"] == "succeeded"]
    assert len(identified) == 34                      # once per file version, no more
    assert all(t["result"]["status"] == "identified" for t in identified)
    assert len(_tasks(client, "games.organize")) == 34
    assert len(_tasks(client, "games.moved")) == 5   # the organizer's 34 moves started none
    assert len(_tasks(client, "games.deleted")) == 3
