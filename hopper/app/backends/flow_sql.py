"""Flow control in the claim: which keyed tasks a claim may take, and their counts.

Keyed tasks (``concurrency_key`` or ``rate_key``) live outside the ordinary
claim's index (``tasks_queue_ready`` excludes them), so an ordinary claim reads
nothing more than before and a backlog under one key is never in its path. They
are claimed here, in the same write transaction as the ordinary claim:

* ``flow_groups`` lists, per queue, each (concurrency key, rate key) pair with
  queued tasks; groups are served least recently claimed first (round robin: the
  claim takes the group's turn), the first task of each group first.
* ``flow_keys`` is each concurrency key's semaphore (running, queued): the claim
  moves its own counts (``_count_picked``, ``_count_claims``), row triggers on
  ``tasks`` move them in the transaction of every other change (a finish, a
  rescue, a cancel; on PostgreSQL a batch of successes frees its slots in its own
  statement), so a dead worker's slot is free again as soon as its task is
  rescued. ``prune_flow`` recounts them once a minute (``recount_running``).
* A group's turn is when it was last served, or when a task entering it is due if
  that is sooner (the row triggers). A group whose queued tasks are all delayed
  takes its turn when the first of them is due: the claim that meets it moves its
  ``last_claim`` to that time (``_defer_groups``) and looks further, so delayed
  tasks never hold back groups with ready ones.
* Groups under a rate key are claimed one by one in ``flow_rates.py``.

On PostgreSQL each key row is locked with ``SKIP LOCKED`` before it is used: a
second claimer skips it rather than waiting, and never exceeds a limit, since
the count it checks is read under the lock.

A claim that leaves keyed tasks another worker could take now rings the notifier
(after its commit): the ordinary claim's "batch was full" signal does not see them.
"""
from __future__ import annotations

from collections import Counter
from operator import itemgetter

from hopper.app import defaults
from hopper.app.backends.base import Claimed, QueueFilter
from hopper.app.backends.sql_parts import SqlParts, marks
from hopper.app.backends.states import claimed_from_row

# Groups whose key has a free slot and whose rate allows a claim now, in turn order.
_CANDIDATES = """
SELECT g.queue, g.ckey, g.rkey, (SELECT 1 FROM rate_limits r WHERE r.key = g.rkey)
  FROM flow_groups g
 WHERE g.{ready} {only} {rated}
   AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = g.queue)
   AND (g.ckey = '' OR EXISTS (SELECT 1 FROM flow_keys k WHERE k.key = g.ckey
                                 AND (k.conc_limit IS NULL OR k.running < k.conc_limit)))
   AND (g.rkey = '' OR NOT EXISTS (SELECT 1 FROM rate_limits r WHERE r.key = g.rkey
                                     AND r.next_at > ?))
 ORDER BY g.last_claim LIMIT ?
"""
# The fast path, for groups without a rate key: one statement picks, for each of
# the least recently served groups whose key has a free slot, up to that many of
# its best ready tasks (at most FLOW_GROUP_TAKE, or a FLOW_GROUP_SHARE of the key's
# free slots if that is more: ``_group_take``), first task of every group first.
# SQLite picks one per group here (its LIMIT cannot depend on the row; a window
# over the group would read all of a deep group's tasks on every claim), then more
# of the groups with more free slots in one read each (_more_per_group). It also
# returns the rowids of the group's and the key's rows, which the claim's counts
# update by rowid (_count_picked).
_FAST_SQLITE = """
WITH cand AS (
  SELECT g.queue, g.ckey, g.last_claim, k.conc_limit - k.running AS free,
         g.rowid AS group_row, k.rowid AS key_row
    FROM flow_groups g JOIN flow_keys k ON k.key = g.ckey
   WHERE g.queued > 0 AND g.rkey = '' {only} AND k.running < k.conc_limit
     AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = g.queue)
   ORDER BY g.last_claim LIMIT ?
)
SELECT c.queue, c.ckey, c.free,
       (SELECT t.id FROM tasks t INDEXED BY tasks_flow_ready
         WHERE t.status = 'queued' AND t.concurrency_key IS NOT NULL AND t.queue = c.queue
           AND t.concurrency_key = c.ckey AND t.rate_key = '' AND t.run_after <= ?
         ORDER BY t.priority DESC, t.run_after, t.id LIMIT 1) AS id,
       c.group_row, c.key_row
  FROM cand c ORDER BY c.last_claim
"""
# PostgreSQL walks the groups in turn order and stops at the limit: the groups come
# from their own subquery (OFFSET 0 keeps it apart, so its order is the outer one's;
# the planner sorts the queued groups, 0.2 ms at 1,000) and each key is looked at, and
# locked, in a LATERAL, only until the limit. As one join, the planner joined every
# queued group to its key before sorting (2.3 ms a claim at 1,000 keys). The paused
# queues are read once (a hashed NOT IN; NOT EXISTS probed their index per group).
# The tasks are not locked: only a claimer holding their key's row lock picks them,
# and the take re-checks ``status = 'queued'`` under the row's lock, so a task that
# another path (a cancel, an inline claim) changed meanwhile drops out.
_FAST_POSTGRES = """
WITH cand AS (
  SELECT g.queue, g.ckey, g.last_claim, k.free
    FROM (SELECT g.queue, g.ckey, g.last_claim FROM flow_groups g
           WHERE g.ready AND g.rkey = '' {only}
             AND g.queue NOT IN (SELECT queue FROM paused_queues)
           ORDER BY g.last_claim OFFSET 0) AS g
   CROSS JOIN LATERAL (SELECT conc_limit - running AS free FROM flow_keys
                        WHERE key = g.ckey AND running < conc_limit
                        FOR UPDATE SKIP LOCKED) AS k
   ORDER BY g.last_claim LIMIT ?
)
SELECT c.queue, c.ckey, c.free, t.id
  FROM cand c LEFT JOIN LATERAL (
       SELECT x.id, row_number() OVER () AS pos FROM (
         SELECT id FROM tasks
          WHERE status = 'queued' AND concurrency_key IS NOT NULL AND queue = c.queue
            AND concurrency_key = c.ckey AND rate_key = '' AND run_after <= ?
          ORDER BY priority DESC, run_after, id
          LIMIT LEAST(c.free, GREATEST(?, c.free / ?), ?)) AS x) AS t ON TRUE
 ORDER BY t.pos, c.last_claim
"""
_PICK_SOME = ("SELECT id FROM tasks INDEXED BY tasks_flow_ready WHERE status = 'queued'"
              " AND concurrency_key IS NOT NULL AND queue = ? AND concurrency_key = ?"
              " AND rate_key = '' AND run_after <= ?"
              " ORDER BY priority DESC, run_after, id LIMIT ?")
