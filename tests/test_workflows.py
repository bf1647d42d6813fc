"""Task dependencies against real daemons, on SQLite and PostgreSQL: graphs built in
one call run each node once, in dependency order; failures cancel what is
downstream; retry brings it back; invalid graphs are refused whole."""
from __future__ import annotations

import random
import threading
import time

import pytest
import workflow_tasks  # noqa: F401  (registers wf_step in this process too)
from helpers import poll_until
from workflow_tasks import runs

from hopper.app import queue
from hopper.app.backends.base import InvalidDependency, Outcome
from hopper.app.engines import InlineEngine

MODULES = {"modules": ["sample_tasks", "workflow_tasks"]}


def _step(log, label: str, after=(), **args) -> dict:
    return {"name": "wf_step", "ref": label, "depends_on": list(after),
            "args": {"log": str(log), "label": label, **args}}


def _all_finished(ids) -> bool:
    return all(queue.get_task(i)["status"] in ("succeeded", "failed", "cancelled") for i in ids)


def _assert_ran_once_in_order(log, graph: dict[str, list[str]]) -> None:
    seen = runs(log)
    assert sorted(seen) == sorted(graph), "every node ran"
    for label, deps in graph.items():
        assert len(seen[label]) == 1, f"{label} ran {len(seen[label])} times"
        start = seen[label][0][0]
        for dep in deps:
            assert seen[dep][0][1] is not None and seen[dep][0][1] <= start, (
                f"{label} started at {start} before {dep} finished at {seen[dep][0][1]}")


def _count(client) -> int:
    return client.backend.fetch("SELECT count(*) FROM tasks")[0][0]


def test_a_diamond_runs_each_node_once_after_its_dependencies(
        daemons_on_engine, engine_client, tmp_path):
    daemons_on_engine(2, tasks=MODULES)
    log = tmp_path / "diamond.log"
    graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    # Listed dependents first: the call orders the graph itself.
    ids = queue.enqueue_many([_step(log, "d", ["b", "c"], seconds=0.05),
                              _step(log, "b", ["a"], seconds=0.1), _step(log, "c", ["a"]),
                              _step(log, "a", seconds=0.1)])
    assert queue.get_task(ids[0])["status"] == "blocked"  # a and b take 0.2 s at least
    poll_until(lambda: _all_finished(ids), timeout=60)
    assert [queue.get_task(i)["status"] for i in ids] == ["succeeded"] * 4
    _assert_ran_once_in_order(log, graph)


