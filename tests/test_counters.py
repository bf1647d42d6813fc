"""Counters kept by the database in the transactions that change tasks, and the
bulk actions and search of the backends, on SQLite and PostgreSQL."""
from __future__ import annotations

import time

from hopper.app import reaper
from hopper.app.backends import open_backend, task_queries
from hopper.app.backends.base import NewTask, Outcome


def _enqueue(backend, n: int, name: str = "echo", queue: str = "default", **fields) -> list[int]:
    return [i for i, _ in backend.enqueue([NewTask(name=name, args={"i": i}, queue=queue, **fields)
                                           for i in range(n)])]


def _finish(backend, worker: str, n: int, ok: bool) -> list[int]:
    claimed = backend.finish_and_claim(worker, [], [], n, 30)
    now = time.time()
    backend.finish_and_claim(worker, [Outcome(c.id, ok, now - 0.01, now, "null" if ok else None,
                                              None if ok else "ValueError: no", None)
                                      for c in claimed], [], 0, 30)
    return [c.id for c in claimed]


def _counted_rows(backend) -> dict:
    out: dict = {}
    rows = backend.fetch("SELECT queue, status, count(*) FROM tasks GROUP BY queue, status")
    for queue, status, n in rows:
        out.setdefault(queue, {})[status] = n
    return out


def test_counts_match_the_rows_through_a_task_lifecycle(engine_client):
    backend = engine_client.backend
    _enqueue(backend, 5)
    _enqueue(backend, 2, queue="video")
    _finish(backend, "w:1", 2, ok=True)
    _finish(backend, "w:1", 1, ok=False)
    backend.finish_and_claim("w:1", [], [], 1, 30)  # one left running
    assert backend.counts() == _counted_rows(backend) == {
        "default": {"failed": 1, "running": 1, "succeeded": 2, "queued": 1},
        "video": {"queued": 2}}


def test_totals_never_decrease_across_a_prune(engine_client):
    backend = engine_client.backend
    _enqueue(backend, 4)
    _finish(backend, "w:1", 3, ok=True)
    _finish(backend, "w:1", 1, ok=False)
    before = backend.totals()
    assert reaper.prune(backend, succeeded_s=-60, failed_s=-60) == 4
    assert backend.totals() == before
    assert before["default"]["created"] == 4
    assert before["default"]["entered"]["succeeded"] == 3
    assert before["default"]["entered"]["failed"] == 1
    assert backend.counts() == {}


def test_per_minute_rows_count_finishes_and_pickups(engine_client):
    backend = engine_client.backend
    _enqueue(backend, 3)
    _finish(backend, "w:1", 2, ok=True)
    _finish(backend, "w:1", 1, ok=False)
    rows = backend.minutes(time.time() - 3600)
    assert sum(r["succeeded"] for r in rows) == 2
    assert sum(r["failed"] for r in rows) == 1
    assert sum(r["picked"] for r in rows) == 3
    pickup = backend.histogram("pickup")["default"]
    assert sum(n for _, n, _ in pickup) == 3


def test_bulk_retry_by_filter_requeues_only_failed_tasks(engine_client):
    backend = engine_client.backend
    _enqueue(backend, 3, name="echo")
    _finish(backend, "w:1", 3, ok=False)
    _enqueue(backend, 2, name="echo")
    assert backend.bulk("retry", filter={"name": "echo"}, dry_run=True) == {
        "matched": 3, "changed": 0}
    assert backend.bulk("retry", filter={"name": "echo"}) == {"matched": 3, "changed": 3}
    assert backend.counts() == {"default": {"queued": 5}}


def test_bulk_filter_touches_at_most_the_limit_per_call(engine_client, monkeypatch):
    monkeypatch.setattr(task_queries, "BULK_LIMIT", 7)
    backend = engine_client.backend
    _enqueue(backend, 10)
    assert backend.bulk("cancel", filter={"status": "queued"}) == {"matched": 7, "changed": 7}
    assert backend.counts() == {"default": {"cancelled": 7, "queued": 3}}


def test_bulk_delete_leaves_unfinished_tasks(engine_client):
    backend = engine_client.backend
    ids = _enqueue(backend, 4)
    _finish(backend, "w:1", 2, ok=True)
    assert backend.bulk("delete", ids=ids) == {"matched": 2, "changed": 2}
    assert sorted(t["status"] for t in backend.list()) == ["queued", "queued"]


def test_bulk_cancel_of_a_parent_cancels_its_children(engine_client):
    backend = engine_client.backend
    (parent,) = _enqueue(backend, 1, name="fan_out")
    _enqueue(backend, 2, name="child", parent_id=parent)
    assert backend.bulk("cancel", ids=[parent]) == {"matched": 1, "changed": 1}
    assert backend.get(parent)["children"] == {"cancelled": 2}


def test_search_finds_text_in_args_and_errors(engine_client):
    backend = engine_client.backend
    backend.enqueue([NewTask(name="echo", args={"path": "holiday/beach.jpg"})])
    _enqueue(backend, 2)
    _finish(backend, "w:1", 3, ok=False)
    assert [t["args"] for t in backend.list(q="BEACH")] == [{"path": "holiday/beach.jpg"}]
    assert len(backend.list(q="ValueError: no")) == 3
    assert backend.list(q="100%") == []


def test_sparse_search_pages_through_a_bounded_window(engine_client, monkeypatch):
    monkeypatch.setattr(task_queries, "LIST_SCAN_WINDOW", 10)
    backend = engine_client.backend
    (needle,) = [i for i, _ in backend.enqueue([NewTask(name="echo", args={"needle": True})])]
    _enqueue(backend, 25)
    page, cursor = backend.page(limit=5, q="needle")
    assert page == [] and cursor is not None
    found = []
    while cursor is not None:
        page, cursor = backend.page(limit=5, cursor=cursor, q="needle")
        found += [t["id"] for t in page]
    assert found == [needle]


def test_postgres_counter_rows_of_closed_connections_fold_into_one(pg_url):
    first = open_backend(pg_url)
    first.migrate()
    _enqueue(first, 3)
    first.close()
    second = open_backend(pg_url)
    _finish(second, "w:1", 2, ok=True)
    before = (second.counts(), second.totals())
    second.prune_counters(time.time())
    shards = {r[0] for r in second.fetch("SELECT DISTINCT shard FROM task_counts")}
    assert (second.counts(), second.totals()) == before
    assert len(shards) == 2 and 0 in shards  # the closed connection's rows are in shard 0
    second.close()


def test_search_within_a_tag(engine_client):
    backend = engine_client.backend
    backend.enqueue([NewTask(name="echo", args={"path": "beach.jpg"}, tags=("user:1",)),
                     NewTask(name="echo", args={"path": "beach.jpg"}, tags=("user:2",)),
                     NewTask(name="echo", args={"path": "city.jpg"}, tags=("user:1",))])
    page, cursor = backend.page(limit=10, q="beach", tags=["user:1"])
    assert [(t["args"]["path"], t["tags"]) for t in page] == [("beach.jpg", ["user:1"])]
    assert cursor is None
