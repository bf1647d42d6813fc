"""SQLite's early wake-up goes through the notifier: the order of an enqueue's steps.

A single enqueue commits without fsync (visible at once), the producer logs its
``enqueued`` events, the notifier wakes an idle worker, and only then is the log
synced; the enqueue returns once durable. These tests listen on the real doorbell
pipe beside a real database file and record, when the sync runs, whether the
wake-up byte was already there (the real sync still runs).
"""
from __future__ import annotations

import logging

import pytest

from hopper.app import logs, queue
from hopper.app.backends.base import NewTask
from hopper.app.backends.sqlite import SqliteBackend


@pytest.fixture
def backend(tmp_path):
    backend = SqliteBackend(f"sqlite:///{tmp_path / 'queue.db'}", "full")
    backend.migrate()
    yield backend
    backend.close()


@pytest.fixture
def listener(backend):
    listener = backend.notifier().listen()
    yield listener
    listener.close()


def _record_syncs(backend, listener) -> list[bool]:
    """Per log sync, whether a wake-up was waiting in the pipe when it started."""
    woken = []
    real_sync = backend._sync_log

    def sync() -> None:
        woken.append(listener.wait(0))
        real_sync()

    backend._sync_log = sync
    return woken


def test_a_held_enqueue_wakes_workers_only_when_the_block_ends(backend, listener):
    with backend.notifier().held():
        backend.enqueue([NewTask(name="echo", args={})])
        assert not listener.wait(0)
    assert listener.wait(1)


def test_a_held_single_enqueue_syncs_its_log_after_the_wake_up(backend, listener):
    woken = _record_syncs(backend, listener)
    with backend.notifier().held():
        backend.enqueue([NewTask(name="echo", args={})])
        assert woken == []  # visible, not yet synced: the sync waits for the wake-up
    assert woken == [True]


def test_a_single_enqueue_outside_a_held_block_is_synced_when_it_returns(backend, listener):
    woken = _record_syncs(backend, listener)
    backend.enqueue([NewTask(name="echo", args={})])
    assert woken == [True]


def test_the_enqueued_event_is_logged_before_idle_workers_are_woken(client):
    assert client.backend.synchronous == "FULL"  # the path with the deferred log sync
    listener = client.backend.notifier().listen()
    woken_at_event = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "fields", {}).get("event") == "enqueued":
                woken_at_event.append(listener.wait(0))

    recorder, level = Recorder(), logs.tasks_log.level
    logs.tasks_log.addHandler(recorder)
    logs.tasks_log.setLevel(logging.DEBUG)
    try:
        queue.enqueue("echo", {"x": 1})
    finally:
        logs.tasks_log.removeHandler(recorder)
        logs.tasks_log.setLevel(level)
    try:
        assert woken_at_event == [False]
        assert listener.wait(1)
    finally:
        listener.close()
