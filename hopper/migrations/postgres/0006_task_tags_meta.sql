-- Tags and metadata on tasks. ``tags`` (a JSON list) and ``meta`` (a JSON object)
-- are returned with the task; ``task_tags`` is the index the tag filter reads:
-- one row per (tag, task), so one user's tasks are found newest first by walking
-- the primary key backwards, however many tasks the table holds.
ALTER TABLE tasks ADD COLUMN tags TEXT;
ALTER TABLE tasks ADD COLUMN meta TEXT;

CREATE TABLE task_tags (
    tag     TEXT   NOT NULL,
    task_id BIGINT NOT NULL,
    PRIMARY KEY (tag, task_id)
);

-- A deleted task (retention, pruning) takes its tag rows with it, found through
-- the primary key with the task's own tags; untagged tasks cost nothing.
CREATE FUNCTION tasks_delete_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM task_tags
     WHERE tag IN (SELECT jsonb_array_elements_text(OLD.tags::jsonb)) AND task_id = OLD.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_delete_tags AFTER DELETE ON tasks
    FOR EACH ROW WHEN (OLD.tags IS NOT NULL) EXECUTE FUNCTION tasks_delete_tags();
