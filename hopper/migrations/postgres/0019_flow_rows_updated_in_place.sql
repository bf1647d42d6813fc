-- A keyed claim updates its group's row (one less queued, its turn taken) and its
-- key's row (one more running); a keyed success frees the slot. Two changes make
-- that cheaper on PostgreSQL:
--
-- 1. The rows are updated in place (heap-only tuples): an update is HOT only when
--    no indexed column changes, and flow_groups_ready indexed the turn and had the
--    queued count in its predicate, so every claim wrote a new entry into both of
--    the table's indexes. The index now holds the rate key alone, for the groups
--    that have queued tasks (``ready``, which a claim changes only when it takes a
--    group's last task); the claim sorts the groups by turn itself, as its plan
--    already did. Pages keep room for the new row versions (fillfactor).
-- 2. A success frees its slot in the success statement, one update per batch
--    (backends/postgres.py), instead of a PL/pgSQL trigger call per task. The
--    trigger still counts every other move (cancels, rescues, failures, deletes).
--    A daemon of an earlier version, still running during a rolling upgrade,
--    frees no slot at a success; the recount in prune_flow (backends/flow_admin.py,
--    once a minute) gives those slots back.
ALTER TABLE flow_groups SET (fillfactor = 70);
ALTER TABLE flow_keys SET (fillfactor = 70);
ALTER TABLE flow_groups ADD COLUMN ready BOOLEAN GENERATED ALWAYS AS (queued > 0) STORED;
DROP INDEX flow_groups_ready;
CREATE INDEX flow_groups_ready ON flow_groups (rkey) WHERE ready;

DROP TRIGGER tasks_flow_move ON tasks;
CREATE TRIGGER tasks_flow_move AFTER UPDATE OF status ON tasks FOR EACH ROW
    WHEN (NEW.concurrency_key IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status
          AND NOT (OLD.status = 'queued' AND NEW.status = 'running')
          AND NOT (OLD.status = 'running' AND NEW.status IN ('succeeded', 'waiting')))
    EXECUTE FUNCTION hopper_flow_count();
