-- The task counters are now written by the backend itself, one grouped upsert
-- per write transaction from the rows its statements return
-- (app/backends/counter_batch.py), instead of by these row triggers: they ran
-- two or three upserts per task and cut the claim rate of one process from
-- about 185k to 70k tasks/s. The counter tables and their rows stay as they are.
-- (A single enqueue outside a transaction is counted by a TEMP trigger on the
-- connection that makes it; see SqliteBackend._autocommit_conn.)
DROP TRIGGER IF EXISTS tasks_counted_insert;
DROP TRIGGER IF EXISTS tasks_counted_move;
DROP TRIGGER IF EXISTS tasks_counted_delete;
DROP TRIGGER IF EXISTS tasks_counted_pickup;
DROP TRIGGER IF EXISTS tasks_counted_finish;
