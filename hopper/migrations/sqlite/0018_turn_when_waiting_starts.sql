-- A group's turn (flow_groups.last_claim) is when it was last served, or, if a task
-- that enters it is due earlier, that task's run_after: a new group starts waiting
-- when its first task is due (not at 0, ahead of every group), and a group that a
-- claim deferred while its tasks were all delayed (flow_sql._defer_groups) is back
-- in turn as soon as a task that is due sooner arrives.
DROP TRIGGER tasks_flow_insert;
CREATE TRIGGER tasks_flow_insert AFTER INSERT ON tasks
WHEN new.concurrency_key IS NOT NULL BEGIN
    INSERT INTO flow_keys (key, conc_limit, running, queued)
    SELECT new.concurrency_key, new.concurrency_limit, new.status = 'running',
           new.status = 'queued'
     WHERE new.concurrency_key <> ''
    ON CONFLICT (key) DO UPDATE SET conc_limit = excluded.conc_limit,
       running = running + excluded.running, queued = queued + excluded.queued;
    INSERT INTO flow_groups (queue, ckey, rkey, queued, last_claim)
    VALUES (new.queue, new.concurrency_key, new.rate_key, new.status = 'queued', new.run_after)
    ON CONFLICT (queue, ckey, rkey) DO UPDATE SET queued = queued + excluded.queued,
       last_claim = CASE WHEN excluded.queued > 0 THEN min(last_claim, excluded.last_claim)
                    ELSE last_claim END;
END;

DROP TRIGGER tasks_flow_move;
CREATE TRIGGER tasks_flow_move AFTER UPDATE OF status ON tasks
WHEN new.concurrency_key IS NOT NULL AND old.status IS NOT new.status
 AND NOT (old.status = 'queued' AND new.status = 'running')
 AND (old.status = 'queued' OR new.status = 'queued') BEGIN
    INSERT INTO flow_keys (key, conc_limit, running, queued)
    SELECT new.concurrency_key, new.concurrency_limit,
           (new.status = 'running') - (old.status = 'running'),
           (new.status = 'queued') - (old.status = 'queued')
     WHERE new.concurrency_key <> ''
    ON CONFLICT (key) DO UPDATE SET
       running = running + excluded.running, queued = queued + excluded.queued;
    INSERT INTO flow_groups (queue, ckey, rkey, queued, last_claim)
    SELECT new.queue, new.concurrency_key, new.rate_key,
           (new.status = 'queued') - (old.status = 'queued'), new.run_after
     WHERE new.status = 'queued' OR old.status = 'queued'
    ON CONFLICT (queue, ckey, rkey) DO UPDATE SET queued = queued + excluded.queued,
       last_claim = CASE WHEN excluded.queued > 0 THEN min(last_claim, excluded.last_claim)
                    ELSE last_claim END;
END;
