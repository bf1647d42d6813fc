-- tasks_status (status, id) was rewritten twice in every task's life (claim and
-- finish) and cost the drain about a quarter of its throughput. The common
-- statuses are listed from the table itself (newest first) and from the partial
-- indexes tasks_ready and tasks_running; each rare status gets a partial index
-- that only tasks entering that status touch.
DROP INDEX tasks_status;
CREATE INDEX tasks_waiting ON tasks (id) WHERE status = 'waiting';
CREATE INDEX tasks_failed ON tasks (id) WHERE status = 'failed';
CREATE INDEX tasks_cancelled ON tasks (id) WHERE status = 'cancelled';
