"""Tags and meta on tasks through the Python API, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from helpers import poll_until

from hopper import enqueue, get_task, list_tasks
from hopper.app import queue
from hopper.app.backends.base import MAX_META_BYTES, MAX_TAG_LENGTH, MAX_TAGS


def _ids(tasks: list[dict]) -> list[int]:
    return [t["id"] for t in tasks]


@pytest.fixture
def tagged(engine_client) -> dict[str, int]:
    """Four tasks: two of user 42 (one a report), one of user 7, one untagged."""
    return {
        "a": enqueue("echo", {}, tags=["user:42", "report"]),
        "b": enqueue("echo", {}, tags=["user:7", "report"]),
        "c": enqueue("echo", {}, tags=["user:42"]),
        "d": enqueue("echo", {}),
    }


def test_tags_and_meta_are_stored_and_returned(engine_client):
    task_id = enqueue("echo", {}, tags=["user:42", "report"], meta={"source": "upload"})
    task = get_task(task_id)
    assert task["tags"] == ["user:42", "report"]
    assert task["meta"] == {"source": "upload"}


def test_a_task_without_tags_or_meta_has_empty_ones(engine_client):
    task = get_task(enqueue("echo", {}))
    assert task["tags"] == [] and task["meta"] == {}


def test_one_tag_lists_only_its_tasks_newest_first(tagged):
    assert _ids(list_tasks(tags=["user:42"])) == [tagged["c"], tagged["a"]]


def test_several_tags_list_the_tasks_that_carry_all_of_them(tagged):
    assert _ids(list_tasks(tags=["user:42", "report"])) == [tagged["a"]]
    assert _ids(list_tasks(tags=["report", "user:42"])) == [tagged["a"]]


def test_a_tag_nobody_carries_lists_nothing(tagged):
    assert list_tasks(tags=["user:999"]) == []
    assert list_tasks(tags=["user:7", "user:42"]) == []


def test_tag_filter_pages_with_the_cursor(engine_client):
    ids = [enqueue("echo", {"i": i}, tags=["paged"]) for i in range(5)]
    first = list_tasks(tags=["paged"], limit=2)
    second = list_tasks(tags=["paged"], limit=2, cursor=first[-1]["id"])
    assert _ids(first) + _ids(second) == ids[::-1][:4]


def test_tag_filter_combines_with_the_status_filter(tagged):
    queue.cancel(tagged["a"])
    assert _ids(list_tasks(tags=["user:42"], status="cancelled")) == [tagged["a"]]
    assert _ids(list_tasks(tags=["user:42"], status="queued")) == [tagged["c"]]


def test_a_duplicate_unique_key_adds_no_tags(engine_client):
    first = enqueue("echo", {}, unique_key="once", tags=["first"])
    assert enqueue("echo", {}, unique_key="once", tags=["second"]) == first
    assert get_task(first)["tags"] == ["first"]
    assert list_tasks(tags=["second"]) == []


def test_repeated_tags_are_kept_once(engine_client):
    task_id = enqueue("echo", {}, tags=["x", "y", "x"])
    assert get_task(task_id)["tags"] == ["x", "y"]
    assert _ids(list_tasks(tags=["x"])) == [task_id]


def test_batch_enqueue_stores_each_tasks_tags(engine_client):
    ids = queue.enqueue_many([{"name": "echo", "tags": [f"user:{i}", "batch"]} for i in range(3)])
    assert _ids(list_tasks(tags=["batch"])) == ids[::-1]
    assert _ids(list_tasks(tags=["user:1"])) == [ids[1]]


def test_deleting_finished_tasks_removes_their_tag_rows(engine_client):
    task_id = enqueue("echo", {}, tags=["gone", "also-gone"])
    queue.cancel(task_id)
    assert engine_client.backend.prune(succeeded_before=2e9, failed_before=2e9) == 1
    rows = engine_client.backend.fetch("SELECT count(*) FROM task_tags")
    assert rows[0][0] == 0


@pytest.mark.parametrize("tags, message", [
    ("user:42", "tags must be a list"),
    ([42], "non-empty string"),
    ([""], "non-empty string"),
    (["x" * (MAX_TAG_LENGTH + 1)], "non-empty string"),
    (["a\x00b"], "control character"),
    (["tab\there"], "control character"),
    ([f"t{i}" for i in range(MAX_TAGS + 1)], f"at most {MAX_TAGS} tags"),
])
def test_bad_tags_are_refused_and_nothing_is_written(client, tags, message):
    with pytest.raises(ValueError, match=message):
        enqueue("echo", {}, tags=tags)
    assert client.backend.counts() == {}


@pytest.mark.parametrize("meta, message", [
    ([1, 2], "meta must be a JSON object"),
    ({"x": object()}, "not JSON-serializable"),
    ({"big": "x" * MAX_META_BYTES}, f"at most {MAX_META_BYTES}"),
])
def test_bad_meta_is_refused_and_nothing_is_written(client, meta, message):
    with pytest.raises(ValueError, match=message):
        enqueue("echo", {}, meta=meta)
    assert client.backend.counts() == {}


def test_set_meta_outside_a_task_is_an_error(client):
    with pytest.raises(RuntimeError, match="only available inside a running task"):
        queue.set_meta({"x": 1})


def test_set_meta_merges_into_the_initial_meta(client, monkeypatch):
    monkeypatch.setenv("HOPPER_EAGER", "1")
    from hopper.app import settings

    queue.configure(settings.load(client.settings.path))
    release = client.settings.path.parent / "release"
    release.touch()
    task = get_task(enqueue("report_meta", {"release": str(release)}, meta={"owner": "ann"}))
    assert task["meta"]["owner"] == "ann" and task["meta"]["stage"] == "finished"
    assert task["result"] == task["meta"]


def test_set_meta_is_visible_while_the_task_runs(make_daemon, tmp_path, database):
    from hopper.app import settings

    daemon = make_daemon(database=database, workers=1, start=False)
    queue.configure(settings.load(daemon.config))  # migrates before the daemon polls its tables
    daemon.start()
    release = tmp_path / "release"
    task_id = enqueue("report_meta", {"release": str(release)}, meta={"owner": "ann"})
    running = poll_until(lambda: (t := get_task(task_id))["meta"].get("stage") and t,
                         timeout=30, message=lambda: f"no meta reported: {get_task(task_id)}")
    assert running["status"] == "running"
    assert running["meta"] == {"owner": "ann", "stage": "started",
                               "pid": running["meta"]["pid"]}
    release.touch()
    done = queue.wait(task_id, timeout=30)
    assert done["status"] == "succeeded"
    assert done["meta"] == {"owner": "ann", "stage": "finished", "pid": running["meta"]["pid"]}
