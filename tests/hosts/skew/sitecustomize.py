"""Test-only: a wrong wall clock for every Python process started with this folder on
PYTHONPATH. ``LAB_CLOCK_SKEW_S`` seconds are added to ``time.time()`` (and
``time.time_ns()``); the monotonic clock, like a real machine's, is untouched."""
import os
import time

_skew = float(os.environ.get("LAB_CLOCK_SKEW_S", "0") or 0)
if _skew:
    _real_time, _real_time_ns = time.time, time.time_ns
    time.time = lambda: _real_time() + _skew
    time.time_ns = lambda: _real_time_ns() + int(_skew * 1e9)
