-- Email sent by the queue's email jobs: a job that runs again after a crash finds its row and
-- does not send twice.
CREATE TABLE email_deliveries (
    delivery_key TEXT PRIMARY KEY CHECK (char_length(delivery_key) BETWEEN 1 AND 200),
    user_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    template     TEXT NOT NULL,
    sent_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX email_deliveries_user_idx ON email_deliveries (user_id, sent_at DESC);

-- The latest AI summary of each post, keyed by a hash of the content it was made from.
CREATE TABLE post_summaries (
    post_id            BIGINT PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    content_hash       TEXT NOT NULL,
    summary            TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL DEFAULT '',
    source_comment_ids BIGINT[] NOT NULL DEFAULT '{}',
    comment_count      INTEGER NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    input_tokens       INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens      INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_usd           DOUBLE PRECISION NOT NULL DEFAULT 0,
    generated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Summaries requested per user (or anonymous client address) per UTC day, for the daily quota.
CREATE TABLE summary_usage (
    subject TEXT NOT NULL,
    day     DATE NOT NULL,
    used    INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (subject, day)
);

-- The highest-rated visible comments of a post: what a summary is made from.
CREATE INDEX comments_post_score_idx ON comments (post_id, score DESC, id) WHERE NOT deleted AND NOT removed;
