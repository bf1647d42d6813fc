"""Small test utilities: waiting on a condition with a deadline instead of sleeping."""
from __future__ import annotations

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