# A group met with no task due: its queued count and when its first queued task is
# due, then its turn moved to that time unless a task entered it meanwhile (on
# PostgreSQL an enqueue may commit in between; the row's count then differs).
_FIRST_DUE = ("SELECT g.queued, (SELECT min(t.run_after) FROM tasks t{indexed}"
              " WHERE t.status = 'queued' AND t.concurrency_key IS NOT NULL"
              " AND t.queue = g.queue AND t.concurrency_key = g.ckey AND t.rate_key = g.rkey)"
              " FROM flow_groups g WHERE g.queue = ? AND g.ckey = ? AND g.rkey = ?")
_DEFER = ("UPDATE flow_groups SET last_claim = ? WHERE queue = ? AND ckey = ? AND rkey = ?"
          " AND queued = ? AND last_claim < ?")
# What a keyed claim returns: the ordinary claim's columns (``CLAIM_RETURNING`` in
# sql.py: the Claimed fields, the claim order's keys, what the counters read, the
# trace context), then the task's keys; ``flow_group`` reads a row's (queue,
# concurrency key, rate key). ``claimed_from_row`` reads the first twelve alike.
TAKE_RETURNING = ("RETURNING id, name, args, attempts, max_attempts, timeout, parent_id, queue,"
                  " priority, run_after, created_at, traceparent, concurrency_key, rate_key")
flow_group = itemgetter(7, 12, 13)
_TAKE_MANY = ("UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,"
              " attempts = attempts + 1 WHERE id IN ({ids}) AND status = 'queued' "
              + TAKE_RETURNING)
# PostgreSQL: the claim and its counts in one statement, one text whatever the
# number of tasks (the server keeps it prepared).
_TAKE_COUNTED = """
WITH taken AS (
  UPDATE tasks SET status = 'running', worker = ?, lease_until = ?, started_at = ?,
         attempts = attempts + 1
   WHERE id = ANY(CAST(? AS BIGINT[])) AND status = 'queued'
  {returning}
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
""".format(returning=TAKE_RETURNING)
# SQLite's counts of a pick: ``n`` more running (one less queued) per key, the
# group's turn taken, by the rows' rowids.
_PICKED_GROUPS = ("UPDATE flow_groups SET queued = queued - ?, last_claim = max(last_claim, ?)"
                  " WHERE rowid IN ({ids})")
_PICKED_KEYS = ("UPDATE flow_keys SET running = running + ?, queued = queued - ?"
                " WHERE rowid IN ({ids})")
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


