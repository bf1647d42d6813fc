"""Flow control in the claim itself, on both engines: keys over their limit stay
queued, keys take turns, paused queues hold no slot, and bad options are refused."""
from __future__ import annotations

import pytest
from helpers import poll_until

from hopper.app import flow, queue, registry
from hopper.app import settings as settings_mod
from hopper.app.backends.base import Outcome


def _claim(client, worker: str = "w1", limit: int = 1, outcomes=()):
    return client.backend.finish_and_claim(worker, list(outcomes), [], limit, 30)


def _keys(client) -> dict:
    return {k["key"]: k for k in client.backend.limits()["concurrency"]}


def test_tasks_over_their_keys_limit_stay_queued(engine_client):
    ids = [queue.enqueue("echo", {"i": i}, concurrency_key="user:1") for i in range(3)]
    claimed = _claim(engine_client, limit=10)
    assert [t.id for t in claimed] == ids[:1]
    assert _keys(engine_client)["user:1"] == {"key": "user:1", "limit": 1, "running": 1,
                                             "queued": 2}
    assert queue.get_task(ids[1])["waiting_for"] == {
        "reason": "concurrency", "key": "user:1", "limit": 1, "running": 1}


def test_finishing_a_keyed_task_frees_its_slot_for_the_next(engine_client):
    ids = [queue.enqueue("echo", {"i": i}, concurrency_key="user:1") for i in range(2)]
    first = _claim(engine_client)[0]
    assert _claim(engine_client, "w2") == []
    done = Outcome(first.id, True, 1.0, 2.0, result="null")
    assert [t.id for t in _claim(engine_client, outcomes=[done])] == [ids[1]]


def _key_rows(client) -> dict:
    """``{key: (running, queued)}`` counted in the tasks table itself."""
    rows = client.backend.fetch(
        "SELECT concurrency_key, sum(CASE WHEN status = 'running' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) FROM tasks"
        " WHERE concurrency_key <> '' GROUP BY concurrency_key")
    return {key: (int(running), int(queued)) for key, running, queued in rows}


def test_a_batch_of_mixed_outcomes_leaves_each_keys_counts_equal_to_its_tasks(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": f"user:{i % 3}", "concurrency": 4,
                         "max_attempts": 2} for i in range(18)])
    claimed = _claim(engine_client, limit=12)
    assert len(claimed) == 12
    retry_at = 0.0  # a failed attempt with one left goes back to the queue at once
    outcomes = ([Outcome(t.id, True, 1.0, 2.0, result="null") for t in claimed[:6]]
                + [Outcome(t.id, False, 1.0, 2.0, error="boom", retry_at=retry_at)
                   for t in claimed[6:9]]
                + [Outcome(t.id, False, 1.0, 2.0, error="boom") for t in claimed[9:11]]
                # cancelled while it ran: its late success must not free its slot twice
                + [Outcome(claimed[11].id, True, 1.0, 2.0, result="null")])
    queue.cancel(claimed[11].id)
    _claim(engine_client, limit=5, outcomes=outcomes)
    counted = {key: (k["running"], k["queued"]) for key, k in _keys(engine_client).items()}
    assert counted == _key_rows(engine_client)
    assert sum(running for running, _ in counted.values()) == 5  # the second claim's
    assert sum(queued for _, queued in counted.values()) == 6 + 3 - 5  # + the retried


def test_a_batch_of_successes_frees_one_slot_per_task_of_each_key(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": f"user:{i % 2}", "concurrency": 3}
                        for i in range(8)])
    claimed = _claim(engine_client, limit=6)
    assert len(claimed) == 6
    done = [Outcome(t.id, True, 1.0, 2.0, result="null") for t in claimed]
    again = _claim(engine_client, limit=6, outcomes=done)
    assert len(again) == 2
    assert {k: (v["running"], v["queued"]) for k, v in _keys(engine_client).items()} == {
        "user:0": (1, 0), "user:1": (1, 0)}


