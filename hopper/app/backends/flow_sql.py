"""Flow control in the claim: per-key concurrency and shared rate limits.

Keyed tasks (``concurrency_key`` or ``rate_key``) live outside the ordinary
claim's index (``tasks_queue_ready`` excludes them), so an ordinary claim reads
nothing more than before and a backlog under one key is never in its path. They
are claimed here, in the same write transaction as the ordinary claim:

* ``flow_groups`` lists, per queue, each (concurrency key, rate key) pair with
  queued tasks; groups are served least recently claimed first (round robin: the
  claim's trigger stamps ``last_claim``), the first task of each group first.
* ``flow_keys`` is each concurrency key's semaphore (running, queued), kept by
  row triggers on ``tasks`` in the transaction that changes the task: a claim, a
  finish, a rescue, a cancel all move the count with the task, so a dead
  worker's slot is free again as soon as its task is rescued.
* ``rate_limits`` and its log ``rate_claims``: at most N claims under a rate key
  in any window of one period, for every daemon on the database (a sliding
  window: an idle key may start a burst of N, then one more as each claim ages
  out); ``next_at`` says when the next claim may come.

On PostgreSQL each group and key row is locked with ``SKIP LOCKED`` before it is
used: a second claimer skips it rather than waiting, and never exceeds a limit,
since the count it checks is read under the lock. A rate row is locked waiting
(see ``_claim_keyed``).
"""
from __future__ import annotations

import math
import time

from hopper.app import defaults
from hopper.app.backends.base import Claimed, QueueFilter

# Groups whose key has a free slot and whose rate allows a claim now, in turn order.
_ANY_KEYED = ("SELECT EXISTS (SELECT 1 FROM flow_groups WHERE queued > 0 AND rkey = ''),"
              " EXISTS (SELECT 1 FROM flow_groups WHERE queued > 0 AND rkey <> '')")
_CANDIDATES = """
SELECT g.queue, g.ckey, g.rkey, (SELECT 1 FROM rate_limits r WHERE r.key = g.rkey)
  FROM flow_groups g
 WHERE g.queued > 0 {only} {rated}
   AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = g.queue)
   AND (g.ckey = '' OR EXISTS (SELECT 1 FROM flow_keys k WHERE k.key = g.ckey
                                 AND (k.conc_limit IS NULL OR k.running < k.conc_limit)))
   AND (g.rkey = '' OR NOT EXISTS (SELECT 1 FROM rate_limits r WHERE r.key = g.rkey
                                     AND r.next_at > ?))
 ORDER BY g.last_claim LIMIT ?
"""
# The fast path, for groups without a rate key: one statement picks, for each of
# the least recently served groups whose key has a free slot, up to that many of
# its best ready tasks (at most FLOW_GROUP_TAKE), first task of every group first.
# SQLite picks one per group here (its LIMIT cannot depend on the row; a window
# over the group would read all of a deep group's tasks on every claim), then more
# of the groups with more free slots in one read each (_more_per_group).
_FAST_SQLITE = """
WITH cand AS (
  SELECT g.queue, g.ckey, g.last_claim, k.conc_limit - k.running AS free
    FROM flow_groups g JOIN flow_keys k ON k.key = g.ckey
   WHERE g.queued > 0 AND g.rkey = '' {only} AND k.running < k.conc_limit
     AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = g.queue)
   ORDER BY g.last_claim LIMIT ?
)
SELECT c.queue, c.ckey, c.free,
       (SELECT t.id FROM tasks t INDEXED BY tasks_flow_ready
         WHERE t.status = 'queued' AND t.concurrency_key IS NOT NULL AND t.queue = c.queue
           AND t.concurrency_key = c.ckey AND t.rate_key = '' AND t.run_after <= ?
         ORDER BY t.priority DESC, t.run_after, t.id LIMIT 1) AS id
  FROM cand c ORDER BY c.last_claim
"""
_FAST_POSTGRES = """
WITH cand AS (
  SELECT g.queue, g.ckey, g.last_claim, k.conc_limit - k.running AS free
    FROM flow_groups g JOIN flow_keys k ON k.key = g.ckey
   WHERE g.queued > 0 AND g.rkey = '' {only} AND k.running < k.conc_limit
     AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = g.queue)
   ORDER BY g.last_claim LIMIT ?
   FOR UPDATE OF k SKIP LOCKED
)
SELECT c.queue, c.ckey, c.free, t.id
  FROM cand c CROSS JOIN LATERAL (
       SELECT x.id, row_number() OVER () AS pos FROM (
         SELECT id FROM tasks
          WHERE status = 'queued' AND concurrency_key IS NOT NULL AND queue = c.queue
            AND concurrency_key = c.ckey AND rate_key = '' AND run_after <= ?
          ORDER BY priority DESC, run_after, id LIMIT LEAST(c.free, ?)
          FOR UPDATE SKIP LOCKED) AS x) AS t
 ORDER BY t.pos, c.last_claim
"""
_PICK_SOME = ("SELECT id FROM tasks INDEXED BY tasks_flow_ready WHERE status = 'queued'"
              " AND concurrency_key IS NOT NULL AND queue = ? AND concurrency_key = ?"
              " AND rate_key = '' AND run_after <= ?"
              " ORDER BY priority DESC, run_after, id LIMIT ?")
