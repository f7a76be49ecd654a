CREATE INDEX CONCURRENTLY IF NOT EXISTS comments_author_top_idx ON comments (author_id, score DESC, id DESC)
