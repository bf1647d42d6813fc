-- One row per failed (or rescued) attempt: its own error, worker and timings.
-- A success writes nothing here: the task row describes the latest attempt.
CREATE TABLE task_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    worker       TEXT,
    started_at   REAL,
    finished_at  REAL,
    error        TEXT,
    kind         TEXT    NOT NULL          -- error, timeout, lost, unstorable
);
CREATE INDEX task_attempts_task ON task_attempts (task_id, id);

-- One row per running daemon (a per-start id), heartbeated every second: the
-- liveness of a worker is its daemon's, never its host name and pid.
CREATE TABLE daemons (
    id           TEXT PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL
);

-- Each slot of a schedule entry is enqueued once across every daemon: the
-- primary key is the claim.
CREATE TABLE schedule_runs (
    name       TEXT    NOT NULL,
    slot       REAL    NOT NULL,
    task_id    INTEGER,
    created_at REAL    NOT NULL,
    PRIMARY KEY (name, slot)
);

-- Operational state of a schedule entry: paused, and since when its slots count
-- (first seen, or resumed).
CREATE TABLE schedule_state (
    name       TEXT PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    since      REAL    NOT NULL,
    updated_at REAL    NOT NULL
);
