-- Workflows and tracing.
--
-- ``depends_on`` (a JSON list of task ids) is what a task waits for in status
-- ``blocked``; ``task_deps`` holds the same edges the other way round, one row per
-- (dependency, dependent), so the tasks a finished task releases or cancels are
-- found through the primary key. ``cancelled_by`` names the dependency whose
-- failure cancelled a task: retrying that dependency brings exactly those back.
-- ``traceparent`` is the W3C trace context of the span that enqueued the task.
ALTER TABLE tasks ADD COLUMN depends_on TEXT;
ALTER TABLE tasks ADD COLUMN cancelled_by INTEGER;
ALTER TABLE tasks ADD COLUMN traceparent TEXT;

CREATE TABLE task_deps (
    depends_on INTEGER NOT NULL,
    task_id    INTEGER NOT NULL,
    PRIMARY KEY (depends_on, task_id)
) WITHOUT ROWID;

-- Blocked tasks are listed through their own partial index, like the other rare
-- statuses; they are never in tasks_queue_ready, so claims never see them.
CREATE INDEX tasks_blocked ON tasks (id) WHERE status = 'blocked';

-- The workflow graph finds a parent's continuation (unique_key continuation:<id>)
-- whatever its status; only continuations are in this index.
CREATE INDEX tasks_continuations ON tasks (unique_key)
    WHERE unique_key >= 'continuation:' AND unique_key < 'continuation;';

-- A blocked task is unfinished: unique_key stays unique among blocked tasks too.
DROP INDEX tasks_unique_key;
CREATE UNIQUE INDEX tasks_unique_key ON tasks (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'waiting', 'blocked');

-- A deleted dependent (retention, bulk delete) takes its edges with it, found
-- through the primary key with its own list; tasks without dependencies cost nothing.
CREATE TRIGGER tasks_delete_deps AFTER DELETE ON tasks WHEN old.depends_on IS NOT NULL
BEGIN
    DELETE FROM task_deps
     WHERE depends_on IN (SELECT value FROM json_each(old.depends_on)) AND task_id = old.id;
END;