def _success_without_freeing_its_slot(client, task_id: int) -> None:
    """What a daemon of the version before PostgreSQL's migration 0019 records for a
    success during a rolling upgrade: the task's row alone (the trigger no longer
    frees the slot there, and that daemon's statement does not either)."""
    backend, key = client.backend, queue.get_task(task_id)["concurrency_key"]
    with backend.transaction() as conn:
        running = backend.run(conn, "SELECT running FROM flow_keys WHERE key = ?",
                              (key,)).fetchone()[0]
        backend.run(conn, "UPDATE tasks SET status = 'succeeded', finished_at = 2.0"
                    " WHERE id = ?", (task_id,))
        # SQLite's trigger freed the slot: put the count back as it was.
        backend.run(conn, "UPDATE flow_keys SET running = ? WHERE key = ?", (running, key))


def test_a_slot_a_finished_task_still_holds_is_given_back_by_the_recount(engine_client):
    ids = [queue.enqueue("echo", {"i": i}, concurrency_key="user:1") for i in range(2)]
    first = _claim(engine_client)[0]
    _success_without_freeing_its_slot(engine_client, first.id)
    assert _claim(engine_client, "w2") == []  # the key still counts the ended task
    engine_client.backend.prune_flow()
    assert _keys(engine_client)["user:1"]["running"] == 0
    assert [t.id for t in _claim(engine_client, "w2")] == [ids[1]]


def test_the_recount_corrects_only_the_keys_whose_count_drifted(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": f"user:{i}"} for i in range(3)])
    claimed = _claim(engine_client, limit=2)
    assert len(claimed) == 2
    key = queue.get_task(claimed[1].id)["concurrency_key"]
    _success_without_freeing_its_slot(engine_client, claimed[1].id)
    assert engine_client.backend.recount_running() == [key]
    busy = {k: counts for k, counts in _key_rows(engine_client).items() if counts != (0, 0)}
    assert busy == {k: (v["running"], v["queued"]) for k, v in _keys(engine_client).items()}
    assert engine_client.backend.recount_running() == []


def test_a_keyed_parent_waiting_for_its_children_frees_its_slot_once(engine_client):
    from hopper.app.backends.base import NewTask

    backend = engine_client.backend
    parent, follower = (queue.enqueue("echo", {"i": i}, concurrency_key="user:1")
                        for i in range(2))
    assert [t.id for t in _claim(engine_client)] == [parent]
    (child, _), = backend.enqueue([NewTask(name="echo", args={}, parent_id=parent)])
    done = Outcome(parent, True, 1.0, 2.0, result="null")
    assert [t.id for t in _claim(engine_client, outcomes=[done])] == [follower]
    assert queue.get_task(parent)["status"] == "waiting"
    assert _keys(engine_client)["user:1"]["running"] == 1  # the follower's slot alone
    assert [t.id for t in _claim(engine_client, "w2")] == [child]
    _claim(engine_client, "w2", limit=0, outcomes=[Outcome(child, True, 1.0, 2.0, result="null")])
    assert queue.get_task(parent)["status"] == "succeeded"  # settled: no second free
    assert _keys(engine_client)["user:1"]["running"] == 1
    assert backend.recount_running() == []


def test_keyed_tasks_queued_before_migration_0019_are_claimed_after_it(pg_settings,
                                                                       monkeypatch):
    """PostgreSQL: groups that held queued tasks when the upgrade ran are ready ones."""
    from hopper.app import migrate

    earlier = [(v, path) for v, path in migrate.migration_files("postgres") if v < 19]
    with monkeypatch.context() as before_0019:
        before_0019.setattr(migrate, "migration_files", lambda engine: earlier)
        old = queue.configure(settings_mod.load(pg_settings))
        assert old.backend.fetch("SELECT max(version) FROM schema_migrations") == [(18,)]
        queue.enqueue_many([{"name": "echo", "args": {"i": i}, "concurrency_key": f"user:{i % 2}"}
                            for i in range(4)])
    client = queue.configure(settings_mod.load(pg_settings))  # applies 0019
    assert client.backend.fetch("SELECT ckey, queued, ready FROM flow_groups ORDER BY ckey") == [
        ("user:0", 2, True), ("user:1", 2, True)]
    claimed = _claim(client, limit=4)
    assert sorted(queue.get_task(t.id)["concurrency_key"] for t in claimed) == ["user:0", "user:1"]
    done = [Outcome(t.id, True, 1.0, 2.0, result="null") for t in claimed]
    assert len(_claim(client, limit=4, outcomes=done)) == 2


def test_a_claim_takes_a_few_tasks_of_a_key_with_few_free_slots(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": "small", "concurrency": 20}
                        for _ in range(30)])
    assert len(_claim(engine_client, limit=64)) == 8  # FLOW_GROUP_TAKE: not all 20 slots


