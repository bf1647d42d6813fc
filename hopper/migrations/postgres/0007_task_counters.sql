-- Counters kept in the same transactions that change tasks (see the SQLite
-- migration 0008 for the meaning of each column), by statement-level triggers
-- that read the statement's changed rows. Each connection writes its
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

-- Histogram bounds (in the CASEs below) are app/web/metrics.py's PICKUP_BUCKETS and
-- DURATION_BUCKETS.

-- Statement-level triggers: one grouped upsert per statement, however many rows it
-- changed (a worker's batch claim or group commit is one statement), instead of
-- one per row. Keys are grouped first: an upsert may touch each row only once.
CREATE FUNCTION hopper_count_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO task_counts AS c (queue, status, shard, live, entered, created)
    SELECT queue, status, pg_backend_pid(), count(*), count(*), count(*)
      FROM new_rows GROUP BY queue, status ORDER BY queue, status
    ON CONFLICT (queue, status, shard) DO UPDATE
       SET live = c.live + EXCLUDED.live, entered = c.entered + EXCLUDED.entered,
           created = c.created + EXCLUDED.created;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION hopper_count_delete() RETURNS trigger AS $$
BEGIN
    INSERT INTO task_counts AS c (queue, status, shard, live)
    SELECT queue, status, pg_backend_pid(), -count(*)
      FROM old_rows GROUP BY queue, status ORDER BY queue, status
    ON CONFLICT (queue, status, shard) DO UPDATE SET live = c.live + EXCLUDED.live;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION hopper_count_update() RETURNS trigger AS $$
BEGIN
    WITH moved AS (
        SELECT o.queue AS old_queue, o.status AS old_status, n.queue, n.status,
               GREATEST(n.started_at - GREATEST(o.run_after, o.created_at), 0) AS pickup,
               n.started_at, n.finished_at,
               GREATEST(n.finished_at - n.started_at, 0) AS duration
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.status IS DISTINCT FROM n.status OR o.queue IS DISTINCT FROM n.queue
    ), counted AS (
        INSERT INTO task_counts AS c (queue, status, shard, live, entered)
        SELECT queue, status, pg_backend_pid(), SUM(live), SUM(entered) FROM (
            SELECT old_queue AS queue, old_status AS status, -1 AS live, 0 AS entered FROM moved
            UNION ALL
            SELECT queue, status, 1, 1 FROM moved) AS d
         GROUP BY queue, status ORDER BY queue, status
        ON CONFLICT (queue, status, shard) DO UPDATE
           SET live = c.live + EXCLUDED.live, entered = c.entered + EXCLUDED.entered
        RETURNING 1
    ), per_minute AS (  -- WITH clauses that write run to completion even when unread
        INSERT INTO task_minutes AS m (minute, queue, shard, succeeded, failed, picked, pickup_sum)
        SELECT minute, queue, pg_backend_pid(), SUM(ok), SUM(bad), SUM(picked), SUM(pickup) FROM (
            SELECT FLOOR(started_at / 60) * 60 AS minute, queue, 0 AS ok, 0 AS bad,
                   1 AS picked, pickup FROM moved
             WHERE old_status = 'queued' AND status = 'running' AND started_at IS NOT NULL
            UNION ALL
            SELECT FLOOR(finished_at / 60) * 60, queue, (status = 'succeeded')::int,
                   (status = 'failed')::int, 0, 0 FROM moved
             WHERE status IN ('succeeded', 'failed') AND finished_at IS NOT NULL) AS d
         GROUP BY minute, queue ORDER BY minute, queue
        ON CONFLICT (minute, queue, shard) DO UPDATE
           SET succeeded = m.succeeded + EXCLUDED.succeeded, failed = m.failed + EXCLUDED.failed,
               picked = m.picked + EXCLUDED.picked, pickup_sum = m.pickup_sum + EXCLUDED.pickup_sum
        RETURNING 1
    )
    INSERT INTO task_histograms AS h (metric, queue, le, shard, n, total)
    SELECT metric, queue, le, pg_backend_pid(), count(*), SUM(v) FROM (
        SELECT 'pickup' AS metric, queue, pickup AS v, (CASE WHEN pickup <= 0.001 THEN 0.001 WHEN pickup <= 0.005 THEN 0.005 WHEN pickup
               <= 0.01 THEN 0.01 WHEN pickup <= 0.025 THEN 0.025 WHEN pickup <= 0.05 THEN 0.05
               WHEN pickup <= 0.1 THEN 0.1 WHEN pickup <= 0.25 THEN 0.25 WHEN pickup <= 0.5
               THEN 0.5 WHEN pickup <= 1 THEN 1 WHEN pickup <= 2.5 THEN 2.5 WHEN pickup <= 5
               THEN 5 WHEN pickup <= 10 THEN 10 WHEN pickup <= 60 THEN 60 ELSE
               'Infinity'::float8 END)::float8 AS le
          FROM moved WHERE old_status = 'queued' AND status = 'running' AND started_at IS NOT NULL
        UNION ALL
        SELECT 'duration', queue, duration, (CASE WHEN duration <= 0.005 THEN 0.005 WHEN duration <= 0.01 THEN 0.01 WHEN
               duration <= 0.025 THEN 0.025 WHEN duration <= 0.05 THEN 0.05 WHEN duration <=
               0.1 THEN 0.1 WHEN duration <= 0.25 THEN 0.25 WHEN duration <= 0.5 THEN 0.5 WHEN
               duration <= 1 THEN 1 WHEN duration <= 2.5 THEN 2.5 WHEN duration <= 5 THEN 5
               WHEN duration <= 10 THEN 10 WHEN duration <= 30 THEN 30 WHEN duration <= 60 THEN
               60 WHEN duration <= 300 THEN 300 WHEN duration <= 1800 THEN 1800 ELSE
               'Infinity'::float8 END)::float8
          FROM moved WHERE status IN ('succeeded', 'failed') AND finished_at IS NOT NULL
                       AND started_at IS NOT NULL) AS d
     GROUP BY metric, queue, le ORDER BY metric, queue, le
    ON CONFLICT (metric, queue, le, shard) DO UPDATE
       SET n = h.n + EXCLUDED.n, total = h.total + EXCLUDED.total;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_counted_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hopper_count_insert();
CREATE TRIGGER tasks_counted_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hopper_count_delete();
CREATE TRIGGER tasks_counted_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hopper_count_update();

-- Start from the tasks already in the table.
INSERT INTO task_counts (queue, status, live, entered, created)
SELECT queue, status, count(*), count(*), count(*) FROM tasks GROUP BY queue, status;

INSERT INTO task_minutes (minute, queue, succeeded, failed)
SELECT FLOOR(finished_at / 60) * 60, queue,
       count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed')
  FROM tasks
 WHERE status IN ('succeeded', 'failed') AND finished_at >= EXTRACT(EPOCH FROM now()) - 86400
 GROUP BY 1, 2;
