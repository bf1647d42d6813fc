-- Counters kept in the same transactions that change tasks (see the SQLite
-- migration 0008 for the meaning of each column). Each connection writes its
-- own rows (shard = its backend pid), so concurrent workers never wait on a
-- counter row; readers sum the shards, and housekeeping folds the rows of
-- connections that are gone into shard 0.

CREATE TABLE task_counts (
    queue   TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    shard   INTEGER NOT NULL DEFAULT 0,
    live    BIGINT  NOT NULL DEFAULT 0,
    entered BIGINT  NOT NULL DEFAULT 0,
    created BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, status, shard)
);

CREATE TABLE task_minutes (
    minute     BIGINT  NOT NULL,
    queue      TEXT    NOT NULL,
    shard      INTEGER NOT NULL DEFAULT 0,
    succeeded  BIGINT  NOT NULL DEFAULT 0,
    failed     BIGINT  NOT NULL DEFAULT 0,
    picked     BIGINT  NOT NULL DEFAULT 0,
    pickup_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue, shard)
);

CREATE TABLE task_histograms (
    metric TEXT    NOT NULL,
    queue  TEXT    NOT NULL,
    le     DOUBLE PRECISION NOT NULL,   -- 'Infinity' for the overflow bucket
    shard  INTEGER NOT NULL DEFAULT 0,
    n      BIGINT  NOT NULL DEFAULT 0,
    total  DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (metric, queue, le, shard)
);

-- The bounds are app/web/metrics.py's PICKUP_BUCKETS and DURATION_BUCKETS.
CREATE FUNCTION hopper_bucket(v DOUBLE PRECISION, bounds DOUBLE PRECISION[])
RETURNS DOUBLE PRECISION AS $$
    SELECT COALESCE((SELECT b FROM unnest(bounds) AS b WHERE v <= b ORDER BY b LIMIT 1),
                    'Infinity'::DOUBLE PRECISION)
$$ LANGUAGE sql IMMUTABLE;

CREATE FUNCTION hopper_observe(m TEXT, q TEXT, v DOUBLE PRECISION, bounds DOUBLE PRECISION[])
RETURNS void AS $$
    INSERT INTO task_histograms AS h (metric, queue, le, shard, n, total)
    VALUES (m, q, hopper_bucket(v, bounds), pg_backend_pid(), 1, v)
    ON CONFLICT (metric, queue, le, shard) DO UPDATE SET n = h.n + 1, total = h.total + v
$$ LANGUAGE sql;

CREATE FUNCTION hopper_count(q TEXT, st TEXT, d_live BIGINT, d_entered BIGINT, d_created BIGINT)
RETURNS void AS $$
    INSERT INTO task_counts AS c (queue, status, shard, live, entered, created)
    VALUES (q, st, pg_backend_pid(), d_live, d_entered, d_created)
    ON CONFLICT (queue, status, shard) DO UPDATE
       SET live = c.live + d_live, entered = c.entered + d_entered, created = c.created + d_created
$$ LANGUAGE sql;

CREATE FUNCTION hopper_count_tasks() RETURNS trigger AS $$
DECLARE
    v DOUBLE PRECISION;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM hopper_count(NEW.queue, NEW.status, 1, 1, 1);
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM hopper_count(OLD.queue, OLD.status, -1, 0, 0);
        RETURN NULL;
    END IF;
    IF OLD.status IS NOT DISTINCT FROM NEW.status AND OLD.queue IS NOT DISTINCT FROM NEW.queue THEN
        RETURN NULL;
    END IF;
    PERFORM hopper_count(OLD.queue, OLD.status, -1, 0, 0);
    PERFORM hopper_count(NEW.queue, NEW.status, 1, 1, 0);
    IF NEW.status = 'running' AND OLD.status = 'queued' AND NEW.started_at IS NOT NULL THEN
        v := GREATEST(NEW.started_at - GREATEST(OLD.run_after, OLD.created_at), 0);
        INSERT INTO task_minutes AS m (minute, queue, shard, picked, pickup_sum)
        VALUES (FLOOR(NEW.started_at / 60) * 60, NEW.queue, pg_backend_pid(), 1, v)
        ON CONFLICT (minute, queue, shard) DO UPDATE
           SET picked = m.picked + 1, pickup_sum = m.pickup_sum + v;
        PERFORM hopper_observe('pickup', NEW.queue, v,
            ARRAY[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60]);
    ELSIF NEW.status IN ('succeeded', 'failed') AND NEW.finished_at IS NOT NULL THEN
        INSERT INTO task_minutes AS m (minute, queue, shard, succeeded, failed)
        VALUES (FLOOR(NEW.finished_at / 60) * 60, NEW.queue, pg_backend_pid(),
                (NEW.status = 'succeeded')::int, (NEW.status = 'failed')::int)
        ON CONFLICT (minute, queue, shard) DO UPDATE
           SET succeeded = m.succeeded + EXCLUDED.succeeded, failed = m.failed + EXCLUDED.failed;
        IF NEW.started_at IS NOT NULL THEN
            PERFORM hopper_observe('duration', NEW.queue,
                GREATEST(NEW.finished_at - NEW.started_at, 0),
                ARRAY[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]);
        END IF;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_counted AFTER INSERT OR DELETE OR UPDATE OF status, queue ON tasks
    FOR EACH ROW EXECUTE FUNCTION hopper_count_tasks();

-- Start from the tasks already in the table.
INSERT INTO task_counts (queue, status, live, entered, created)
SELECT queue, status, count(*), count(*), count(*) FROM tasks GROUP BY queue, status;

INSERT INTO task_minutes (minute, queue, succeeded, failed)
SELECT FLOOR(finished_at / 60) * 60, queue,
       count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed')
  FROM tasks
 WHERE status IN ('succeeded', 'failed') AND finished_at >= EXTRACT(EPOCH FROM now()) - 86400
 GROUP BY 1, 2;
