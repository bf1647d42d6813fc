"""Rate limits in the claim: keyed tasks under a rate key, claimed group by group.

``rate_limits`` and its log ``rate_claims`` allow at most N claims under a rate
key in any window of one period, for every daemon on the database (a sliding
window: an idle key may start a burst of N, then one more as each claim ages
out); ``next_at`` says when the next claim may come. Such groups see a few claims
a second at most, so each is locked, picked and taken on its own, after the
fast path for keys without a rate (``flow_sql.py``).

On PostgreSQL each group and key row is locked with ``SKIP LOCKED`` before it is
used; a rate row is locked waiting (see ``_claim_rated``).
"""
from __future__ import annotations

import math

from hopper.app import defaults
from hopper.app.backends.base import Claimed, QueueFilter
from hopper.app.backends.flow_sql import TAKE_RETURNING, flow_group
from hopper.app.backends.sql_parts import SqlParts
from hopper.app.backends.states import claimed_from_row

_LOCK_GROUP = "SELECT 1 FROM flow_groups WHERE queue = ? AND ckey = ? AND rkey = ?{lock}"
_LOCK_KEY = ("SELECT 1 FROM flow_keys WHERE key = ?"
             " AND (conc_limit IS NULL OR running < conc_limit){lock}")
_LOCK_RATE = ("SELECT amount, period_s, window_start, used FROM rate_limits"
              " WHERE key = ? AND next_at <= ?{lock}")
_PICK = ("SELECT id FROM tasks{indexed} WHERE status = 'queued' AND concurrency_key IS NOT NULL"
         " AND queue = ? AND concurrency_key = ? AND rate_key = ? AND run_after <= ?"
         " ORDER BY priority DESC, run_after, id LIMIT 1{lock}")
_TAKE = ("UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,"
         " attempts = attempts + 1 WHERE id = ? AND status = 'queued' " + TAKE_RETURNING)
_SPEND = "UPDATE rate_limits SET next_at = ?, window_start = ?, used = ? WHERE key = ?"
_LOG_CLAIM = "INSERT INTO rate_claims (key, claimed_at, task_id) VALUES (?, ?, ?)"
# The claim that must be one period old before the next may come (also read when a
# rate changes, flow_admin.py).
NTH_RECENT_CLAIM = ("SELECT claimed_at FROM rate_claims WHERE key = ?"
                    " ORDER BY claimed_at DESC LIMIT 1 OFFSET ?")
_FORGET_CLAIMS = "DELETE FROM rate_claims WHERE key = ? AND claimed_at < ?"
CLAIM_LOG_PERIODS = 2  # claims are kept this many periods (and RATE_CLAIM_LOG_S), then dropped


class RatedClaims(SqlParts):
    """The claim of keyed tasks under a rate key; mixed into the SQL backend."""

    def _flow_lock(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.row_locks else ""

    def _claim_rated(self, conn, worker_id: str, limit: int, lease_s: float,
                     queues: QueueFilter | None, caps: dict,
                     already: list[Claimed]) -> list[Claimed]:
        """Keyed tasks under a rate key, group by group (a few claims a second at most)."""
        for task in already:
            if task.queue in caps:
                caps[task.queue] -= 1
        now = self.now()  # the database clock, as the ordinary claim
        scan = limit * defaults.FLOW_CANDIDATE_SCAN
        claimed: list[Claimed] = []
        used: tuple[set[str], set[str]] = (set(), set())
        for _ in range(defaults.FLOW_DEFER_PASSES):
            candidates = self._flow_candidates(conn, queues, now, scan, rated_only=True)
            idle = self._claim_groups(conn, candidates, worker_id, limit, lease_s, now, caps,
                                      used, claimed)
            if len(claimed) >= limit or not self._defer_groups(conn, idle, now):
                break
            scan *= 4  # the groups deferred now sit behind the ones not looked at yet
        return claimed

    def _claim_groups(self, conn, candidates: list, worker_id: str, limit: int,
                      lease_s: float, now: float, caps: dict,
                      used: tuple[set[str], set[str]], claimed: list[Claimed]) -> list:
        """Claim one task of each candidate group its key and rate allow, up to
        ``limit`` in ``claimed``; the groups that had no task due."""
        lock = self._flow_lock()
        keys_used, rates_used = used
        idle = []
        for queue, ckey, rkey, has_rate in candidates:
            if len(claimed) >= limit:
                break
            if ckey in keys_used or rkey in rates_used or caps.get(queue, 1) <= 0:
                continue
            if lock and self._run(conn, _LOCK_GROUP.format(lock=lock),
                                  (queue, ckey, rkey)).fetchone() is None:
                continue
            if ckey and self._run(conn, _LOCK_KEY.format(lock=lock), (ckey,)).fetchone() is None:
                continue
            rate = None
            if rkey and has_rate:
                # Waits (no SKIP LOCKED) for a peer claiming under the same rate key:
                # then it reads that claim's next_at and sleeps until then, instead of
                # missing the slot. Every other lock here is skipped, never waited
                # for, so this wait cannot close a cycle.
                rate = self._run(conn, _LOCK_RATE.format(lock=self.row_lock),
                                 (rkey, now)).fetchone()
                if rate is None:
                    continue
            picked = self._run(conn, _PICK.format(indexed=self.flow_index, lock=lock),
                               (queue, ckey, rkey, now)).fetchone()
            if picked is None:
                idle.append((queue, ckey, rkey))
                continue
            row = self._run(conn, _TAKE, (worker_id, now + lease_s, now, picked[0])).fetchone()
            if row is None:
                continue
            self._count_claims(conn, [flow_group(row)], now)
            self._counted().claimed([row], now)  # the dashboard's counters, as any claim
            claimed.append(claimed_from_row(row))
            if ckey:
                keys_used.add(ckey)
            if rkey:
                rates_used.add(rkey)
            if queue in caps:
                caps[queue] -= 1
            if rate is not None:
                self._spend(conn, rkey, rate, now, row[0])
        # Unexamined groups had a free slot too: wake an idle worker to take one.
        if len(claimed) >= limit and len(candidates) > len(claimed):
            self._wake_listeners(conn)
        return idle


    def _spend(self, conn, rkey: str, rate: tuple, now: float, task_id: int) -> None:
        """Log one claim under a rate key; the next may come when the window of one
        period before it holds fewer than ``amount`` claims: once the ``amount``-th
        most recent claim is one period old."""
        amount, period_s, window_start, used = rate
        window = math.floor(now / period_s) * period_s
        used = used + 1 if window_start == window else 1
        self._run(conn, _LOG_CLAIM, (rkey, now, task_id))
        row = self._run(conn, NTH_RECENT_CLAIM, (rkey, amount - 1)).fetchone()
        next_at = row[0] + period_s if row is not None else now
        self._run(conn, _SPEND, (next_at, window, used, rkey))
        if window_start != window:  # once a period: the log keeps CLAIM_LOG_PERIODS of them
            keep = max(CLAIM_LOG_PERIODS * period_s, defaults.RATE_CLAIM_LOG_S)
            self._run(conn, _FORGET_CLAIMS, (rkey, now - keep))
