"""Shared fixtures: settings files in temp folders, real daemons, a client bound to them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemons import Daemon, write_settings  # noqa: E402  (importable once sys.path is set above)


@pytest.fixture
def settings_path(tmp_path) -> Path:
    return write_settings(tmp_path)


@pytest.fixture
def make_daemon(tmp_path):
    """Factory: ``make_daemon(**settings_overrides)`` → a started Daemon, stopped at teardown."""
    started: list[Daemon] = []

    def factory(command: str = "serve", start: bool = True, config: Path | None = None,
                extra_args: tuple[str, ...] = (), **overrides) -> Daemon:
        daemon = Daemon(config or write_settings(tmp_path, **overrides), command, extra_args)
        started.append(daemon)
        return daemon.start() if start else daemon

    yield factory
    for daemon in started:
        try:
            daemon.stop(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        daemon.kill_everything()


@pytest.fixture
def client(settings_path, monkeypatch):
    """The queue client of this test process, bound to the temp settings file."""
    monkeypatch.setenv("HOPPER_CONFIG", str(settings_path))
    from hopper.app import queue, settings

    return queue.configure(settings.load(settings_path))


PG_URL = os.environ.get("HOPPER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test (skipped if unreachable, outside CI)."""
    import psycopg

    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set HOPPER_TEST_PG_URL): {exc}")
    name = f"hopper_test_{uuid4().hex[:12]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request) -> str:
    """The one engine fixture: each test that takes it runs on SQLite and on PostgreSQL.

    Yields the ``database`` setting: the embedded SQLite file, or a fresh PostgreSQL
    database (skipped outside CI when the server is unreachable, as ``pg_url`` says).
    """
    if request.param == "sqlite":
        return "sqlite:///data/hopper.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine_settings(tmp_path, database) -> Path:
    """A settings file on the engine under test."""
    return write_settings(tmp_path, database=database)


@pytest.fixture
def engine_client(engine_settings, monkeypatch):
    """The queue client of this test process on the engine under test."""
    monkeypatch.setenv("HOPPER_CONFIG", str(engine_settings))
    from hopper.app import queue, settings

    return queue.configure(settings.load(engine_settings))


@pytest.fixture
def pg_settings(tmp_path, pg_url) -> Path:
    return write_settings(tmp_path, database=pg_url)


@pytest.fixture
def pg_client(pg_settings, monkeypatch):
    monkeypatch.setenv("HOPPER_CONFIG", str(pg_settings))
    from hopper.app import queue, settings

    return queue.configure(settings.load(pg_settings))


@pytest.fixture
def daemons_on_engine(tmp_path, engine_client, make_daemon):
    """Factory: ``daemons_on_engine(n, **settings_overrides)`` → n started daemons, each
    with its own settings folder, all on the engine client's database."""
    def factory(n: int = 2, **overrides) -> list[Daemon]:
        started = []
        for i in range(n):
            folder = tmp_path / f"daemon-{i}"
            folder.mkdir()
            config = write_settings(folder, **{"database": engine_client.settings.database,
                                               **overrides})
            started.append(make_daemon(config=config))
        return started

    return factory


@pytest.fixture
def other_settings(tmp_path, database):
    """Factory: a settings file in its own folder on the same database as
    ``engine_settings`` (for a second daemon): ``other_settings("b", workers=2)``."""
    def factory(name: str, **overrides) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        shared = (f"sqlite:///{tmp_path}/data/hopper.db" if database.startswith("sqlite:///")
                  else database)
        return write_settings(folder, **{"database": shared, **overrides})

    return factory
