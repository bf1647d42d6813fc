-- Queues an operator can steer.
--
-- The claim reads one queue at a time, so the ready index leads with the queue:
-- a paused or excluded queue, however deep, is never walked by a claim of
-- another queue. Claim order within a queue is unchanged (priority, run_after, id).
DROP INDEX tasks_ready;
CREATE INDEX tasks_queue_ready ON tasks (queue, priority DESC, run_after, id)
    WHERE status = 'queued';

-- A paused queue is operational state shared by every daemon on this database:
-- a row here means its tasks stay queued until it is resumed.
CREATE TABLE paused_queues (
    queue     TEXT PRIMARY KEY,
    paused_at DOUBLE PRECISION NOT NULL
);
