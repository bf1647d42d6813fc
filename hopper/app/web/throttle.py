"""Slowing down token guessing: per client, a growing lock-out after wrong tokens.

A client (by its address) gets ``FREE_FAILURES`` wrong tokens; each further one
locks it out for twice as long as the one before, up to ``MAX_LOCKOUT_S``.
While locked out, the login form and Bearer-token requests answer 429 with
``Retry-After`` at once: no request thread ever sleeps. A right token clears
the client's record; records idle for ``FORGET_AFTER_S`` are dropped.

The state lives in the web server process (one Gunicorn process, many threads),
so a restart of the web server forgets it.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

FREE_FAILURES = 3
FIRST_LOCKOUT_S = 1.0
MAX_LOCKOUT_S = 300.0
FORGET_AFTER_S = 3600.0
MAX_CLIENTS = 10_000


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last_seen: float = 0.0


class LoginThrottle:
    """Wrong-token bookkeeping per client address; thread-safe."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Whole seconds this client must wait before trying a token again (0: go ahead)."""
        with self._lock:
            record = self._records.get(client)
            if record is None:
                return 0
            return max(0, math.ceil(record.locked_until - self._clock()))

    def failed(self, client: str) -> int:
        """Record a wrong token; return the lock-out it earned, in whole seconds."""
        now = self._clock()
        with self._lock:
            if len(self._records) >= MAX_CLIENTS:
                self._forget_idle(now)
            record = self._records.setdefault(client, _Record())
            record.failures += 1
            record.last_seen = now
            over = record.failures - FREE_FAILURES
            if over <= 0:
                return 0
            lockout = min(MAX_LOCKOUT_S, FIRST_LOCKOUT_S * 2 ** (over - 1))
            record.locked_until = now + lockout
            return math.ceil(lockout)

    def succeeded(self, client: str) -> None:
        """A right token: forget this client's failures."""
        with self._lock:
            self._records.pop(client, None)

    def _forget_idle(self, now: float) -> None:
        idle = [c for c, r in self._records.items() if now - r.last_seen > FORGET_AFTER_S]
        for client in idle:
            del self._records[client]
        if len(self._records) >= MAX_CLIENTS:  # a flood of addresses: keep the newest half
            oldest = sorted(self._records, key=lambda c: self._records[c].last_seen)
            for client in oldest[: len(oldest) // 2]:
                del self._records[client]
