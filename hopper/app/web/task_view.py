"""What the task page shows beyond the row: its attempts and its timeline."""
from __future__ import annotations


def attempts(task: dict) -> list[dict]:
    """Every attempt with its own error, oldest first: the task's ``history``,
    plus the latest attempt when it ended in an error the history does not hold."""
    history = [dict(a) for a in task.get("history") or []]
    seen = {a.get("attempt") for a in history}
    if task.get("error") and task.get("attempts") not in seen:
        history.append({"attempt": task.get("attempts"), "worker": task.get("worker"),
                        "started_at": task.get("started_at"),
                        "finished_at": task.get("finished_at"), "error": task["error"]})
    return history


def timeline(task: dict, tried: list[dict]) -> list[tuple[float, str]]:
    """``(time, what happened)`` in order: created, each attempt's start and end, the end."""
    events = [(task["created_at"], "created")]
    starts = set()
    for a in tried:
        where = f" on {a['worker']}" if a.get("worker") else ""
        if a.get("started_at") is not None:
            events.append((a["started_at"], f"attempt {a['attempt']} started{where}"))
            starts.add(a["started_at"])
        if a.get("finished_at") is not None:
            outcome = "failed" if a.get("error") else "ended"
            events.append((a["finished_at"], f"attempt {a['attempt']} {outcome}"))
    if task.get("started_at") is not None and task["started_at"] not in starts:
        events.append((task["started_at"], f"attempt {task['attempts']} started"
                       + (f" on {task['worker']}" if task.get("worker") else "")))
    if task.get("finished_at") is not None:
        events.append((task["finished_at"], f"finished: {task['status']}"))
    return sorted(events, key=lambda e: e[0])
