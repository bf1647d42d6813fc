-- The library browser: the camera (EXIF Make and Model) and the thumbnail state of
-- each item, and indexes for pages ordered by capture time and the timeline.
ALTER TABLE library_items ADD COLUMN camera TEXT;
-- NULL: not made yet; 'ready': under data/thumbnails; 'none': the file cannot be
-- decoded as an image (recorded so it is not tried again)
ALTER TABLE library_items ADD COLUMN thumbnail TEXT;

-- Pages are newest capture first, with the id breaking ties; the timeline counts
-- months from the same index without touching the table.
DROP INDEX library_items_kind;
CREATE INDEX library_items_taken ON library_items (taken_at, id);
CREATE INDEX library_items_kind_taken ON library_items (kind, taken_at, id);
-- Images still waiting for a thumbnail: few at any time, found without a scan.
CREATE INDEX library_items_thumbnail_pending ON library_items (id)
    WHERE thumbnail IS NULL AND kind = 'image';

-- Items per month and kind, kept by a trigger in the transactions that change items,
-- so the timeline reads a few hundred rows however large the library grows.
CREATE TABLE library_months (
    month  TEXT   NOT NULL,   -- YYYY-MM of taken_at
    kind   TEXT   NOT NULL,
    items  BIGINT NOT NULL,
    PRIMARY KEY (month, kind)
);
INSERT INTO library_months (month, kind, items)
    SELECT substr(taken_at, 1, 7), kind, count(*) FROM library_items
    WHERE taken_at IS NOT NULL GROUP BY substr(taken_at, 1, 7), kind;

CREATE FUNCTION hopper_count_library_months() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.taken_at IS NOT NULL THEN
        UPDATE library_months SET items = items - 1
            WHERE month = substr(OLD.taken_at, 1, 7) AND kind = OLD.kind;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.taken_at IS NOT NULL THEN
        INSERT INTO library_months (month, kind, items)
            VALUES (substr(NEW.taken_at, 1, 7), NEW.kind, 1)
            ON CONFLICT (month, kind) DO UPDATE SET items = library_months.items + 1;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER library_months_counted AFTER INSERT OR DELETE OR UPDATE OF taken_at, kind
    ON library_items FOR EACH ROW EXECUTE FUNCTION hopper_count_library_months();
