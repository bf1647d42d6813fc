-- Real media: a photo's GPS position, a video's duration and codec, a PDF's page count,
-- and why an item has no preview.
ALTER TABLE library_items ADD COLUMN latitude DOUBLE PRECISION;      -- signed decimal degrees
ALTER TABLE library_items ADD COLUMN longitude DOUBLE PRECISION;
ALTER TABLE library_items ADD COLUMN duration DOUBLE PRECISION;      -- seconds (videos)
ALTER TABLE library_items ADD COLUMN pages INTEGER;    -- page count (PDFs)
ALTER TABLE library_items ADD COLUMN codec TEXT;       -- video codec (h264, hevc...)
-- With thumbnail 'none': not a visual kind, or why the file could not be decoded.
ALTER TABLE library_items ADD COLUMN thumbnail_reason TEXT;

-- Previews are made for images, videos and PDFs now: every item still waiting for one.
DROP INDEX library_items_thumbnail_pending;
CREATE INDEX library_items_preview_pending ON library_items (id) WHERE thumbnail IS NULL;

-- Items of other kinds never get one; say so instead of "pending" forever.
UPDATE library_items SET thumbnail = 'none', thumbnail_reason = 'no preview for ' || mime
    WHERE thumbnail IS NULL AND kind NOT IN ('image', 'video') AND mime <> 'application/pdf';
-- HEIC/HEIF/AVIF could not be decoded before: try them again.
UPDATE library_items SET thumbnail = NULL
    WHERE thumbnail = 'none' AND mime IN ('image/heic', 'image/heif', 'image/avif');
