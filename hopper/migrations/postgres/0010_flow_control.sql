-- Flow control: per-key concurrency and shared rate limits, enforced in the claim
-- (see the SQLite migration 0010 for the meaning of each table and column).
--
-- The triggers are row-level with a WHEN clause on the key: for an ordinary task
-- the server checks the condition and calls nothing, so the ordinary claim and
-- finish pay nothing for them.
ALTER TABLE tasks ADD COLUMN concurrency_key TEXT;
ALTER TABLE tasks ADD COLUMN concurrency_limit INTEGER;
ALTER TABLE tasks ADD COLUMN rate_key TEXT;

DROP INDEX tasks_queue_ready;
CREATE INDEX tasks_queue_ready ON tasks (queue, priority DESC, run_after, id)
    WHERE status = 'queued' AND concurrency_key IS NULL;
CREATE INDEX tasks_flow_ready ON tasks (queue, concurrency_key, rate_key, priority DESC,
                                        run_after, id)
    WHERE status = 'queued' AND concurrency_key IS NOT NULL;

CREATE TABLE flow_keys (
    key        TEXT    PRIMARY KEY,
    conc_limit INTEGER,
    running    INTEGER NOT NULL DEFAULT 0,
    queued     BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE flow_groups (
    queue      TEXT    NOT NULL,
    ckey       TEXT    NOT NULL,
    rkey       TEXT    NOT NULL,
    queued     BIGINT  NOT NULL DEFAULT 0,
    last_claim DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, ckey, rkey)
);
CREATE INDEX flow_groups_turn ON flow_groups (last_claim) WHERE queued > 0;

CREATE TABLE rate_limits (
    key          TEXT    PRIMARY KEY,
    amount       INTEGER NOT NULL,
    period_s     DOUBLE PRECISION NOT NULL,
    next_at      DOUBLE PRECISION NOT NULL DEFAULT 0,
    window_start DOUBLE PRECISION NOT NULL DEFAULT 0,
    used         INTEGER NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL DEFAULT 'api',
    updated_at   DOUBLE PRECISION NOT NULL DEFAULT 0
);

-- Every claim under a rate key in the last period (older rows are dropped as new
-- ones come): the Limits page counts them, and they record when each claim was made.
CREATE TABLE rate_claims (
    key        TEXT   NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL,
    task_id    BIGINT NOT NULL,
    PRIMARY KEY (key, claimed_at, task_id)
);

CREATE FUNCTION hopper_flow_count() RETURNS trigger AS $$
DECLARE
    d_running INTEGER := 0;
    d_queued  INTEGER := 0;
    k TEXT;
    r TEXT;
    q TEXT;
    lim INTEGER;
BEGIN
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        d_running := (NEW.status = 'running')::int;
        d_queued := (NEW.status = 'queued')::int;
        k := NEW.concurrency_key; r := NEW.rate_key; q := NEW.queue;
        lim := NEW.concurrency_limit;
    ELSE
        k := OLD.concurrency_key; r := OLD.rate_key; q := OLD.queue;
        lim := OLD.concurrency_limit;
    END IF;
    IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
        d_running := d_running - (OLD.status = 'running')::int;
        d_queued := d_queued - (OLD.status = 'queued')::int;
    END IF;
    IF d_running = 0 AND d_queued = 0 THEN
        RETURN NULL;
    END IF;
    IF k <> '' THEN
        INSERT INTO flow_keys AS f (key, conc_limit, running, queued)
        VALUES (k, lim, d_running, d_queued)
        ON CONFLICT (key) DO UPDATE SET
           conc_limit = CASE WHEN TG_OP = 'INSERT' THEN EXCLUDED.conc_limit ELSE f.conc_limit END,
           running = f.running + EXCLUDED.running, queued = f.queued + EXCLUDED.queued;
    END IF;
    IF d_queued <> 0 THEN
        INSERT INTO flow_groups AS g (queue, ckey, rkey, queued) VALUES (q, k, r, d_queued)
        ON CONFLICT (queue, ckey, rkey) DO UPDATE SET queued = g.queued + EXCLUDED.queued;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_flow_insert AFTER INSERT ON tasks FOR EACH ROW
    WHEN (NEW.concurrency_key IS NOT NULL) EXECUTE FUNCTION hopper_flow_count();
-- A claim (queued -> running) moves its counts itself, in one statement per claim
-- (backends/flow_sql.py): a trigger per row made a keyed claim three times slower.
CREATE TRIGGER tasks_flow_move AFTER UPDATE OF status ON tasks FOR EACH ROW
    WHEN (NEW.concurrency_key IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status
          AND NOT (OLD.status = 'queued' AND NEW.status = 'running'))
    EXECUTE FUNCTION hopper_flow_count();
CREATE TRIGGER tasks_flow_delete AFTER DELETE ON tasks FOR EACH ROW
    WHEN (OLD.concurrency_key IS NOT NULL AND OLD.status IN ('queued', 'running'))
    EXECUTE FUNCTION hopper_flow_count();
