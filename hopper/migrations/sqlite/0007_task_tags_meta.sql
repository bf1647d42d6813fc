-- Tags and metadata on tasks. ``tags`` (a JSON list) and ``meta`` (a JSON object)
-- are returned with the task; ``task_tags`` is the index the tag filter reads:
-- one row per (tag, task), so one user's tasks are found newest first by walking
-- the primary key backwards, however many tasks the table holds.
ALTER TABLE tasks ADD COLUMN tags TEXT;
ALTER TABLE tasks ADD COLUMN meta TEXT;

CREATE TABLE task_tags (
    tag     TEXT    NOT NULL,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (tag, task_id)
) WITHOUT ROWID;

-- A deleted task (retention, pruning) takes its tag rows with it. The lookup goes
-- through the primary key with the task's own tags, so no second index is needed
-- and untagged tasks cost nothing.
CREATE TRIGGER tasks_delete_tags AFTER DELETE ON tasks WHEN old.tags IS NOT NULL
BEGIN
    DELETE FROM task_tags
     WHERE tag IN (SELECT value FROM json_each(old.tags)) AND task_id = old.id;
END;
