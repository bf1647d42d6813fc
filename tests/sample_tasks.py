"""Tasks used by the test suite (loaded through ``tasks.modules: [sample_tasks]``)."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from hopper.app.queue import current_task_id, enqueue_many, task


def _log(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@task(name="record")
def record(log: str, label: str):
    """Append ``label pid time`` to a log file: the observed start order."""
    _log(log, f"{label} {os.getpid()} {time.time()}")
    return {"label": label}


@task(name="flaky", max_attempts=5, backoff=0.2)
def flaky(log: str, failures: int):
    """Fail the first ``failures`` attempts, then succeed; logs each attempt's time."""
    _log(log, str(time.time()))
    attempts = len(Path(log).read_text().splitlines())
    if attempts <= failures:
        raise RuntimeError(f"planned failure {attempts}")
    return {"attempts": attempts}


@task(name="always_fails", max_attempts=2, backoff=0.05)
def always_fails():
    raise ValueError("this task always fails")


@task(name="async_add")
async def async_add(a: int, b: int):
    await asyncio.sleep(0.01)
    return {"sum": a + b}


@task(name="fan_out", continuation="fan_in")
def fan_out(children: int, log: str):
    """A parent: enqueue ``children`` children and return."""
    parent = current_task_id()
    enqueue_many([{"name": "child", "args": {"i": i, "log": log}, "parent_id": parent}
                  for i in range(children)])
    return {"spawned": children}


@task(name="child")
def child(i: int, log: str):
    _log(log, f"child {i}")
    return {"i": i}


@task(name="fan_in")
def fan_in(parent_id: int, parent_status: str, log: str | None = None):
    """The continuation: runs once after every child finished."""
    from hopper.app.queue import get_task

    parent = get_task(parent_id)
    marker = parent["args"]["log"] + ".continuation"
    _log(marker, f"continuation {parent_id} {parent_status}")
    return {"parent": parent_id}


@task(name="fail_with_name", max_attempts=1)
def fail_with_name(name_bytes: str):
    """Fail with a file name that is not valid UTF-8 (as os.listdir returns it)."""
    name = os.fsdecode(bytes.fromhex(name_bytes))
    raise FileNotFoundError(f"cannot read {name}")


@task(name="fan_out_fragile", continuation="fan_in")
def fan_out_fragile(children: int, log: str, broken: str):
    """A parent whose children fail while the file ``broken`` exists."""
    parent = current_task_id()
    enqueue_many([{"name": "fragile_child", "args": {"i": i, "log": log, "broken": broken},
                   "parent_id": parent} for i in range(children)])
    return {"spawned": children}


@task(name="fragile_child", max_attempts=1)
def fragile_child(i: int, log: str, broken: str):
    """Fails (child 0 only) while the file ``broken`` exists: a cause one can fix."""
    _log(log, f"child {i}")
    if i == 0 and Path(broken).exists():
        raise RuntimeError(f"child {i}: {broken} is in the way")
    return {"i": i}


@task(name="fails_with_nul", max_attempts=2, backoff=0.05)
def fails_with_nul():
    raise ValueError("a\x00b")


@task(name="big_result")
def big_result(size: int):
    return {"data": "x" * size}


@task(name="tree_root", continuation="tree_done")
def tree_root(mids: int, leaves: int):
    """Three levels: this root, ``mids`` children, ``leaves`` grandchildren each."""
    enqueue_many([{"name": "tree_mid", "args": {"leaves": leaves}, "parent_id": current_task_id()}
                  for _ in range(mids)])
    return {"mids": mids}


@task(name="tree_mid")
def tree_mid(leaves: int):
    enqueue_many([{"name": "echo", "args": {"leaf": i}, "parent_id": current_task_id()}
                  for i in range(leaves)])
    return {"leaves": leaves}


@task(name="tree_done")
def tree_done(parent_id: int, parent_status: str):
    return {"root": parent_id, "status": parent_status}


@task(name="timed")
def timed(seconds: float):
    """Sleep ``seconds``; return when it observably started and ended, and where."""
    start = time.time()
    time.sleep(seconds)
    return {"start": start, "end": time.time(), "pid": os.getpid()}


@task(name="report_meta")
def report_meta(release: str):
    """Report a stage with set_meta, wait for the test to create ``release``, report again."""
    from hopper.app.queue import set_meta

    set_meta({"stage": "started", "pid": os.getpid()})
    deadline = time.monotonic() + 60
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return set_meta({"stage": "finished"})


@task(name="modules_loaded")
def modules_loaded(names: list[str]):
    """Which of these modules the worker process has imported."""
    import sys

    return {name: name in sys.modules for name in names}
