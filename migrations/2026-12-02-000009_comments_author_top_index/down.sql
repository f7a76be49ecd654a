DROP INDEX CONCURRENTLY IF EXISTS comments_author_top_idx
