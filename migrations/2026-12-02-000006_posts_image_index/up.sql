CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_image_upload_id ON posts (image_upload_id) WHERE image_upload_id IS NOT NULL