def test_a_claim_takes_a_share_of_a_key_with_many_free_slots(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": "big", "concurrency": 200}
                        for _ in range(80)])
    assert len(_claim(engine_client, limit=64)) == 50  # a quarter of its 200 free slots
    assert len(_claim(engine_client, "w2", limit=64)) == 30  # the rest of its tasks


def test_keys_of_one_queue_take_turns_rather_than_arrival_order(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": "big", "concurrency": 10}
                        for _ in range(5)])
    queue.enqueue("echo", concurrency_key="small:1", concurrency=10)
    queue.enqueue("echo", concurrency_key="small:2", concurrency=10)
    keys = []
    for worker in range(3):
        task = _claim(engine_client, f"w{worker}")[0]
        keys.append(queue.get_task(task.id)["concurrency_key"])
    assert sorted(keys) == ["big", "small:1", "small:2"]


def test_keys_whose_tasks_are_all_delayed_do_not_hold_back_a_ready_key(engine_client):
    queue.enqueue_many([{"name": "echo", "concurrency_key": f"later:{i}", "delay": 3600}
                        for i in range(300)])
    ready = queue.enqueue("echo", concurrency_key="now:1")
    assert [t.id for t in _claim(engine_client)] == [ready]


def test_rate_keys_whose_tasks_are_all_delayed_do_not_hold_back_a_ready_one(engine_client):
    queue.enqueue_many([{"name": "echo", "rate_key": f"api:{i}", "delay": 3600}
                        for i in range(100)])
    ready = queue.enqueue("echo", rate_key="api:now")
    assert [t.id for t in _claim(engine_client)] == [ready]


def test_a_key_deferred_while_its_tasks_were_delayed_runs_when_one_is_due(engine_client):
    later = queue.enqueue("echo", concurrency_key="soon:1", delay=0.3)
    ready = queue.enqueue("echo", concurrency_key="now:1")
    assert [t.id for t in _claim(engine_client)] == [ready]  # defers soon:1
    assert poll_until(lambda: [t.id for t in _claim(engine_client, "w2")],
                      timeout=10) == [later]


def test_a_deferred_key_takes_its_turn_again_when_a_ready_task_arrives(engine_client):
    queue.enqueue("echo", concurrency_key="later", delay=3600)
    assert _claim(engine_client) == []  # defers "later" to its task's due time
    queue.enqueue_many([{"name": "echo", "concurrency_key": f"busy:{i}", "concurrency": 20}
                        for i in range(10) for _ in range(20)])
    ready = queue.enqueue("echo", concurrency_key="later")
    taken = [_claim(engine_client, f"w{n}")[0].id for n in range(11)]
    assert ready in taken


def test_a_paused_queue_holds_no_slot_of_a_key(engine_client):
    queue.enqueue("echo", queue="paused-q", concurrency_key="acct:1")
    other = queue.enqueue("echo", queue="open-q", concurrency_key="acct:1")
    queue.pause_queue("paused-q")
    assert [t.id for t in _claim(engine_client, limit=5)] == [other]


