-- The task counters are now written by the backend itself, one grouped upsert
-- per write transaction from the rows its statements return
-- (app/backends/counter_batch.py), instead of by these statement triggers: each
-- UPDATE of a group commit fired three upserts and made claim + finish 30-65 %
-- slower. The counter tables, their per-connection shards and their rows stay.
DROP TRIGGER IF EXISTS tasks_counted_insert ON tasks;
DROP TRIGGER IF EXISTS tasks_counted_update ON tasks;
DROP TRIGGER IF EXISTS tasks_counted_delete ON tasks;
DROP FUNCTION IF EXISTS hopper_count_insert();
DROP FUNCTION IF EXISTS hopper_count_update();
DROP FUNCTION IF EXISTS hopper_count_delete();