def test_a_random_dag_of_fifty_nodes_runs_each_node_once_in_dependency_order(
        daemons_on_engine, engine_client, tmp_path):
    daemons_on_engine(2, tasks=MODULES)
    log = tmp_path / "dag.log"
    rng = random.Random(19)
    graph = {f"n{i}": sorted({f"n{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))})
             for i in range(50)}
    items = [_step(log, label, deps) for label, deps in graph.items()]
    rng.shuffle(items)
    ids = queue.enqueue_many(items)
    poll_until(lambda: _all_finished(ids), timeout=120)
    assert {queue.get_task(i)["status"] for i in ids} == {"succeeded"}
    _assert_ran_once_in_order(log, graph)


def test_a_failure_cancels_exactly_the_dependents_downstream_with_the_reason(
        daemons_on_engine, engine_client, tmp_path):
    daemons_on_engine(2, tasks=MODULES)
    log, flag = tmp_path / "fail.log", tmp_path / "fail-b"
    flag.touch()
    ids = dict(zip("abcdef", queue.enqueue_many([
        _step(log, "a"), _step(log, "b", ["a"], fail_while=str(flag)),
        _step(log, "c", ["a"]), _step(log, "d", ["b", "c"]), _step(log, "e", ["d"]),
        _step(log, "f", ["c"])]), strict=True))
    poll_until(lambda: _all_finished(ids.values()), timeout=60)
    status = {k: queue.get_task(i)["status"] for k, i in ids.items()}
    assert status == {"a": "succeeded", "b": "failed", "c": "succeeded", "d": "cancelled",
                      "e": "cancelled", "f": "succeeded"}
    assert queue.get_task(ids["d"])["error"] == f"dependency {ids['b']} failed"
    assert queue.get_task(ids["e"])["error"] == (
        f"dependency {ids['d']} was cancelled (dependency {ids['b']} failed)")
    assert "d" not in runs(log) and "e" not in runs(log)


def test_retrying_the_failed_node_brings_its_dependents_back_and_runs_the_rest(
        daemons_on_engine, engine_client, tmp_path):
    daemons_on_engine(2, tasks=MODULES)
    log, flag = tmp_path / "retry.log", tmp_path / "fail-b"
    flag.touch()
    ids = dict(zip("abcd", queue.enqueue_many([
        _step(log, "a"), _step(log, "b", ["a"], fail_while=str(flag)),
        _step(log, "c", ["b"]), _step(log, "d", ["c"])]), strict=True))
    poll_until(lambda: queue.get_task(ids["d"])["status"] == "cancelled", timeout=60)
    flag.unlink()
    retried = queue.retry(ids["b"])
    assert retried["status"] == "queued"
    assert queue.get_task(ids["c"])["status"] in ("blocked", "queued", "running", "succeeded")
    poll_until(lambda: _all_finished(ids.values()), timeout=60)
    assert {k: queue.get_task(i)["status"] for k, i in ids.items()} == dict.fromkeys(
        "abcd", "succeeded")
    assert queue.get_task(ids["c"])["error"] is None
    seen = runs(log)
    assert [len(seen[k]) for k in "abcd"] == [1, 2, 1, 1]
    assert seen["c"][0][0] >= seen["b"][-1][1] and seen["d"][0][0] >= seen["c"][0][1]


def test_a_cycle_is_refused_with_nothing_enqueued(engine_client, tmp_path):
    before = _count(engine_client)
    with pytest.raises(InvalidDependency, match="cycle"):
        queue.enqueue_many([_step(tmp_path, "x"), _step(tmp_path, "a", ["c"]),
                            _step(tmp_path, "b", ["a"]), _step(tmp_path, "c", ["b"])])
    assert _count(engine_client) == before


@pytest.mark.parametrize("after", [["nowhere"], [10**12]], ids=["unknown ref", "unknown id"])
def test_an_unknown_ref_or_id_is_refused_with_nothing_enqueued(engine_client, tmp_path, after):
    existing = queue.enqueue("echo")
    before = _count(engine_client)
    with pytest.raises(InvalidDependency):
        queue.enqueue_many([_step(tmp_path, "a", [existing]), _step(tmp_path, "b", after)])
    assert _count(engine_client) == before


def test_a_dependency_that_already_failed_cancels_a_new_dependent_at_once(
        engine_client, tmp_path):
    task_id = queue.enqueue("echo")
    queue.cancel(task_id)
    dependent = queue.enqueue("echo", depends_on=[task_id])
    found = queue.get_task(dependent)
    assert (found["status"], found["error"]) == (
        "cancelled", f"dependency {task_id} was cancelled")


def test_blocked_tasks_are_counted_and_move_to_queued_in_the_counters(engine_client, tmp_path):
    first = queue.enqueue("echo")
    queue.enqueue_many([{"name": "echo", "depends_on": [first]} for _ in range(3)])
    assert engine_client.backend.counts()["default"] == {"queued": 1, "blocked": 3}
    assert [t["id"] for t in queue.list_tasks(status="blocked")] == [first + 3, first + 2,
                                                                     first + 1]


def test_dependencies_combine_with_fan_out_and_continuations(
        daemons_on_engine, engine_client, tmp_path):
    """A task after a fan-out parent runs once the parent settled (after its children
    and with its continuation enqueued); a child may wait for a sibling."""
    daemons_on_engine(2, tasks=MODULES)
    log = tmp_path / "combo.log"
    parent, after_parent = queue.enqueue_many([
        {"name": "fan_out", "ref": "p", "args": {"children": 3, "log": str(log) + ".kids"}},
        _step(log, "after", ["p"])])
    poll_until(lambda: queue.get_task(after_parent)["status"] == "succeeded", timeout=60)
    settled = queue.get_task(parent)
    assert settled["status"] == "succeeded"
    assert runs(log)["after"][0][0] >= settled["finished_at"]
    continuation = engine_client.backend.fetch(
        "SELECT id FROM tasks WHERE unique_key = ?", (f"continuation:{parent}",))[0][0]
    poll_until(lambda: queue.get_task(continuation)["status"] == "succeeded", timeout=30)
    holder = queue.enqueue("wf_parent", {"log": str(log)})
    poll_until(lambda: queue.get_task(holder)["status"] == "succeeded", timeout=60)
    first, second = queue.get_task(holder)["result"]["children"]
    assert runs(log)["two"][0][0] >= runs(log)["one"][0][1]
    graph = queue.client().backend  # the workflow of the first parent has every kind of edge
    from hopper.app.workflow import workflow

    kinds = {(e["from"], e["to"]): e["kind"] for e in workflow(graph, after_parent)["edges"]}
    assert kinds[(parent, after_parent)] == "depends_on"
    assert kinds[(parent, continuation)] == "continuation"
    assert sorted(k for k, kind in kinds.items() if kind == "child") == [
        (parent, c) for c in sorted(t["id"] for t in graph.list(parent_id=parent))]
    assert {e["kind"] for e in workflow(graph, second)["edges"]} == {"child", "depends_on"}
    assert first < second


def test_cancelling_a_blocked_task_cancels_its_dependents(engine_client):
    first = queue.enqueue("echo", run_after=4_000_000_000)
    blocked = queue.enqueue("echo", depends_on=[first])
    last = queue.enqueue("echo", depends_on=[blocked])
    queue.cancel(blocked)
    found = queue.get_task(last)
    assert (found["status"], found["error"]) == (
        "cancelled", f"dependency {blocked} was cancelled")
    assert queue.get_task(first)["status"] == "queued"


def test_eager_mode_runs_a_graph_in_dependency_order(engine_client, monkeypatch, tmp_path):
    monkeypatch.setattr(engine_client, "engine", InlineEngine(engine_client.backend))
    log = tmp_path / "eager.log"
    ids = queue.enqueue_many([_step(log, "d", ["b", "c"]), _step(log, "b", ["a"]),
                              _step(log, "c", ["a"]), _step(log, "a")])
    assert [queue.get_task(i)["status"] for i in ids] == ["succeeded"] * 4
    _assert_ran_once_in_order(log, {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})


def test_a_bulk_cancel_of_blocked_tasks_cancels_them_and_what_waits_for_them(engine_client):
    first = queue.enqueue("echo", run_after=4_000_000_000)
    middle = queue.enqueue("echo", depends_on=[first], queue="wf-bulk")
    last = queue.enqueue("echo", depends_on=[middle])
    result = engine_client.backend.bulk("cancel", filter={"status": "blocked", "queue": "wf-bulk"})
    assert result == {"matched": 1, "changed": 1}
    assert [queue.get_task(i)["status"] for i in (first, middle, last)] == [
        "queued", "cancelled", "cancelled"]


def test_pruning_finished_tasks_takes_their_dependency_edges_along(engine_client):
    first = queue.enqueue("echo")
    queue.enqueue_many([{"name": "echo", "depends_on": [first]} for _ in range(3)])
    queue.cancel(first)  # cancels the three dependents with it
    edges = "SELECT count(*) FROM task_deps"
    assert engine_client.backend.fetch(edges) == [(3,)]
    future = 4_000_000_000
    assert engine_client.backend.prune(succeeded_before=future, failed_before=future) == 4
    assert engine_client.backend.fetch(edges) == [(0,)]


def test_many_dependencies_finishing_at_once_release_their_dependents_once(
        daemons_on_engine, engine_client, tmp_path):
    """Sixty dependencies run by four workers of two daemons, three fan-in dependents
    each waiting for all of them: each dependent runs once, after all, and no
    transaction is lost to a deadlock."""
    daemons = daemons_on_engine(2, tasks=MODULES)
    log = tmp_path / "fan-in.log"
    sources = [_step(log, f"s{i}") for i in range(60)]
    sinks = [_step(log, f"sink{k}", [f"s{i}" for i in range(60)]) for k in range(3)]
    ids = queue.enqueue_many(sources + sinks)
    poll_until(lambda: _all_finished(ids), timeout=120)
    assert {queue.get_task(i)["status"] for i in ids} == {"succeeded"}
    _assert_ran_once_in_order(log, {**{f"s{i}": [] for i in range(60)},
                                    **{f"sink{k}": [f"s{i}" for i in range(60)]
                                       for k in range(3)}})
    for daemon in daemons:
        assert "deadlock" not in daemon.read_log().lower()



def _finish_and_enqueue_a_dependent_at_once(backend, dependency: int) -> int:
    """Finish the running ``dependency`` on one thread while another enqueues a task
    that depends on it; the dependent's id."""
    start, dependents = threading.Barrier(2), []

    def finish():
        start.wait()
        now = time.time()
        backend.finish_and_claim("test:worker", [Outcome(dependency, True, now, now,
                                                         result="null")], [], 0, 30)

    def enqueue_dependent():
        start.wait()
        dependents.extend(queue.enqueue_many([{"name": "echo", "depends_on": [dependency]}]))

    threads = [threading.Thread(target=finish), threading.Thread(target=enqueue_dependent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return dependents[0]


def test_a_dependent_enqueued_while_its_dependency_finishes_is_never_left_blocked(
        engine_client):
    """The finish and the enqueue of a dependent race, many times over: whichever
    commits first, the dependent ends up queued (on PostgreSQL the finish waits for
    the enqueue's row lock, then sees the dependency flagged as depended on)."""
    backend = engine_client.backend
    for _ in range(60):
        (dependency,) = queue.enqueue_many([{"name": "echo"}])
        claimed = backend.finish_and_claim("test:worker", [], [], 1, 30)
        assert [t.id for t in claimed] == [dependency]
        dependent = _finish_and_enqueue_a_dependent_at_once(backend, dependency)
        assert queue.get_task(dependency)["status"] == "succeeded"
        assert queue.get_task(dependent)["status"] == "queued"
        backend.finish_and_claim("test:worker", [], [], 1, 30)  # out of the next round's way