_TAKE_MANY = ("UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,"
              " attempts = attempts + 1 WHERE id IN ({ids}) AND status = 'queued'"
              " RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, queue,"
              " concurrency_key, rate_key")
# PostgreSQL: the claim and its counts in one statement, one text whatever the
# number of tasks (the server keeps it prepared).
_TAKE_COUNTED = """
WITH taken AS (
  UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,
         attempts = attempts + 1
   WHERE id = ANY(CAST(? AS BIGINT[])) AND status = 'queued'
  RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, queue,
            concurrency_key, rate_key
), keys AS (
  UPDATE flow_keys AS k SET running = k.running + v.n, queued = k.queued - v.n
    FROM (SELECT concurrency_key AS key, count(*) AS n FROM taken
           WHERE concurrency_key <> '' GROUP BY 1) AS v
   WHERE k.key = v.key
), turns AS (
  UPDATE flow_groups AS g SET queued = g.queued - v.n,
         last_claim = GREATEST(g.last_claim, CAST(? AS DOUBLE PRECISION))
    FROM (SELECT queue, concurrency_key, rate_key, count(*) AS n FROM taken
           GROUP BY 1, 2, 3) AS v
   WHERE g.queue = v.queue AND g.ckey = v.concurrency_key AND g.rkey = v.rate_key
)
SELECT * FROM taken
"""
# A claim's counts, moved by the claim itself (the row triggers count every other
# move): per key one more running and one less queued; per group one less queued
# and its turn taken. One statement each whatever the number of keys.
_CLAIMED_KEYS = {
    False: ("UPDATE flow_keys SET running = running + v.column2, queued = queued - v.column2"
            " FROM (VALUES {values}) AS v WHERE flow_keys.key = v.column1"),
    True: ("UPDATE flow_keys AS k SET running = k.running + v.n, queued = k.queued - v.n"
           " FROM unnest(CAST(? AS TEXT[]), CAST(? AS INT[])) AS v(key, n) WHERE k.key = v.key"),
}
_CLAIMED_GROUPS = {
    False: ("UPDATE flow_groups SET queued = queued - v.column4, last_claim = max(last_claim, ?)"
            " FROM (VALUES {values}) AS v WHERE flow_groups.queue = v.column1"
            " AND flow_groups.ckey = v.column2 AND flow_groups.rkey = v.column3"),
    True: ("UPDATE flow_groups AS g SET queued = g.queued - v.n,"
           " last_claim = GREATEST(g.last_claim, CAST(? AS DOUBLE PRECISION))"
           " FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]),"
           " CAST(? AS INT[])) AS v(queue, ckey, rkey, n)"
           " WHERE g.queue = v.queue AND g.ckey = v.ckey AND g.rkey = v.rkey"),
}
_LOCK_GROUP = "SELECT 1 FROM flow_groups WHERE queue = ? AND ckey = ? AND rkey = ?{lock}"
_LOCK_KEY = ("SELECT 1 FROM flow_keys WHERE key = ?"
             " AND (conc_limit IS NULL OR running < conc_limit){lock}")
_LOCK_RATE = ("SELECT amount, period_s, window_start, used FROM rate_limits"
              " WHERE key = ? AND next_at <= ?{lock}")
_PICK = ("SELECT id FROM tasks{indexed} WHERE status = 'queued' AND concurrency_key IS NOT NULL"
         " AND queue = ? AND concurrency_key = ? AND rate_key = ? AND run_after <= ?"
         " ORDER BY priority DESC, run_after, id LIMIT 1{lock}")
_TAKE = ("UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,"
         " attempts = attempts + 1 WHERE id = ? AND status = 'queued'"
         " RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, queue,"
         " concurrency_key, rate_key")
_SPEND = "UPDATE rate_limits SET next_at = ?, window_start = ?, used = ? WHERE key = ?"
_LOG_CLAIM = "INSERT INTO rate_claims (key, claimed_at, task_id) VALUES (?, ?, ?)"
NTH_RECENT_CLAIM = ("SELECT claimed_at FROM rate_claims WHERE key = ?"
               " ORDER BY claimed_at DESC LIMIT 1 OFFSET ?")
