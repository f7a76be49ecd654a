-- The signed-in reader: saved and hidden posts, saved comments, blocks, filtered keywords and
-- private messages. New tables only, plus a constant-default column on users and nullable
-- columns on reports and inbox_items (no rewrite, no long lock on a big table).

CREATE TABLE saved_posts (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id  BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);
-- `/me/saved`: most recently saved first, keyset on (saved_at, post_id).
CREATE INDEX saved_posts_recent_idx ON saved_posts (user_id, saved_at DESC, post_id DESC);

CREATE TABLE saved_comments (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    comment_id BIGINT NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    saved_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, comment_id)
);
CREATE INDEX saved_comments_recent_idx ON saved_comments (user_id, saved_at DESC, comment_id DESC);

CREATE TABLE hidden_posts (
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id   BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    hidden_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);

CREATE TABLE user_blocks (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, blocked_id),
    CHECK (user_id <> blocked_id)
);
-- "Does the recipient block the sender?" is asked by the recipient's key; this one finds who
-- blocks a user (an account's deletion, an admin's view).
CREATE INDEX user_blocks_blocked_idx ON user_blocks (blocked_id);

CREATE TABLE community_blocks (
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    community_id BIGINT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, community_id)
);

ALTER TABLE users ADD COLUMN filtered_keywords TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE messages (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body         TEXT NOT NULL CHECK (char_length(body) BETWEEN 1 AND 10000),
    body_html    TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (sender_id <> recipient_id)
);
-- A conversation is the pair in either direction: one index on the ordered pair, newest first.
CREATE INDEX messages_pair_idx
    ON messages (least(sender_id, recipient_id), greatest(sender_id, recipient_id), id DESC);
-- The list of conversations: a user's latest messages sent and received.
CREATE INDEX messages_sender_idx ON messages (sender_id, id DESC);
CREATE INDEX messages_recipient_idx ON messages (recipient_id, id DESC);

ALTER TABLE inbox_items ADD COLUMN message_id BIGINT REFERENCES messages (id) ON DELETE CASCADE;

-- A message can be reported to the site admins: a report names exactly one of a post, a
-- comment or a message, and only post and comment reports belong to a community.
ALTER TABLE reports ADD COLUMN message_id BIGINT REFERENCES messages (id) ON DELETE CASCADE;
ALTER TABLE reports ALTER COLUMN community_id DROP NOT NULL;
ALTER TABLE reports ADD CONSTRAINT reports_one_target
    CHECK (num_nonnulls(post_id, comment_id, message_id) = 1
           AND (message_id IS NULL) = (community_id IS NOT NULL)) NOT VALID;
ALTER TABLE reports VALIDATE CONSTRAINT reports_one_target;
ALTER TABLE reports DROP CONSTRAINT reports_check;
CREATE INDEX reports_open_messages_idx ON reports (id DESC) WHERE resolved_at IS NULL AND message_id IS NOT NULL;
