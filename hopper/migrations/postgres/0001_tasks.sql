-- The task queue. Timestamps are Unix seconds (DOUBLE PRECISION), as in SQLite.
CREATE TABLE tasks (
    id             BIGSERIAL PRIMARY KEY,
    queue          TEXT    NOT NULL DEFAULT 'default',
    name           TEXT    NOT NULL,
    args           TEXT    NOT NULL DEFAULT '{}',
    status         TEXT    NOT NULL DEFAULT 'queued',
    priority       INTEGER NOT NULL DEFAULT 0,
    run_after      DOUBLE PRECISION NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL DEFAULT 3,
    timeout        DOUBLE PRECISION,
    unique_key     TEXT,
    parent_id      BIGINT,
    continuation   TEXT,
    progress_done  INTEGER,
    progress_total INTEGER,
    result         TEXT,
    error          TEXT,
    worker         TEXT,
    lease_until    DOUBLE PRECISION,
    created_at     DOUBLE PRECISION NOT NULL,
    started_at     DOUBLE PRECISION,
    finished_at    DOUBLE PRECISION
);

CREATE INDEX tasks_ready ON tasks (priority DESC, run_after, id) WHERE status = 'queued';
CREATE UNIQUE INDEX tasks_unique_key ON tasks (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'waiting');
CREATE INDEX tasks_children ON tasks (parent_id, status) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_running ON tasks (worker) WHERE status = 'running';
CREATE INDEX tasks_status ON tasks (status, id);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    task_id      BIGINT,
    cpu_percent  DOUBLE PRECISION,
    rss_bytes    BIGINT,
    started_at   DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE daemon_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