def test_ordinary_tasks_are_claimed_beside_keyed_ones(engine_client):
    keyed = queue.enqueue_many([{"name": "echo", "concurrency_key": "k"} for _ in range(3)])
    plain = queue.enqueue("echo")
    claimed = {t.id for t in _claim(engine_client, limit=10)}
    assert claimed == {keyed[0], plain}


def test_keyed_claims_are_counted_on_the_dashboard_like_any_claim(engine_client):
    engine_client.backend.set_rate_limit("smtp", flow.parse_rate("5/m"))
    queue.enqueue_many([{"name": "echo", "concurrency_key": f"user:{i}"} for i in range(3)]
                       + [{"name": "echo", "rate_key": "smtp"}, {"name": "echo"}])
    assert len(_claim(engine_client, limit=10)) == 5  # three keys, one under a rate, one plain
    counts = engine_client.backend.counts()["default"]
    assert (counts.get("queued", 0), counts["running"]) == (0, 5)
    picked = sum(m["picked"] for m in engine_client.backend.minutes(0) if m["queue"] == "default")
    assert picked == 5


def _drained(listener):
    """The listener, once the wake-ups already sent (the enqueue's own) are taken."""
    while listener.wait(0.2):
        pass
    return listener


def test_a_claim_that_leaves_keyed_tasks_ready_wakes_an_idle_worker(engine_client):
    listener = engine_client.backend.notifier().listen()
    try:
        queue.enqueue_many([{"name": "echo", "concurrency_key": f"user:{i}"} for i in range(2)])
        _drained(listener)
        assert len(_claim(engine_client, limit=1)) == 1
        assert listener.wait(5), "the other key's task is ready: an idle worker should wake"
    finally:
        listener.close()


def test_a_claim_that_takes_every_ready_keyed_task_wakes_nobody(engine_client):
    listener = engine_client.backend.notifier().listen()
    try:
        queue.enqueue_many([{"name": "echo", "concurrency_key": f"user:{i}"} for i in range(2)])
        _drained(listener)
        # Room for three: a claim that fills its whole batch wakes a peer by another rule.
        assert len(_claim(engine_client, limit=3)) == 2
        assert not listener.wait(0.5)
    finally:
        listener.close()


def test_a_claim_that_fills_its_batch_wakes_an_idle_peer(engine_client):
    listener = engine_client.backend.notifier().listen()
    try:
        queue.enqueue_many([{"name": "echo"} for _ in range(3)])
        _drained(listener)
        assert len(_claim(engine_client, limit=2)) == 2
        assert listener.wait(5)
    finally:
        listener.close()


def test_a_rate_key_without_a_limit_is_not_held_back(engine_client):
    ids = queue.enqueue_many([{"name": "echo", "rate_key": "nobody-set-this"}
                              for _ in range(3)])
    claimed = [t.id for w in ("a", "b") for t in _claim(engine_client, w)]
    assert claimed == ids[:2]


def test_a_rate_limit_allows_its_amount_per_period_then_waits(engine_client):
    engine_client.backend.set_rate_limit("smtp", flow.parse_rate("2/m"))
    ids = queue.enqueue_many([{"name": "echo", "rate_key": "smtp"} for _ in range(3)])
    claimed = [t.id for w in ("a", "b", "c") for t in _claim(engine_client, w)]
    assert claimed == ids[:2]
    waiting = queue.get_task(ids[2])["waiting_for"]
    assert waiting["reason"] == "rate" and waiting["rate"] == "2/m"
    rates = engine_client.backend.limits()["rates"]
    assert [(r["key"], r["rate"], r["used"], r["queued"]) for r in rates] == [("smtp", "2/m", 2, 1)]
    assert engine_client.backend.next_due() == pytest.approx(waiting["next_at"])


def test_registered_concurrency_key_is_filled_from_the_args(engine_client):
    @registry.task(name="flow_export", concurrency_key="user:{user_id}", concurrency=2)
    def flow_export(user_id: int):
        return user_id

    task = queue.get_task(queue.enqueue("flow_export", {"user_id": 42}))
    assert (task["concurrency_key"], task["concurrency_limit"], task["rate_key"]) == (
        "user:42", 2, None)
    with pytest.raises(ValueError, match="cannot be filled"):
        queue.enqueue("flow_export", {"account": 1})