_FORGET_CLAIMS = "DELETE FROM rate_claims WHERE key = ? AND claimed_at < ?"
CLAIM_LOG_PERIODS = 2  # claims are kept this many periods (and RATE_CLAIM_LOG_S), then dropped
# Rate keys with queued tasks that wait for their next slot: when an idle worker wakes.


class FlowControl:
    """The keyed part of a claim, and the reads and writes of the Limits page;
    mixed into the SQL backend (uses its ``_run``, ``_read``, ``_write``)."""

    row_locks = False
    flow_index = ""  # SQLite names the index its planner must use
    flow_left = False  # the last claim left keyed tasks that an idle worker could take

    def _flow_lock(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.row_locks else ""

    def _claim_all(self, conn, worker_id: str, limit: int, lease_s: float,
                   queues: QueueFilter | None) -> list[Claimed]:
        """Keyed tasks whose key and rate allow it, then ordinary tasks for the rest
        of ``limit``, in one transaction."""
        keyed = self._claim_keyed(conn, worker_id, limit, lease_s, queues) if limit > 0 else []
        rest = limit - len(keyed)
        if rest <= 0:
            return keyed
        if keyed and queues is not None and queues.caps:
            taken: dict[str, int] = {}
            for task in keyed:
                taken[task.queue] = taken.get(task.queue, 0) + 1
            queues = QueueFilter(queues.only, {q: max(0, n - taken.get(q, 0))
                                               for q, n in queues.caps.items()})
        targets = self._claim_targets(conn, rest, queues)
        return keyed + (self._claim(conn, worker_id, rest, lease_s, targets) if targets else [])

    @staticmethod
    def _only(queues: QueueFilter | None) -> tuple[str, list] | None:
        """The SQL that keeps a claim to the queues it may read (None: to none)."""
        if queues is None or queues.only is None:
            return "", []
        allowed = sorted(q for q in queues.only if queues.caps.get(q, 1) > 0)
        if not allowed:
            return None
        return f"AND g.queue IN ({','.join('?' * len(allowed))})", allowed

    def _flow_candidates(self, conn, queues: QueueFilter | None, now: float, n: int,
                         rated_only: bool = False) -> list:
        only = self._only(queues)
        if only is None:
            return []
        rated = "AND g.rkey <> ''" if rated_only else ""
        return self._run(conn, _CANDIDATES.format(only=only[0], rated=rated),
                         [*only[1], now, n]).fetchall()

    def _claim_keyed(self, conn, worker_id: str, limit: int, lease_s: float,
                     queues: QueueFilter | None) -> list[Claimed]:
        self.flow_left = False
        # One look at the small flow_groups table (partial index of groups with
        # queued tasks): without keyed tasks, all the ordinary claim pays for them.
        unrated, rated = self._run(conn, _ANY_KEYED).fetchone()
        if not unrated and not rated:
            return []
        claimed = self._claim_unrated(conn, worker_id, limit, lease_s, queues) if unrated else []
        if rated and len(claimed) < limit:
            claimed += self._claim_rated(conn, worker_id, limit - len(claimed), lease_s,
                                         queues, dict(queues.caps) if queues else {}, claimed)
        return claimed

    def _claim_unrated(self, conn, worker_id: str, limit: int, lease_s: float,
                       queues: QueueFilter | None) -> list[Claimed]:
        """Keyed tasks without a rate key, in one pick and one update."""
        only = self._only(queues)
        if only is None:
            return []
        now = time.time()
        statement = (_FAST_POSTGRES if self.row_locks else _FAST_SQLITE).format(only=only[0])
        scan, take = limit + defaults.FLOW_CANDIDATE_EXTRA, defaults.FLOW_GROUP_TAKE
        params = [*only[1], scan, now, take] if self.row_locks else [*only[1], scan, now]
        rows = self._run(conn, statement, params).fetchall()
        if not self.row_locks and limit > 1:
            rows = self._more_per_group(conn, rows, now, min(limit, take))
        caps = dict(queues.caps) if queues is not None else {}
        free: dict[str, int] = {}
        ids = []
        for queue, ckey, slots, task_id in rows:
            if task_id is None:
                continue
            free.setdefault(ckey, slots)  # one key's slots, whichever queue its tasks are in
            if len(ids) >= limit:
                self.flow_left = True  # more could run now: another worker may take them
                break
            if free[ckey] <= 0 or caps.get(queue, 1) <= 0:
                continue
            free[ckey] -= 1
            if queue in caps:
                caps[queue] -= 1
            ids.append(task_id)
        if not ids:
            return []
        if self.row_locks:
            taken = self._run(conn, _TAKE_COUNTED,
                              (worker_id, now + lease_s, now, ids, now)).fetchall()
        else:
            taken = self._run(conn, _TAKE_MANY.format(ids=",".join("?" * len(ids))),
                              [worker_id, now + lease_s, now, *ids]).fetchall()
            self._count_claims(conn, taken, now)
        if self.flow_left and self.row_locks:
            self._wake_listeners(conn)
        order = {task_id: i for i, task_id in enumerate(ids)}
        return [Claimed(*row[:7], queue=row[7]) for row in sorted(taken, key=lambda r: order[r[0]])]

    def _more_per_group(self, conn, rows: list, now: float, take: int) -> list:
        """SQLite: up to ``take`` tasks of each group whose key has more than one free
        slot (one more indexed read per such group), first task of every group first."""
        per_group = []
        for queue, ckey, slots, task_id in rows:
            ids = [task_id]
            if task_id is not None and slots > 1:
                ids = [r[0] for r in self._run(conn, _PICK_SOME, (
                    queue, ckey, now, min(slots, take))).fetchall()]
            per_group.append([(queue, ckey, slots, i) for i in ids])
        depth = max((len(g) for g in per_group), default=0)
        return [g[n] for n in range(depth) for g in per_group if n < len(g)]

    def _claim_rated(self, conn, worker_id: str, limit: int, lease_s: float,
                     queues: QueueFilter | None, caps: dict,
                     already: list[Claimed]) -> list[Claimed]:
        """Keyed tasks under a rate key, group by group (a few claims a second at most)."""
        for task in already:
            if task.queue in caps:
                caps[task.queue] -= 1
        now = time.time()
        candidates = self._flow_candidates(conn, queues, now, limit * defaults.FLOW_CANDIDATE_SCAN,
                                           rated_only=True)
        if not candidates:
            return []
        lock = self._flow_lock()
        keys_used: set[str] = set()
        rates_used: set[str] = set()
        claimed: list[Claimed] = []
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
                continue
            row = self._run(conn, _TAKE, (worker_id, now + lease_s, now, picked[0])).fetchone()
            if row is None:
                continue
            self._count_claims(conn, [row], now)
            claimed.append(Claimed(*row[:7], queue=row[7]))
            if ckey:
                keys_used.add(ckey)
            if rkey:
                rates_used.add(rkey)
            if queue in caps:
                caps[queue] -= 1
            if rate is not None:
                self._spend(conn, rkey, rate, now, row[0])
        # Unexamined groups had a free slot too: wake an idle worker to take one
        # (PostgreSQL here; on SQLite the worker rings the doorbell on flow_left).
        left = len(claimed) >= limit and len(candidates) > len(claimed)
        self.flow_left = self.flow_left or left
        if left and self.row_locks:
            self._wake_listeners(conn)
        return claimed

    def _count_claims(self, conn, rows: list, now: float) -> None:
        """Move the counts of keyed tasks just claimed (``rows`` end with queue,
        concurrency_key, rate_key); the claim takes each group's turn."""
        keys: dict[str, int] = {}
        groups: dict[tuple, int] = {}
        for row in rows:
            queue, ckey, rkey = row[-3], row[-2], row[-1]
            if ckey is None:
                continue
            if ckey:
                keys[ckey] = keys.get(ckey, 0) + 1
            groups[(queue, ckey, rkey)] = groups.get((queue, ckey, rkey), 0) + 1
        if self.row_locks:
            if keys:
                self._run(conn, _CLAIMED_KEYS[True], (list(keys), list(keys.values())))
            if groups:
                queues, ckeys, rkeys = (list(c) for c in zip(*groups, strict=True))
                self._run(conn, _CLAIMED_GROUPS[True],
                          (now, queues, ckeys, rkeys, list(groups.values())))
            return
        # SQLite: one UPDATE ... FROM (VALUES ...) per table (3.33+), not one per key.
        if keys:
            values = ",".join(["(?, ?)"] * len(keys))
            self._run(conn, _CLAIMED_KEYS[False].format(values=values),
                      [v for k, n in keys.items() for v in (k, n)])
        if groups:
            values = ",".join(["(?, ?, ?, ?)"] * len(groups))
            self._run(conn, _CLAIMED_GROUPS[False].format(values=values),
                      [now, *(v for (q, c, r), n in groups.items() for v in (q, c, r, n))])

    def count_claimed_ids(self, conn, task_ids: list[int]) -> None:
        """Count keyed tasks claimed by id outside this module (eager mode)."""
        if task_ids:
            marks = ",".join("?" * len(task_ids))
            self._count_claims(conn, self._run(
                conn, f"SELECT queue, concurrency_key, rate_key FROM tasks WHERE id IN ({marks})"
                " AND concurrency_key IS NOT NULL", task_ids).fetchall(), time.time())

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
    def _flow_ready(self, conn, queues: QueueFilter | None) -> bool:
        """Whether a keyed task may be claimable now (a cheap look before a write)."""
        return bool(self._flow_candidates(conn, queues, time.time(), 1))
