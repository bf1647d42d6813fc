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
