"""Flow control outside the claim: what the Limits page and the API read and set
(keys' counts, rate limits and their claim log), what idle workers wait for, and
the upkeep of the flow tables (the ``FlowControl`` protocol). The claim itself is
in ``flow_sql.py`` and ``flow_rates.py``."""
from __future__ import annotations

import logging
import time

from hopper.app import defaults
from hopper.app.backends.flow_rates import NTH_RECENT_CLAIM
from hopper.app.backends.sql_parts import SqlParts, marks
from hopper.app.flow import Rate

_RATE_DUE = ("SELECT min(r.next_at) FROM rate_limits r WHERE r.next_at > ?"
             " AND EXISTS (SELECT 1 FROM flow_groups g WHERE g.rkey = r.key AND g.{ready})")
# Keys whose count of running tasks is not the number of their running tasks. One
# statement, so one snapshot: a claim or a finish moves a task and its key's count
# in one transaction, and no snapshot sees one without the other.
_DRIFTED = ("SELECT k.key FROM flow_keys k LEFT JOIN (SELECT concurrency_key AS key,"
            " count(*) AS n FROM tasks WHERE status = 'running' AND concurrency_key <> ''"
            " GROUP BY concurrency_key) r ON r.key = k.key"
            " WHERE k.running <> COALESCE(r.n, 0) ORDER BY k.key")
_RUNNING_OF_KEY = ("(SELECT count(*) FROM tasks t WHERE t.status = 'running'"
                   " AND t.concurrency_key = flow_keys.key)")
_RECOUNT = (f"UPDATE flow_keys SET running = {_RUNNING_OF_KEY} WHERE key IN ({{keys}})"
            f" AND running <> {_RUNNING_OF_KEY} RETURNING key")
_KEYED_DUE_SCAN = 1000
_KEYED_DUE = ("SELECT min(run_after), count(*) FROM (SELECT run_after FROM tasks"
              " WHERE status = 'queued' AND concurrency_key IS NOT NULL AND run_after > ?"
              " LIMIT ?) AS delayed")

log = logging.getLogger("hopper.flow")


