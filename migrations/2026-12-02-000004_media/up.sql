-- Image uploads: one row per upload, processed on the job queue. The stored files are keyed
-- by the SHA-256 of the processed image (content_hash), so uploads of the same picture share
-- them; the files go only when no upload with that hash is left.
CREATE TABLE uploads (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uploader_id    BIGINT NOT NULL REFERENCES users (id),
    status         TEXT NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'ready', 'failed')),
    -- What the upload said it was (the sniffed format: png, jpeg, gif, webp) and its size.
    source_format  TEXT NOT NULL CHECK (source_format IN ('png', 'jpeg', 'gif', 'webp')),
    source_bytes   BIGINT NOT NULL CHECK (source_bytes > 0),
    failure_reason TEXT CHECK (char_length(failure_reason) <= 500),
    width          INTEGER CHECK (width > 0),
    height         INTEGER CHECK (height > 0),
    animated       BOOLEAN NOT NULL DEFAULT false,
    content_hash   TEXT CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    -- Bytes of every stored file of this upload (the image and its thumbnails).
    stored_bytes   BIGINT NOT NULL DEFAULT 0,
    -- The thumbnail widths stored (those narrower than the image; the image itself serves
    -- the widths it does not reach).
    thumbnail_widths INTEGER[] NOT NULL DEFAULT '{}',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at   TIMESTAMPTZ,
    CHECK (status <> 'ready' OR (content_hash IS NOT NULL AND width IS NOT NULL AND height IS NOT NULL)),
    CHECK (status <> 'failed' OR failure_reason IS NOT NULL)
);
CREATE INDEX uploads_content_hash ON uploads (content_hash) WHERE content_hash IS NOT NULL;
CREATE INDEX uploads_uploader ON uploads (uploader_id, id);
CREATE INDEX uploads_created_at ON uploads (created_at);

-- New columns with constant defaults are instant (no table rewrite). The foreign keys are
-- added NOT VALID (no scan under the lock); the next migration validates them outside this
-- transaction, and the two after it build their indexes CONCURRENTLY, so posts and users
-- stay writable on a big database.
ALTER TABLE posts
    ADD COLUMN image_upload_id BIGINT,
    ADD COLUMN nsfw BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN spoiler BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE posts ADD CONSTRAINT posts_image_upload_id_fkey
    FOREIGN KEY (image_upload_id) REFERENCES uploads (id) ON DELETE SET NULL NOT VALID;

ALTER TABLE users
    ADD COLUMN avatar_upload_id BIGINT,
    ADD COLUMN show_nsfw BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD CONSTRAINT users_avatar_upload_id_fkey
    FOREIGN KEY (avatar_upload_id) REFERENCES uploads (id) ON DELETE SET NULL NOT VALID;
