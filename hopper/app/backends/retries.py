"""The one retry decision: does a failed attempt run again, and when.

The worker (a task raised), the supervisor (a task ran past its timeout) and the
rescue of a lost worker (it died, or its lease ran out) all ask here; the
backend then records what was decided (``retry_at`` None: failed for good).
"""
from __future__ import annotations

import random
import time

from hopper.app import defaults
from hopper.app.backends.base import ATTEMPT_LOST, ATTEMPT_UNSTORABLE


def backoff_delay(base: float, attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), stretched by up to 25 %.

    The jitter only ever lengthens a gap, so gaps still grow attempt after attempt.
    """
    return min(defaults.MAX_BACKOFF_S, base * 2 ** (attempts - 1) * random.uniform(1.0, 1.25))


def retry_at(attempts: int, max_attempts: int, kind: str, backoff_s: float = 0.0,
             now: float | None = None) -> float | None:
    """When the attempt that just failed may be followed by another, as Unix time;
    None when the task fails for good.

    ``attempts`` counts the failed one. An attempt that raised or timed out waits
    out its backoff (``backoff_s``: the task's first delay); one whose worker was
    lost runs again at once (the task did not fail, its process did); an outcome
    the database refused to store is never retried (it would be refused again).
    """
    if attempts >= max_attempts or kind == ATTEMPT_UNSTORABLE:
        return None
    now = time.time() if now is None else now
    if kind == ATTEMPT_LOST:
        return now
    return now + backoff_delay(backoff_s, attempts)
