-- Counters kept in the same transactions that change tasks, so the dashboard,
-- GET /api/queues and /metrics read a few small rows instead of counting the
-- tasks table (1.2 s and 4.5 s with a million finished tasks). Triggers keep
-- every code path that changes a task (enqueue, claim, finish, cancel, retry,
-- rescue, prune, bulk actions) counted without touching it.
--
-- ``shard`` is always 0 here (SQLite has one writer); PostgreSQL gives each
-- connection its own rows so that concurrent workers never wait on a counter.

-- live: tasks in this status now (falls when they leave it or are pruned).
-- entered: times a task entered this status; created: tasks inserted in it.
-- Both only ever grow: they are the Prometheus _total counters.
CREATE TABLE task_counts (
    queue   TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    shard   INTEGER NOT NULL DEFAULT 0,
    live    INTEGER NOT NULL DEFAULT 0,
    entered INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, status, shard)
) WITHOUT ROWID;

-- Per queue and minute (Unix seconds, a multiple of 60): tasks that finished
-- as succeeded or failed, and tasks picked up with their summed pickup latency.
-- Rows older than a day are pruned with the tasks.
CREATE TABLE task_minutes (
    minute     INTEGER NOT NULL,
    queue      TEXT    NOT NULL,
    shard      INTEGER NOT NULL DEFAULT 0,
    succeeded  INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    picked     INTEGER NOT NULL DEFAULT 0,
    pickup_sum REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue, shard)
) WITHOUT ROWID;

-- Histogram buckets (not cumulative): ``le`` is the bucket's upper bound, 9e999
-- (infinity) for the overflow bucket. The bounds are app/web/metrics.py's
-- PICKUP_BUCKETS and DURATION_BUCKETS.
CREATE TABLE task_histograms (
    metric TEXT    NOT NULL,          -- 'pickup' or 'duration'
    queue  TEXT    NOT NULL,
    le     REAL    NOT NULL,
    shard  INTEGER NOT NULL DEFAULT 0,
    n      INTEGER NOT NULL DEFAULT 0,
    total  REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (metric, queue, le, shard)
) WITHOUT ROWID;

CREATE TRIGGER tasks_counted_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (queue, status, live, entered, created)
    VALUES (new.queue, new.status, 1, 1, 1)
    ON CONFLICT (queue, status, shard) DO UPDATE
       SET live = live + 1, entered = entered + 1, created = created + 1;
END;

CREATE TRIGGER tasks_counted_move AFTER UPDATE OF status, queue ON tasks
WHEN old.status IS NOT new.status OR old.queue IS NOT new.queue BEGIN
    INSERT INTO task_counts (queue, status, live, entered)
    VALUES (old.queue, old.status, -1, 0), (new.queue, new.status, 1, 1)
    ON CONFLICT (queue, status, shard) DO UPDATE
       SET live = live + excluded.live, entered = entered + excluded.entered;
END;

CREATE TRIGGER tasks_counted_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET live = live - 1
     WHERE queue = old.queue AND status = old.status AND shard = 0;
END;

-- Pickup latency: from when the task could first run (created, or run_after
-- if later) to the claim that starts it.
CREATE TRIGGER tasks_counted_pickup AFTER UPDATE OF status ON tasks
WHEN new.status = 'running' AND old.status = 'queued' BEGIN
    INSERT INTO task_minutes (minute, queue, picked, pickup_sum)
    SELECT CAST(new.started_at / 60 AS INTEGER) * 60, new.queue, 1, v
      FROM (SELECT MAX(new.started_at - MAX(old.run_after, old.created_at), 0) AS v)
     WHERE new.started_at IS NOT NULL
    ON CONFLICT (minute, queue, shard) DO UPDATE
       SET picked = picked + 1, pickup_sum = pickup_sum + excluded.pickup_sum;
    INSERT INTO task_histograms (metric, queue, le, n, total)
    SELECT 'pickup', new.queue,
           CASE WHEN v <= 0.001 THEN 0.001 WHEN v <= 0.005 THEN 0.005 WHEN v <= 0.01 THEN 0.01
                WHEN v <= 0.025 THEN 0.025 WHEN v <= 0.05 THEN 0.05 WHEN v <= 0.1 THEN 0.1
                WHEN v <= 0.25 THEN 0.25 WHEN v <= 0.5 THEN 0.5 WHEN v <= 1 THEN 1
                WHEN v <= 2.5 THEN 2.5 WHEN v <= 5 THEN 5 WHEN v <= 10 THEN 10
                WHEN v <= 60 THEN 60 ELSE 9e999 END, 1, v
      FROM (SELECT MAX(new.started_at - MAX(old.run_after, old.created_at), 0) AS v)
     WHERE new.started_at IS NOT NULL
    ON CONFLICT (metric, queue, le, shard) DO UPDATE
       SET n = n + 1, total = total + excluded.total;
END;

-- A task that ends as succeeded or failed: the per-minute chart and the run time.
CREATE TRIGGER tasks_counted_finish AFTER UPDATE OF status ON tasks
WHEN new.status IN ('succeeded', 'failed') AND old.status IS NOT new.status
     AND new.finished_at IS NOT NULL BEGIN
    INSERT INTO task_minutes (minute, queue, succeeded, failed)
    VALUES (CAST(new.finished_at / 60 AS INTEGER) * 60, new.queue,
            new.status = 'succeeded', new.status = 'failed')
    ON CONFLICT (minute, queue, shard) DO UPDATE
       SET succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed;
    INSERT INTO task_histograms (metric, queue, le, n, total)
    SELECT 'duration', new.queue,
           CASE WHEN v <= 0.005 THEN 0.005 WHEN v <= 0.01 THEN 0.01 WHEN v <= 0.025 THEN 0.025
                WHEN v <= 0.05 THEN 0.05 WHEN v <= 0.1 THEN 0.1 WHEN v <= 0.25 THEN 0.25
                WHEN v <= 0.5 THEN 0.5 WHEN v <= 1 THEN 1 WHEN v <= 2.5 THEN 2.5
                WHEN v <= 5 THEN 5 WHEN v <= 10 THEN 10 WHEN v <= 30 THEN 30
                WHEN v <= 60 THEN 60 WHEN v <= 300 THEN 300 WHEN v <= 1800 THEN 1800
                ELSE 9e999 END, 1, v
      FROM (SELECT MAX(new.finished_at - new.started_at, 0) AS v)
     WHERE new.started_at IS NOT NULL
    ON CONFLICT (metric, queue, le, shard) DO UPDATE
       SET n = n + 1, total = total + excluded.total;
END;

-- Start from the tasks already in the table.
INSERT INTO task_counts (queue, status, live, entered, created)
SELECT queue, status, count(*), count(*), count(*) FROM tasks GROUP BY queue, status;

INSERT INTO task_minutes (minute, queue, succeeded, failed)
SELECT CAST(finished_at / 60 AS INTEGER) * 60, queue,
       SUM(status = 'succeeded'), SUM(status = 'failed')
  FROM tasks
 WHERE status IN ('succeeded', 'failed') AND finished_at >= CAST(strftime('%s', 'now') AS REAL) - 86400
 GROUP BY 1, 2;
