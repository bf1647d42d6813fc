"""The slot a worker shares with its supervisor: a stop can only hit the task it names."""
from __future__ import annotations

import multiprocessing
import time

from hopper.worker.loop import Slot


def _run_two_tasks(slot: Slot, began, marker: str) -> None:
    slot.begin(1, time.monotonic() - 1)   # task 1, already past its deadline
    began.set()
    slot.end()                            # finishes it at once and moves on
    slot.begin(2, 0.0)
    with open(marker, "w") as f:
        f.write("task 2 started")
    time.sleep(30)


def test_a_stop_for_a_task_the_worker_moved_on_from_does_nothing():
    slot = Slot(multiprocessing.get_context("spawn"))
    slot.begin(2, 0.0)
    calls = []
    assert slot.stop_if_running(1, lambda: calls.append("kill")) is False
    assert calls == []


def test_a_stop_racing_the_worker_kills_only_the_task_it_names(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(5):
        slot, began = Slot(ctx), ctx.Event()
        marker = tmp_path / f"round-{round_}"
        worker = ctx.Process(target=_run_two_tasks, args=(slot, began, str(marker)))
        worker.start()
        assert began.wait(30)
        if slot.stop_if_running(1, worker.kill):
            worker.join(10)
            assert not marker.exists(), "the kill hit task 2"
        else:
            assert worker.is_alive() and slot.current()[0] in (None, 2)
            worker.kill()
            worker.join(10)
