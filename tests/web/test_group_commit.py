"""GroupCommit: concurrent single enqueues share transactions, errors stay per request."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from hopper.app.web.group_commit import GroupCommit


class Recorder:
    """A commit function that records group sizes and refuses requests marked bad."""

    def __init__(self, hold: threading.Event | None = None):
        self.groups: list[int] = []
        self.next_id = 0
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, requests):
        if self.hold is not None:
            self.hold.wait(5)
        if any(r.get("bad") for r in requests):
            raise ValueError("bad request")
        with self.lock:
            self.groups.append(len(requests))
            ids = list(range(self.next_id + 1, self.next_id + 1 + len(requests)))
            self.next_id += len(requests)
        return ids, [True] * len(requests)


def test_each_request_gets_its_own_distinct_id_under_concurrency():
    commit = Recorder()
    group = GroupCommit(commit)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: group.submit({"i": i}), range(400)))
    ids = [task_id for task_id, _ in results]
    assert sorted(ids) == list(range(1, 401))
    assert sum(commit.groups) == 400


def test_waiting_requests_are_committed_together():
    hold = threading.Event()
    commit = Recorder(hold)
    group = GroupCommit(commit)
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(group.submit, {"i": 0})
        # While the first commit is held, four more requests queue up behind it.
        later = [pool.submit(group.submit, {"i": i}) for i in range(1, 5)]
        while len(group._pending) < 4:
            threading.Event().wait(0.005)
        hold.set()
        results = [first.result(5)] + [f.result(5) for f in later]
    assert commit.groups == [1, 4]
    assert len({task_id for task_id, _ in results}) == 5


def test_a_bad_request_fails_alone():
    hold = threading.Event()
    commit = Recorder(hold)
    group = GroupCommit(commit)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(group.submit, {"i": 0})
        good = pool.submit(group.submit, {"i": 1})
        bad = pool.submit(group.submit, {"bad": True})
        while len(group._pending) < 2:
            threading.Event().wait(0.005)
        hold.set()
        assert first.result(5)[1] is True
        assert good.result(5)[1] is True
        with pytest.raises(ValueError):
            bad.result(5)
