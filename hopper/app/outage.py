"""Living through a database that goes away: one warning when it is lost, one
when it is back, reconnects with growing delays, and no traceback per attempt.

Whether an error means "the database cannot be reached" is judged by its type
and fields (:func:`hopper.app.backends.connection_lost`), never its text. Any
other error is a bug or a refused value and is logged with its traceback.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from hopper.app.backends import connection_lost
from hopper.app.defaults import RECONNECT_FIRST_S, RECONNECT_MAX_S

T = TypeVar("T")


class Outage:
    """One component's view of the database: whether it is lost now, and how long
    to wait before the next try. Not thread-safe: each thread keeps its own."""

    def __init__(self, component: str, log: logging.Logger):
        self.component, self.log = component, log
        self.lost_at: float | None = None  # time.monotonic() of the first failure
        self.delay = RECONNECT_FIRST_S

    @property
    def lost(self) -> bool:
        return self.lost_at is not None

    def failed(self, exc: BaseException) -> float:
        """Record a failed call; the delay to wait before the next try
        (0.1 s doubling to 5 s). Errors that are not a lost database re-raise."""
        if not connection_lost(exc):
            raise exc
        if self.lost_at is None:
            self.lost_at = time.monotonic()
            self.delay = RECONNECT_FIRST_S
            self.log.warning("%s: lost the database (%s: %s); reconnecting with growing delays",
                             self.component, type(exc).__name__, " ".join(str(exc).split()),
                             extra={"fields": {"event": "database_lost"}})
        else:
            self.delay = min(RECONNECT_MAX_S, self.delay * 2)
        return self.delay

    def succeeded(self) -> None:
        """Record a call that reached the database."""
        if self.lost_at is not None:
            away = time.monotonic() - self.lost_at
            self.lost_at = None
            self.log.warning("%s: the database is back after %.1fs", self.component, away,
                             extra={"fields": {"event": "database_back",
                                               "away_s": round(away, 3)}})


def best_effort(fn: Callable[[], T], what: str, log: logging.Logger, tries: int = 2) -> T | None:
    """Run ``fn`` during a shutdown or clean-up; if the database is away, say so once
    and go on (what is left is rescued by the other daemons or at the next start).

    A connection that died while it sat idle fails its first call and is replaced
    on the next, so one more try is made before giving up.
    """
    for attempt in range(tries):
        try:
            return fn()
        except Exception as exc:  # judged by connection_lost; anything else re-raises
            if not connection_lost(exc):
                raise
            if attempt == tries - 1:
                log.warning("%s skipped: the database is unavailable (%s)", what,
                            type(exc).__name__)
    return None
