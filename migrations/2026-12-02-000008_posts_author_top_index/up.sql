CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_author_top_idx ON posts (author_id, score DESC, id DESC)
