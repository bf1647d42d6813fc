-- The library index: one row per organized file, plus the duplicate sources
-- that were not copied. Duplicates refer to their item by sha256, so a full
-- reindex (which rebuilds the item rows) keeps them attached.
CREATE TABLE library_items (
    id               BIGSERIAL PRIMARY KEY,
    path             TEXT    NOT NULL UNIQUE,   -- relative to library.root, '/'-separated
    name             TEXT    NOT NULL,          -- the file name in the library
    sha256           TEXT    NOT NULL UNIQUE,
    mime             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,          -- image, video, audio, document, other
    size             BIGINT  NOT NULL,
    taken_at         TEXT,                      -- ISO 8601 local wall-clock time
    taken_at_source  TEXT,                      -- exif:DateTimeOriginal, exif:DateTime, mtime, ingest
    width            INTEGER,
    height           INTEGER,
    source_name      TEXT,                      -- the name it was dropped under
    source_path      TEXT,                      -- relative to library.inbox
    source_mtime_ns  BIGINT,
    created_at       DOUBLE PRECISION NOT NULL,
    updated_at       DOUBLE PRECISION NOT NULL
);

CREATE INDEX library_items_kind ON library_items (kind, id);

CREATE TABLE library_duplicates (
    id               BIGSERIAL PRIMARY KEY,
    sha256           TEXT    NOT NULL,
    source_name      TEXT    NOT NULL,
    source_path      TEXT    NOT NULL,
    source_mtime_ns  BIGINT  NOT NULL,
    size             BIGINT  NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    -- the same drop recorded twice (a retried ingest) is one row
    UNIQUE (sha256, source_path, source_mtime_ns)
);
