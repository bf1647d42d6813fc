"""Tasks of the workflow tests (``tasks.modules: [sample_tasks, workflow_tasks]``)."""
from __future__ import annotations

import os
import time

from hopper.app.queue import task


def _log(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@task(name="wf_step", max_attempts=1)
def wf_step(log: str, label: str, fail_while: str | None = None, seconds: float = 0.0):
    """One node of a test graph: logs when it started and ended; fails while the
    file ``fail_while`` exists (a test deletes it before retrying)."""
    started = time.time()
    _log(log, f"start {label} {started!r}")
    if seconds:
        time.sleep(seconds)
    if fail_while and os.path.exists(fail_while):
        raise RuntimeError(f"{label} failed as planned")
    finished = time.time()
    _log(log, f"end {label} {finished!r}")
    return {"label": label, "started": started, "finished": finished}


@task(name="wf_slow_step", max_attempts=1)
def wf_slow_step(log: str, label: str, seconds: float):
    """A node that runs for ``seconds``. A name of its own: a worker that has seen
    ``wf_step`` run fast may claim several of those in one batch, and would run any
    released beside this one only after it; an unseen name never joins a batch's
    inline run (the worker gives the rest of the batch back before it)."""
    return wf_step(log, label, seconds=seconds)


def runs(log) -> dict[str, list[tuple[float, float | None]]]:
    """``{label: [(start, end or None), ...]}`` read back from a log file."""
    found: dict[str, list] = {}
    if not os.path.exists(log):
        return found
    for line in open(log).read().splitlines():
        kind, label, when = line.split()
        if kind == "start":
            found.setdefault(label, []).append([float(when), None])
        else:
            found[label][-1][1] = float(when)
    return {label: [tuple(r) for r in rows] for label, rows in found.items()}


@task(name="wf_parent")
def wf_parent(log: str):
    """A fan-out parent whose second child waits for its first (a dependency on a sibling)."""
    from hopper.app.queue import current_task_id, enqueue_many

    me = current_task_id()
    return {"children": enqueue_many([
        {"name": "wf_step", "ref": "one", "parent_id": me,
         "args": {"log": log, "label": "one", "seconds": 0.1}},
        {"name": "wf_step", "depends_on": ["one"], "parent_id": me,
         "args": {"log": log, "label": "two"}}])}


@task(name="wf_waiting_parent")
def wf_waiting_parent(log: str, seconds: float):
    """A parent that stays ``waiting`` while its one slow child runs."""
    from hopper.app.queue import current_task_id, enqueue

    return {"child": enqueue("wf_slow_step",
                             {"log": log, "label": "slow-child", "seconds": seconds},
                             parent_id=current_task_id())}
