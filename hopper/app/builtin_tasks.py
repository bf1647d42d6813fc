"""Tasks that ship with Hopper, used by tests, benchmarks and health checks."""
from __future__ import annotations

import time

from hopper.app.registry import task


@task(name="echo")
def echo(**args):
    """Return the arguments unchanged."""
    return args


@task(name="sleep")
def sleep(seconds: float = 1.0):
    """Sleep for ``seconds``, then return how long it slept."""
    time.sleep(float(seconds))
    return {"slept": float(seconds)}
