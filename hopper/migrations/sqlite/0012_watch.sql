-- Folder triggers (watch: entries).
--
-- watch_files: the files each entry has started, as they were when started
-- (size, mtime). A rescan starts only what is new or changed since, and gives
-- on_deleted to recorded files that are gone; a move seen live renames the row.
CREATE TABLE watch_files (
    entry      TEXT NOT NULL,      -- the entry's key: its task and folder
    path       TEXT NOT NULL,      -- '/'-separated, relative to the folder
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    task_id    INTEGER,             -- NULL: recorded without a task (a task's own write)
    started_at REAL NOT NULL,
    PRIMARY KEY (entry, path)
);

-- watch_quiet: absolute paths a task is moving or writing (hopper.quiet,
-- hopper.moved) until a moment; the watcher starts no task for events on them.
-- Shared through the database, so any worker on any process may declare them.
CREATE TABLE watch_quiet (
    path  TEXT PRIMARY KEY,
    until REAL NOT NULL
);
