-- Flow control: per-key concurrency and shared rate limits, enforced in the claim.
--
-- A keyed task has both concurrency_key and rate_key set ('' for the one it does not
-- use); an ordinary task has both NULL. Ordinary tasks keep their own partial index
-- (tasks_queue_ready, now without keyed rows), so a backlog under a key never lies in
-- the ordinary claim's path and the ordinary claim reads nothing more than before.
ALTER TABLE tasks ADD COLUMN concurrency_key TEXT;
ALTER TABLE tasks ADD COLUMN concurrency_limit INTEGER;
ALTER TABLE tasks ADD COLUMN rate_key TEXT;

DROP INDEX tasks_queue_ready;
CREATE INDEX tasks_queue_ready ON tasks (queue, priority DESC, run_after, id)
    WHERE status = 'queued' AND concurrency_key IS NULL;
-- One group's (queue, concurrency key, rate key) ready tasks in claim order.
CREATE INDEX tasks_flow_ready ON tasks (queue, concurrency_key, rate_key, priority DESC,
                                        run_after, id)
    WHERE status = 'queued' AND concurrency_key IS NOT NULL;

-- The semaphore of each concurrency key: tasks running and queued under it now,
-- kept by the triggers below in the transaction that changes the task.
CREATE TABLE flow_keys (
    key        TEXT    PRIMARY KEY,
    conc_limit INTEGER,              -- NULL: no concurrency limit (a rate key alone)
    running    INTEGER NOT NULL DEFAULT 0,
    queued     INTEGER NOT NULL DEFAULT 0
);

-- The unit a claim picks from: the keyed tasks of one queue sharing both keys.
-- Groups are served least recently claimed first (round robin), not in arrival order.
CREATE TABLE flow_groups (
    queue      TEXT    NOT NULL,
    ckey       TEXT    NOT NULL,
    rkey       TEXT    NOT NULL,
    queued     INTEGER NOT NULL DEFAULT 0,
    last_claim REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, ckey, rkey)
);
CREATE INDEX flow_groups_turn ON flow_groups (last_claim) WHERE queued > 0;

-- Rate limits shared by every daemon: no window of ``period_s`` ever holds more than
-- ``amount`` claims (rate_claims logs them); ``next_at`` is when the next may come.
-- ``used`` counts the claims of the fixed period from ``window_start``.
-- source: 'settings' or 'api'.
CREATE TABLE rate_limits (
    key          TEXT    PRIMARY KEY,
    amount       INTEGER NOT NULL,
    period_s     REAL    NOT NULL,
    next_at      REAL    NOT NULL DEFAULT 0,
    window_start REAL    NOT NULL DEFAULT 0,
    used         INTEGER NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL DEFAULT 'api',
    updated_at   REAL    NOT NULL DEFAULT 0
);

-- Every claim under a rate key in the last period (older rows are dropped as new
-- ones come): the Limits page counts them, and they record when each claim was made.
CREATE TABLE rate_claims (
    key        TEXT   NOT NULL,
    claimed_at REAL NOT NULL,
    task_id    BIGINT NOT NULL,
    PRIMARY KEY (key, claimed_at, task_id)
);

CREATE TRIGGER tasks_flow_insert AFTER INSERT ON tasks
WHEN new.concurrency_key IS NOT NULL BEGIN
    INSERT INTO flow_keys (key, conc_limit, running, queued)
    SELECT new.concurrency_key, new.concurrency_limit, new.status = 'running',
           new.status = 'queued'
     WHERE new.concurrency_key <> ''
    ON CONFLICT (key) DO UPDATE SET conc_limit = excluded.conc_limit,
       running = running + excluded.running, queued = queued + excluded.queued;
    INSERT INTO flow_groups (queue, ckey, rkey, queued)
    VALUES (new.queue, new.concurrency_key, new.rate_key, new.status = 'queued')
    ON CONFLICT (queue, ckey, rkey) DO UPDATE SET queued = queued + excluded.queued;
END;

-- A claim (queued -> running) moves its counts itself, in one statement per claim
-- (backends/flow_sql.py): a trigger per row made a keyed claim three times slower.
CREATE TRIGGER tasks_flow_move AFTER UPDATE OF status ON tasks
WHEN new.concurrency_key IS NOT NULL AND old.status IS NOT new.status
 AND NOT (old.status = 'queued' AND new.status = 'running')
 AND (old.status = 'queued' OR new.status = 'queued') BEGIN
    INSERT INTO flow_keys (key, conc_limit, running, queued)
    SELECT new.concurrency_key, new.concurrency_limit,
           (new.status = 'running') - (old.status = 'running'),
           (new.status = 'queued') - (old.status = 'queued')
     WHERE new.concurrency_key <> ''
    ON CONFLICT (key) DO UPDATE SET
       running = running + excluded.running, queued = queued + excluded.queued;
    INSERT INTO flow_groups (queue, ckey, rkey, queued)
    SELECT new.queue, new.concurrency_key, new.rate_key,
           (new.status = 'queued') - (old.status = 'queued')
     WHERE new.status = 'queued' OR old.status = 'queued'
    ON CONFLICT (queue, ckey, rkey) DO UPDATE SET queued = queued + excluded.queued;
END;

-- The common end of a keyed task, running -> succeeded | failed | waiting | cancelled:
-- one slot of its key is free again (a plain UPDATE: the key's row exists while it runs).
CREATE TRIGGER tasks_flow_done AFTER UPDATE OF status ON tasks
WHEN new.concurrency_key <> '' AND old.status = 'running' AND new.status <> 'queued' BEGIN
    UPDATE flow_keys SET running = running - 1 WHERE key = new.concurrency_key;
END;

CREATE TRIGGER tasks_flow_delete AFTER DELETE ON tasks
WHEN old.concurrency_key IS NOT NULL AND old.status IN ('queued', 'running') BEGIN
    UPDATE flow_keys SET running = running - (old.status = 'running'),
                         queued = queued - (old.status = 'queued')
     WHERE key = old.concurrency_key;
    UPDATE flow_groups SET queued = queued - (old.status = 'queued')
     WHERE queue = old.queue AND ckey = old.concurrency_key AND rkey = old.rate_key;
END;