def _group_take(free: int) -> int:
    """How many tasks of one key a claim may take when the key has ``free`` slots:
    a worker's batch holds them while it runs them one by one, so a few, or a share
    of the free slots when there are many (``_FAST_POSTGRES`` says the same in SQL)."""
    return min(free, max(defaults.FLOW_GROUP_TAKE, free // defaults.FLOW_GROUP_SHARE))


class FlowClaims(SqlParts):
    """The keyed part of a claim and the counts it moves; mixed into the SQL
    backend (the rate-limited groups are ``flow_rates.RatedClaims``)."""

    flow_index = ""  # SQLite names the index its planner must use
    # Which groups have queued tasks; on PostgreSQL a column computed from the count,
    # which flow_groups_ready's predicate reads (migration 0019).
    group_ready = "queued > 0"

    def _claim_all(self, conn, worker_id: str, limit: int, lease_s: float,
                   queues: QueueFilter | None) -> list[Claimed]:
        """Keyed tasks whose key and rate allow it, then ordinary tasks for the rest
        of ``limit``, in one transaction (``limit`` > 0)."""
        unrated, rated, names = self._claim_scope(conn, queues)
        claimed = []
        if unrated:
            claimed = self._claim_unrated(conn, worker_id, limit, lease_s, queues)
        if rated and len(claimed) < limit:
            claimed += self._claim_rated(conn, worker_id, limit - len(claimed), lease_s,
                                         queues, dict(queues.caps) if queues else {}, claimed)
        rest = limit - len(claimed)
        if rest > 0:
            if claimed and queues is not None and queues.caps:
                taken: dict[str, int] = {}
                for task in claimed:
                    taken[task.queue] = taken.get(task.queue, 0) + 1
                queues = QueueFilter(queues.only, {q: max(0, n - taken.get(q, 0))
                                                   for q, n in queues.caps.items()})
            targets = self._claim_targets(rest, queues, names)
            if targets:
                claimed = claimed + self._claim(conn, worker_id, rest, lease_s, targets)
        if limit > 1 and len(claimed) == limit:
            self._wake_listeners(conn)  # a full batch: more may be ready for an idle peer
        return claimed

    @staticmethod
    def _only(queues: QueueFilter | None) -> tuple[str, list] | None:
        """The SQL that keeps a claim to the queues it may read (None: to none)."""
        if queues is None or queues.only is None:
            return "", []
        allowed = sorted(q for q in queues.only if queues.caps.get(q, 1) > 0)
        if not allowed:
            return None
        return f"AND g.queue IN ({marks(allowed)})", allowed

    def _flow_candidates(self, conn, queues: QueueFilter | None, now: float, n: int,
                         rated_only: bool = False) -> list:
        only = self._only(queues)
        if only is None:
            return []
        rated = "AND g.rkey > ''" if rated_only else ""
        statement = _CANDIDATES.format(ready=self.group_ready, only=only[0], rated=rated)
        return self._run(conn, statement, [*only[1], now, n]).fetchall()

    def _claim_unrated(self, conn, worker_id: str, limit: int, lease_s: float,
                       queues: QueueFilter | None) -> list[Claimed]:
        """Keyed tasks without a rate key: a pick (again, further along, while it
        meets groups with only delayed tasks), one update and the counts."""
        only = self._only(queues)
        if only is None:
            return []
        now = self.now()  # the database clock, as the ordinary claim
        statement = (_FAST_POSTGRES if self.row_locks else _FAST_SQLITE).format(only=only[0])
        scan = limit + defaults.FLOW_CANDIDATE_EXTRA
        per_group = [defaults.FLOW_GROUP_TAKE, defaults.FLOW_GROUP_SHARE]
        for _ in range(defaults.FLOW_DEFER_PASSES):
            params = [*only[1], scan, now, *(per_group + [limit] if self.row_locks else [])]
            rows = self._run(conn, statement, params).fetchall()
            idle = [(queue, ckey, "") for queue, ckey, _, task_id, *_ in rows if task_id is None]
            ready = len(rows) - len(idle)
            if ready >= limit or not self._defer_groups(conn, idle, now):
                break
            scan *= 4  # the groups deferred now sit behind the ones not looked at yet
        if not self.row_locks and limit > 1:
            rows = self._more_per_group(conn, rows, now, limit)
        caps = dict(queues.caps) if queues is not None else {}
        free: dict[str, int] = {}
        left = False
        picked: list[tuple] = []
        for row in rows:
            queue, ckey, slots, task_id = row[:4]
            if task_id is None:
                continue
            free.setdefault(ckey, slots)  # one key's slots, whichever queue its tasks are in
            if len(picked) >= limit:
                left = True  # more could run now: another worker may take them
                break
            if free[ckey] <= 0 or caps.get(queue, 1) <= 0:
                continue
            free[ckey] -= 1
            if queue in caps:
                caps[queue] -= 1
            picked.append(row)
        if not picked:
            return []
        ids = [row[3] for row in picked]
        if self.row_locks:
            taken = self._run(conn, _TAKE_COUNTED,
                              (worker_id, now + lease_s, now, ids, now)).fetchall()
        else:
            taken = self._run(conn, _TAKE_MANY.format(ids=marks(ids)),
                              [worker_id, now + lease_s, now, *ids]).fetchall()
            self._count_picked(conn, picked, {row[0] for row in taken}, now)
        self._counted().claimed(taken, now)  # the dashboard's counters, as any claim
        if left:
            self._wake_listeners(conn)
        order = {task_id: i for i, task_id in enumerate(ids)}
        return [claimed_from_row(row) for row in sorted(taken, key=lambda r: order[r[0]])]

    def _defer_groups(self, conn, groups: list[tuple[str, str, str]], now: float) -> int:
        """Give each of ``groups`` (queue, concurrency key, rate key), met by a claim
        with no task due, its turn when its first task is due, behind the groups
        served before then; the number deferred. In a fixed order, so that two
        claimers deferring the same groups on PostgreSQL never wait on each other
        in a cycle."""
        deferred = 0
        first_due = _FIRST_DUE.format(indexed=self.flow_index)
        for queue, ckey, rkey in sorted(set(groups)):
            row = self._run(conn, first_due, (queue, ckey, rkey)).fetchone()
            if row is not None and row[1] is not None and row[1] > now:
                queued, due = row
                deferred += self._run(conn, _DEFER,
                                      (due, queue, ckey, rkey, queued, due)).rowcount
        return deferred

    def _more_per_group(self, conn, rows: list, now: float, limit: int) -> list:
        """SQLite: more tasks of each group whose key has more than one free slot (one
        more indexed read per such group, at most ``limit`` and ``_group_take`` each),
        first task of every group first."""
        if all(row[2] <= 1 for row in rows):
            return rows  # limit 1 each (the common case): nothing more to read
        per_group = []
        for queue, ckey, slots, task_id, group_row, key_row in rows:
            ids = [task_id]
            if task_id is not None and slots > 1:
                ids = [r[0] for r in self._run(conn, _PICK_SOME, (
                    queue, ckey, now, min(limit, _group_take(slots)))).fetchall()]
            per_group.append([(queue, ckey, slots, i, group_row, key_row) for i in ids])
        depth = max((len(g) for g in per_group), default=0)
        return [g[n] for n in range(depth) for g in per_group if n < len(g)]


    def _count_picked(self, conn, picked: list, taken: set[int], now: float) -> None:
        """SQLite: the counts of the tasks of ``picked`` (rows of _FAST_SQLITE) whose
        id is in ``taken``, by the rowids of their group's and key's rows: a rowid
        lookup each, where _count_claims's join on the keys cost twice as much."""
        rows = [row for row in picked if row[3] in taken]
        for statement, rowids, second in (
                (_PICKED_GROUPS, [row[4] for row in rows], lambda n: now),
                (_PICKED_KEYS, [row[5] for row in rows], lambda n: n)):
            by_n: dict[int, list[int]] = {}
            for rowid, n in Counter(rowids).items():
                by_n.setdefault(n, []).append(rowid)
            for n, ids in by_n.items():  # one statement when every key took one task
                self._run(conn, statement.format(ids=marks(ids)), [n, second(n), *ids])

    def _count_claims(self, conn, rows: list, now: float) -> None:
        """Move the flow counts of keyed tasks just claimed (``rows``: their queue,
        concurrency_key, rate_key); the claim takes each group's turn."""
        keys: dict[str, int] = {}
        groups: dict[tuple, int] = {}
        for row in rows:
            queue, ckey, rkey = row
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

    def _count_claimed_ids(self, conn, task_ids: list[int]) -> None:
        """Count keyed tasks claimed by id outside this module (the inline engine)."""
        if task_ids:
            in_list = marks(task_ids)
            self._count_claims(conn, self._run(
                conn, f"SELECT queue, concurrency_key, rate_key FROM tasks WHERE id IN ({in_list})"
                " AND concurrency_key IS NOT NULL", task_ids).fetchall(), self.now())


    def _flow_ready(self, conn, queues: QueueFilter | None) -> bool:
        """Whether a keyed task may be claimable now (a cheap look before a write)."""
        return bool(self._flow_candidates(conn, queues, self.now(), 1))
