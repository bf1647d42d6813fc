-- A task that other tasks depend on says so in its own row, set in the
-- transaction that adds the edge. A finishing task's UPDATE returns the flag,
-- so a group commit looks in task_deps only for tasks with dependents: one read
-- less after every finished batch (a round trip on PostgreSQL) when none has.
ALTER TABLE tasks ADD COLUMN has_dependents BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE tasks SET has_dependents = TRUE WHERE id IN (SELECT depends_on FROM task_deps);
