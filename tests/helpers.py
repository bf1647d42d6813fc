"""Small test utilities: waiting on a condition with a deadline instead of sleeping."""
from __future__ import annotations

import multiprocessing
import os
import time
from typing import Callable


def poll_until(predicate: Callable[[], object], timeout: float = 10, interval: float = 0.02,
               message: str | Callable[[], str] = "condition not met"):
    """Return the predicate's first truthy value; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s: {text}")
        time.sleep(interval)


def _enqueue_with_key(config: str, key: str, barrier, results) -> None:
    os.environ["HOPPER_CONFIG"] = config
    from hopper.app import queue

    queue.configure()
    barrier.wait()  # all processes enqueue at the same moment
    results.put(queue.enqueue("echo", {"pid": os.getpid()}, unique_key=key))


def enqueue_from_processes(config, key: str, processes: int = 8) -> set[int]:
    """Enqueue one unique_key from several processes at once; the ids they got back."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_enqueue_with_key, args=(str(config), key, barrier, results))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    ids = {results.get(timeout=60) for _ in procs}
    for proc in procs:
        proc.join(10)
    return ids
