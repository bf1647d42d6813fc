-- The task queue. Timestamps are Unix seconds (REAL).
CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL DEFAULT 'default',
    name          TEXT    NOT NULL,
    args          TEXT    NOT NULL DEFAULT '{}',
    status        TEXT    NOT NULL DEFAULT 'queued',
    priority      INTEGER NOT NULL DEFAULT 0,
    run_after     REAL    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 3,
    timeout       REAL,
    unique_key    TEXT,
    parent_id     INTEGER,
    continuation  TEXT,
    progress_done  INTEGER,
    progress_total INTEGER,
    result        TEXT,
    error         TEXT,
    worker        TEXT,
    lease_until   REAL,
    created_at    REAL    NOT NULL,
    started_at    REAL,
    finished_at   REAL
);

-- Claim order: the ORDER BY of the claim query matches this index exactly,
-- so a claim stays O(log n) however many tasks are queued.
CREATE INDEX tasks_ready ON tasks (priority DESC, run_after, id) WHERE status = 'queued';

-- unique_key is unique among unfinished tasks only.
CREATE UNIQUE INDEX tasks_unique_key ON tasks (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'waiting');

CREATE INDEX tasks_children ON tasks (parent_id, status) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_running ON tasks (worker) WHERE status = 'running';
CREATE INDEX tasks_status ON tasks (status, id);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,          -- host:pid
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    task_id      INTEGER,
    cpu_percent  REAL,
    rss_bytes    INTEGER,
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL
);

-- Small facts the supervisor publishes for other processes (e.g. the last
-- settings reload error), as JSON values.
CREATE TABLE daemon_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
