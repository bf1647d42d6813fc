"""Per-entry counts of the last hour (files seen, started, ignored), by minute."""
from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_S = 3600
KINDS = ("seen", "started", "ignored")


class EntryStats:
    """Counters in one-minute buckets; ``last_hour()`` sums the window."""

    def __init__(self):
        self._buckets: deque[tuple[int, dict[str, int]]] = deque()
        self._lock = threading.Lock()

    def add(self, kind: str, n: int = 1) -> None:
        """Count ``n`` events of ``kind`` now."""
        minute = int(time.time() // 60)
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != minute:
                self._buckets.append((minute, dict.fromkeys(KINDS, 0)))
            self._buckets[-1][1][kind] += n
            while self._buckets and self._buckets[0][0] <= minute - WINDOW_S // 60:
                self._buckets.popleft()

    def last_hour(self) -> dict[str, int]:
        """``{seen, started, ignored}`` over the last hour."""
        oldest = int(time.time() // 60) - WINDOW_S // 60
        out = dict.fromkeys(KINDS, 0)
        with self._lock:
            for minute, counts in self._buckets:
                if minute > oldest:
                    for kind in KINDS:
                        out[kind] += counts[kind]
        return out
