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
