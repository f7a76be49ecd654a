-- Each user's inbox: replies to their posts and comments, u/name mentions and moderator
-- actions on their content, written in the transaction of what caused them.
CREATE TABLE inbox_items (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('reply', 'mention', 'message', 'mod_action')),
    from_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    post_id      BIGINT REFERENCES posts (id) ON DELETE CASCADE,
    comment_id   BIGINT REFERENCES comments (id) ON DELETE CASCADE,
    excerpt      TEXT NOT NULL DEFAULT '' CHECK (char_length(excerpt) <= 300),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    read_at      TIMESTAMPTZ
);
CREATE INDEX inbox_items_user_idx ON inbox_items (user_id, id DESC);
CREATE INDEX inbox_items_unread_idx ON inbox_items (user_id, id DESC) WHERE read_at IS NULL;
