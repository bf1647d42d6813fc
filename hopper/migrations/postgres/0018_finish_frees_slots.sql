-- A success frees its key's slot in the statement that records it: the group
-- commit that ends a batch of keyed tasks moves flow_keys once per key
-- (postgres._SUCCEED_ARRAYS), not once per task in a row trigger. Every other end
-- of a running keyed task (a failure, a timeout, a cancel) is still counted here,
-- in the transaction that changes it.
DROP TRIGGER tasks_flow_move ON tasks;
CREATE TRIGGER tasks_flow_move AFTER UPDATE OF status ON tasks FOR EACH ROW
    WHEN (NEW.concurrency_key IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status
          AND NOT (OLD.status = 'queued' AND NEW.status = 'running')
          AND NOT (OLD.status = 'running' AND NEW.status IN ('succeeded', 'waiting')))
    EXECUTE FUNCTION hopper_flow_count();