class FlowAdmin(SqlParts):
    """Reads and writes of flow control besides the claim; mixed into the SQL backend."""

    def rate_claims(self, key: str, since: float = 0.0) -> list[float]:
        """When the claims under a rate key were made (the last two periods at most)."""
        return [r[0] for r in self._read(
            "SELECT claimed_at FROM rate_claims WHERE key = ? AND claimed_at >= ?"
            " ORDER BY claimed_at", (key, since))]

    def flow_next_due(self, now: float) -> float | None:
        """The earliest time a keyed task waits for: a rate key's next slot or a
        delayed keyed task (None when there is none or too many to look at)."""
        times = []
        rate_due = self._read(_RATE_DUE.format(ready=self.group_ready), (now,))[0][0]
        if rate_due is not None:
            times.append(rate_due)
        earliest, seen = self._read(_KEYED_DUE, (now, _KEYED_DUE_SCAN + 1))[0]
        if earliest is not None and seen <= _KEYED_DUE_SCAN:
            times.append(earliest)
        return min(times) if times else None

    # -- the Limits page and the API -----------------------------------------
    def limits(self) -> dict:
        """Concurrency keys with tasks queued or running, and every rate limit."""
        now = time.time()
        keys = [{"key": k, "limit": lim, "running": max(running, 0), "queued": max(queued, 0)}
                for k, lim, running, queued in self._read(
                    "SELECT key, conc_limit, running, queued FROM flow_keys"
                    " WHERE running > 0 OR queued > 0 ORDER BY running + queued DESC, key"
                    " LIMIT ?", (defaults.FLOW_KEYS_SHOWN,))]
        rates = []
        for key, amount, period_s, used, next_at, source, queued in self._read(
                "SELECT r.key, r.amount, r.period_s,"
                " (SELECT count(*) FROM rate_claims c WHERE c.key = r.key"
                "   AND c.claimed_at > ? - r.period_s), r.next_at, r.source,"
                " (SELECT COALESCE(SUM(g.queued), 0) FROM flow_groups g WHERE g.rkey = r.key)"
                " FROM rate_limits r ORDER BY r.key", (now,)):
            rates.append({"key": key, "rate": str(Rate(amount, period_s)), "amount": amount,
                          "period_s": period_s, "used": int(used),
                          "period_start": now - period_s, "next_at": max(next_at, now),
                          "queued": max(int(queued), 0), "source": source})
        return {"concurrency": keys, "rates": rates}

    def set_rate_limit(self, key: str, rate: Rate | None, source: str = "api") -> bool:
        """Set (or with None remove) a rate limit for every daemon; True if it changed."""
        with self._write() as conn:
            if rate is None:
                return self._run(conn, "DELETE FROM rate_limits WHERE key = ?",
                                 (key,)).rowcount > 0
            # The next claim under the new rate: when the claims already logged leave
            # room for one (a new limit counts the claims made under the old one).
            nth = self._run(conn, NTH_RECENT_CLAIM, (key, rate.amount - 1)).fetchone()
            next_at = nth[0] + rate.period_s if nth is not None else 0.0
            self._run(conn, "INSERT INTO rate_limits (key, amount, period_s, source, updated_at,"
                      " next_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                      " amount = excluded.amount, period_s = excluded.period_s,"
                      " source = excluded.source, updated_at = excluded.updated_at,"
                      " next_at = excluded.next_at",
                      (key, rate.amount, rate.period_s, source, time.time(), next_at))
            self._wake_listeners(conn)
            return True

    def sync_rate_limits(self, rates: dict[str, Rate]) -> None:
        """Make the rate limits that came from settings exactly ``rates``."""
        current = {k: (a, p, s) for k, a, p, s in self._read(
            "SELECT key, amount, period_s, source FROM rate_limits")}
        for key, (_, _, source) in current.items():
            if source == "settings" and key not in rates:
                self.set_rate_limit(key, None)
        for key, rate in rates.items():
            if current.get(key) != (rate.amount, rate.period_s, "settings"):
                self.set_rate_limit(key, rate, source="settings")

    def flow_wait(self, task: dict) -> dict | None:
        """Why a queued keyed task is not running yet: its key is full or its rate
        spent; None when it is not waiting for either."""
        if task.get("status") != "queued":
            return None
        ckey, rkey = task.get("concurrency_key"), task.get("rate_key")
        if ckey:
            rows = self._read("SELECT conc_limit, running FROM flow_keys WHERE key = ?", (ckey,))
            if rows and rows[0][0] is not None and rows[0][1] >= rows[0][0]:
                return {"reason": "concurrency", "key": ckey, "limit": rows[0][0],
                        "running": rows[0][1]}
        if rkey:
            rows = self._read("SELECT amount, period_s, next_at FROM rate_limits WHERE key = ?",
                              (rkey,))
            if rows and rows[0][2] > time.time():
                return {"reason": "rate", "key": rkey, "rate": str(Rate(rows[0][0], rows[0][1])),
                        "next_at": rows[0][2]}
        return None

    def prune_flow(self) -> None:
        """Recount the keys' running tasks, then drop the rows of keys and groups
        with nothing queued or running."""
        self.recount_running()
        with self._write() as conn:
            self._run(conn, "DELETE FROM flow_groups WHERE queued <= 0")
            self._run(conn, "DELETE FROM flow_keys WHERE queued <= 0 AND running <= 0")

    def recount_running(self) -> list[str]:
        """Set each key's count of running tasks to the number of its tasks that are
        running, where they differ; the keys corrected. A count only drifts when a
        task ends without freeing its slot: a success recorded by a daemon of an
        earlier version during a rolling upgrade (PostgreSQL migration 0019)."""
        drifted = [row[0] for row in self._read(_DRIFTED)]
        size = defaults.FLOW_RECOUNT_CHUNK
        skip_locked = f"{self.row_lock} SKIP LOCKED" if self.row_lock else ""
        corrected: list[str] = []
        for start in range(0, len(drifted), size):
            with self._write() as conn:
                # Locked first, skipping a key a claim or a finish holds now (the next
                # recount has it; this one never waits, so it is never in a deadlock),
                # then counted by a statement of its own: every claim or finish that
                # moved these rows has committed by then, and none can move them
                # until this transaction ends.
                locked = [row[0] for row in self._run(
                    conn, f"SELECT key FROM flow_keys WHERE key IN ({marks(range(size))})"
                    f"{skip_locked}", _padded(drifted[start:start + size], size)).fetchall()]
                if locked:
                    corrected += [row[0] for row in self._run(
                        conn, _RECOUNT.format(keys=marks(range(size))),
                        _padded(locked, size)).fetchall()]
        if corrected:
            log.warning("recounted the running tasks of %d concurrency key(s), whose count"
                        " had drifted: %s", len(corrected), ", ".join(corrected[:10]))
        return corrected


def _padded(keys: list[str], size: int) -> list[str]:
    """``keys`` repeated at the end to ``size`` values: one statement text whatever
    their number (as prune's chunks)."""
    return keys + [keys[-1]] * (size - len(keys))
