-- The task table is update-heavy: every task is updated when it is claimed and
-- again when it finishes, and neither update can be HOT (status is in the
-- predicates of the partial indexes), so each leaves a dead tuple behind.
--
-- 1. tasks_status (status, id) was rewritten on both updates, like on SQLite
--    before its migration 0003: listings of the common statuses read the table
--    newest first and the partial indexes of queued and running tasks; each
--    rare status gets a partial index only the tasks entering it touch.
DROP INDEX IF EXISTS tasks_status;
CREATE INDEX IF NOT EXISTS tasks_waiting ON tasks (id) WHERE status = 'waiting';
CREATE INDEX IF NOT EXISTS tasks_failed ON tasks (id) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS tasks_cancelled ON tasks (id) WHERE status = 'cancelled';

-- 2. Vacuum this table after ~1,000 dead tuples plus 2 % of its rows (the server
--    default is 50 + 20 %: on a million-row table, 200,000 dead tuples first), and
--    without the cost-based pauses, so a vacuum keeps up with a draining queue.
ALTER TABLE tasks SET (
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE workers SET (autovacuum_vacuum_threshold = 100, autovacuum_vacuum_cost_delay = 0);
