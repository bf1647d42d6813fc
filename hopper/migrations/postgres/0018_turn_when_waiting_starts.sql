-- A group's turn (flow_groups.last_claim) is when it was last served, or, if a task
-- that enters it is due earlier, that task's run_after: a new group starts waiting
-- when its first task is due (not at 0, ahead of every group), and a group that a
-- claim deferred while its tasks were all delayed (flow_sql._defer_groups) is back
-- in turn as soon as a task that is due sooner arrives.
CREATE OR REPLACE FUNCTION hopper_flow_count() RETURNS trigger AS $$
DECLARE
    d_running INTEGER := 0;
    d_queued  INTEGER := 0;
    k TEXT;
    r TEXT;
    q TEXT;
    lim INTEGER;
    due DOUBLE PRECISION := 0;
BEGIN
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        d_running := (NEW.status = 'running')::int;
        d_queued := (NEW.status = 'queued')::int;
        k := NEW.concurrency_key; r := NEW.rate_key; q := NEW.queue;
        lim := NEW.concurrency_limit;
        due := NEW.run_after;
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
        INSERT INTO flow_groups AS g (queue, ckey, rkey, queued, last_claim)
        VALUES (q, k, r, d_queued, due)
        ON CONFLICT (queue, ckey, rkey) DO UPDATE SET queued = g.queued + EXCLUDED.queued,
           last_claim = CASE WHEN EXCLUDED.queued > 0
                             THEN LEAST(g.last_claim, EXCLUDED.last_claim)
                             ELSE g.last_claim END;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
