"""Queues an operator steers, against real daemons on both engines: pausing,
per-queue concurrency, routing with ``worker --queues`` and the library rule."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from itertools import pairwise

import pytest
import requests
from daemons import REPO
from helpers import poll_until

from hopper.app import queue


def _counts(client, name: str) -> dict:
    return client.backend.counts().get(name, {})


def _enqueue(name: str, n: int, task: str = "echo", **args) -> list[int]:
    return queue.enqueue_many([{"name": task, "args": {**args}, "queue": name}
                               for _ in range(n)])


def _results(ids: list[int]) -> list[dict]:
    return [queue.get_task(i)["result"] for i in ids]


def _cli(config, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    return subprocess.run([sys.executable, str(REPO / "run.py"), "--config", str(config), *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


def test_paused_queue_keeps_its_tasks_while_others_drain_and_drains_on_resume(
        database, engine_client, make_daemon):
    make_daemon(database=database, workers=2)
    assert queue.pause_queue("bulk") is True
    _enqueue("bulk", 50)
    _enqueue("default", 50)
    poll_until(lambda: _counts(engine_client, "default") == {"succeeded": 50}, timeout=60,
               message=lambda: str(engine_client.backend.counts()))
    assert _counts(engine_client, "bulk") == {"queued": 50}

    assert queue.resume_queue("bulk") is True
    poll_until(lambda: _counts(engine_client, "bulk") == {"succeeded": 50}, timeout=60,
               message=lambda: str(engine_client.backend.counts()))


def test_concurrency_one_never_runs_two_tasks_of_that_queue_at_once(
        database, engine_client, make_daemon):
    make_daemon(database=database, workers=4, queues={"solo": {"concurrency": 1}})
    solo = _enqueue("solo", 12, "timed", seconds=0.1)
    others = _enqueue("default", 12, "timed", seconds=0.3)
    poll_until(lambda: all(queue.get_task(i)["status"] == "succeeded" for i in solo + others),
               timeout=60, message=lambda: str(engine_client.backend.counts()))

    spans = sorted((r["start"], r["end"]) for r in _results(solo))
    overlaps = [(a, b) for a, b in pairwise(spans) if b[0] < a[1]]
    assert overlaps == []
    # The pool did run tasks side by side: the limit, not a lack of workers, kept solo serial.
    other_spans = sorted((r["start"], r["end"]) for r in _results(others))
    assert any(b[0] < a[1] for a, b in pairwise(other_spans))


def test_batched_claims_of_fast_tasks_never_exceed_the_queue_concurrency(
        database, engine_client, make_daemon):
    make_daemon(database=database, workers=4, queues={"pair": {"concurrency": 2}})
    # Tasks this short are claimed in batches of up to 64: the limit must hold per batch.
    ids = _enqueue("pair", 300, "timed", seconds=0.001)
    poll_until(lambda: _counts(engine_client, "pair") == {"succeeded": 300}, timeout=90,
               message=lambda: str(engine_client.backend.counts()))

    events = sorted([(r["start"], 1) for r in _results(ids)]
                    + [(r["end"], -1) for r in _results(ids)])
    running, most = 0, 0
    for _, step in events:
        running += step
        most = max(most, running)
    # Which workers win the claims is up to the machine's scheduling (one worker may
    # take every batch), so only the limit itself is asserted here.
    assert most <= 2


def test_worker_with_queues_runs_only_those_queues(database, engine_client, make_daemon):
    q1, q2, plain = _enqueue("q1", 10), _enqueue("q2", 10), _enqueue("default", 10)
    make_daemon("worker", extra_args=("--queues", "q2"), database=database, workers=2)
    poll_until(lambda: _counts(engine_client, "q2") == {"succeeded": 10}, timeout=60,
               message=lambda: str(engine_client.backend.counts()))
    assert _counts(engine_client, "q1") == {"queued": 10}
    assert _counts(engine_client, "default") == {"queued": 10}
    assert len(q1) == len(plain) == len(q2)


def test_library_queue_is_not_claimed_by_a_worker_daemon_unless_named(
        database, engine_client, make_daemon, other_settings):
    library = _enqueue("library", 5)
    plain = _enqueue("default", 5)
    make_daemon("worker", database=database, workers=2)
    poll_until(lambda: _counts(engine_client, "default") == {"succeeded": 5}, timeout=60)
    assert _counts(engine_client, "library") == {"queued": 5}

    make_daemon("worker", extra_args=("--queues", "library"), config=other_settings("named"))
    poll_until(lambda: _counts(engine_client, "library") == {"succeeded": 5}, timeout=60,
               message=lambda: str(engine_client.backend.counts()))
    assert len(library) == len(plain)


def _stream_then_pause(client, pause) -> None:
    """Keep 2 workers of another daemon busy with ``flow`` tasks, pause the queue with
    ``pause()``, and check no flow task started more than a second after it returned."""
    ids = _enqueue("flow", 200, "timed", seconds=0.05)
    poll_until(lambda: _counts(client, "flow").get("succeeded", 0) >= 10, timeout=60,
               message=lambda: str(client.backend.counts()))
    pause()
    paused_at = time.time()
    # Whatever was running when the pause landed finishes; then nothing new starts.
    poll_until(lambda: time.time() > paused_at + 2 and not _counts(client, "flow").get("running"),
               timeout=30, message=lambda: str(client.backend.counts()))
    started = [r["start"] for r in _results(ids) if r]
    assert max(started) < paused_at + 1.0
    left = _counts(client, "flow").get("queued", 0)
    assert left > 0

    assert queue.resume_queue("flow") is True
    poll_until(lambda: _counts(client, "flow") == {"succeeded": 200}, timeout=60,
               message=lambda: str(client.backend.counts()))


def test_pause_from_the_cli_is_honoured_by_another_daemon_within_a_second(
        database, engine_client, engine_settings, make_daemon, other_settings):
    make_daemon("worker", extra_args=("--queues", "flow"), config=other_settings("b", workers=2))

    def pause():
        result = _cli(engine_settings, "queue", "pause", "flow")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "queue flow paused"

    _stream_then_pause(engine_client, pause)


def test_pause_from_the_api_is_honoured_by_another_daemon_within_a_second(
        database, engine_client, make_daemon, other_settings):
    web = make_daemon(database=database, workers=1, queues={"flow": {"concurrency": 0}})
    poll_until(lambda: _healthy(web.base_url), timeout=30, message=web.read_log)
    make_daemon("worker", extra_args=("--queues", "flow"), config=other_settings("b", workers=2))

    def pause():
        response = requests.post(f"{web.base_url}/api/queues/flow/pause", timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == {"name": "flow", "paused": True, "changed": True}

    _stream_then_pause(engine_client, pause)


def _healthy(base_url: str) -> bool:
    try:
        return requests.get(base_url + "/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False  # not listening yet, or its web worker is still booting


def test_queue_cli_refuses_an_unknown_action_and_bad_names(engine_settings, engine_client):
    result = _cli(engine_settings, "queue", "frobnicate", "default")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    result = _cli(engine_settings, "queue", "pause", "a,b")
    assert result.returncode == 2
    assert result.stderr.startswith("error: queue: queue name 'a,b' may not contain commas")
    result = _cli(engine_settings, "worker", "--queues", "q1,,q2")
    assert result.returncode == 2
    assert "error: --queues expects queue names separated by commas" in result.stderr
    assert engine_client.backend.paused_queues() == {}


def test_a_bad_queue_concurrency_in_settings_is_refused_at_start(engine_settings):
    text = engine_settings.read_text()
    for value, message in (("-1", "queues.video.concurrency: must be between 0 and"),
                           ("x", "queues.video.concurrency: expected a whole number, got 'x'")):
        engine_settings.write_text(text + f"queues:\n  video: {{concurrency: {value}}}\n")
        result = _cli(engine_settings, "serve")
        assert result.returncode == 2
        assert message in result.stdout + result.stderr


def test_enqueue_refuses_a_queue_name_that_could_never_be_paused(engine_client):
    for bad in ("a,b", "a/b", " padded", ""):
        with pytest.raises(ValueError, match="queue"):
            queue.enqueue("echo", {}, queue=bad)
    assert queue.list_tasks() == []


def test_pausing_by_the_python_api_checks_the_name_as_enqueue_does(engine_client):
    with pytest.raises(ValueError, match="may not contain commas"):
        queue.pause_queue("a,b")
    assert engine_client.backend.paused_queues() == {}