@pytest.mark.parametrize("options", [
    {"concurrency_key": "k", "concurrency": 0},
    {"concurrency_key": "k", "concurrency": -1},
    {"concurrency": 2},
    {"concurrency_key": ""},
    {"rate_key": 5},
])
def test_bad_flow_options_are_refused_at_enqueue(engine_client, options):
    with pytest.raises(ValueError):
        queue.enqueue("echo", **options)
    assert queue.list_tasks() == []


@pytest.mark.parametrize("text", ["10", "10/d", "-1/s", "0/s", "ten/s", "1.5/s", None, 10])
def test_malformed_rates_are_refused(text):
    with pytest.raises(ValueError, match="rate"):
        flow.parse_rate(text)


def test_rate_strings_read_per_second_minute_and_hour():
    assert [str(flow.parse_rate(t)) for t in ("10/s", " 300 / m", "5000/h")] == [
        "10/s", "300/m", "5000/h"]


def test_settings_refuse_a_malformed_rate_limit(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("rate_limits:\n  api:github: 5000/day\n")
    with pytest.raises(settings_mod.SettingsError, match="rate_limits.api:github"):
        settings_mod.load(path)


def test_settings_rate_limits_are_synced_and_removed(engine_client):
    backend = engine_client.backend
    backend.set_rate_limit("manual", flow.parse_rate("1/s"))
    backend.sync_rate_limits({"a": flow.parse_rate("10/s"), "b": flow.parse_rate("5/m")})
    backend.sync_rate_limits({"a": flow.parse_rate("20/s")})
    rates = {r["key"]: (r["rate"], r["source"]) for r in backend.limits()["rates"]}
    assert rates == {"a": ("20/s", "settings"), "manual": ("1/s", "api")}


def test_a_lower_rate_counts_the_claims_already_made_under_the_old_one(engine_client):
    backend = engine_client.backend
    backend.set_rate_limit("feed", flow.parse_rate("5/m"))
    ids = queue.enqueue_many([{"name": "echo", "rate_key": "feed"} for _ in range(4)])
    claimed = [t.id for w in ("a", "b", "c") for t in _claim(engine_client, w)]
    assert claimed == ids[:3]
    backend.set_rate_limit("feed", flow.parse_rate("2/m"))  # three claims this minute already
    assert _claim(engine_client, "d") == []
    assert queue.get_task(ids[3])["waiting_for"]["reason"] == "rate"


def test_a_keyed_blocked_task_is_claimed_only_once_its_dependency_succeeded(engine_client):
    first = queue.enqueue("echo")
    keyed = queue.enqueue("echo", concurrency_key="user:9", rate_key="api", depends_on=[first])
    assert queue.get_task(keyed)["status"] == "blocked"
    (claimed,) = _claim(engine_client, limit=10)
    assert claimed.id == first
    done = Outcome(first, True, 1.0, 2.0, result="null")
    assert [t.id for t in _claim(engine_client, outcomes=[done])] == [keyed]
    assert _keys(engine_client)["user:9"]["running"] == 1


def test_a_keyed_claim_carries_the_enqueuing_spans_trace_context(engine_client):
    from opentelemetry.sdk.trace import TracerProvider

    engine_client.backend.set_rate_limit("api", flow.parse_rate("5/m"))  # the rated claim
    with TracerProvider().get_tracer("test").start_as_current_span("enqueue"):
        keyed = queue.enqueue("echo", concurrency_key="user:1")
        rated = queue.enqueue("echo", rate_key="api")
    stored = {task_id: engine_client.backend.fetch(
        "SELECT traceparent FROM tasks WHERE id = ?", (task_id,))[0][0] for task_id in
        (keyed, rated)}
    assert all(stored.values())
    claimed = {t.id: t.traceparent for t in _claim(engine_client, limit=10)}
    assert claimed == stored
