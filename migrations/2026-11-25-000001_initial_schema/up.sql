-- The first schema: everything the v1 API contract (shared/API.md) stores.
-- Ids are BIGINT identities; timestamps are TIMESTAMPTZ; names are unique ignoring case.

CREATE TABLE users (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username              TEXT NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{3,20}$'),
    email                 TEXT NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash         TEXT NOT NULL,
    bio                   TEXT NOT NULL DEFAULT '' CHECK (char_length(bio) <= 10000),
    is_admin              BOOLEAN NOT NULL DEFAULT false,
    karma                 BIGINT NOT NULL DEFAULT 0,
    notification_settings JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    password_changed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE communities (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT NOT NULL CHECK (name ~ '^[a-z0-9_]{3,21}$'),
    title             TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 100),
    description       TEXT NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    rules             TEXT[] NOT NULL DEFAULT '{}',
    creator_id        BIGINT NOT NULL REFERENCES users (id),
    member_count      BIGINT NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    post_count        BIGINT NOT NULL DEFAULT 0 CHECK (post_count >= 0),
    summaries_enabled BOOLEAN NOT NULL DEFAULT true,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX communities_name_lower_key ON communities (lower(name));
CREATE INDEX communities_popular_idx ON communities (member_count DESC, id DESC);
CREATE INDEX communities_new_idx ON communities (created_at DESC, id DESC);

CREATE TABLE community_members (
    community_id BIGINT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_members_user_idx ON community_members (user_id);

CREATE TABLE community_moderators (
    community_id BIGINT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by     BIGINT REFERENCES users (id),
    added_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_moderators_user_idx ON community_moderators (user_id);

CREATE TABLE community_bans (
    community_id BIGINT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by    BIGINT NOT NULL REFERENCES users (id),
    reason       TEXT NOT NULL CHECK (char_length(reason) <= 1000),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ,
    PRIMARY KEY (community_id, user_id)
);

CREATE TABLE posts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id     BIGINT NOT NULL REFERENCES communities (id),
    author_id        BIGINT NOT NULL REFERENCES users (id),
    title            TEXT NOT NULL CHECK (char_length(title) <= 300),
    body             TEXT NOT NULL DEFAULT '' CHECK (char_length(body) <= 40000),
    body_html        TEXT NOT NULL DEFAULT '',
    url              TEXT CHECK (url IS NULL OR url ~ '^https?://'),
    score            INTEGER NOT NULL DEFAULT 0,
    upvotes          INTEGER NOT NULL DEFAULT 0 CHECK (upvotes >= 0),
    downvotes        INTEGER NOT NULL DEFAULT 0 CHECK (downvotes >= 0),
    -- Reddit's hot formula: sign(s)·log10(max(|s|,1)) + epoch_seconds(created_at)/45000.
    -- It depends only on the post's own score and age, so it is kept up to date on each vote.
    hot_rank         DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- (ups + downs) ^ (minority / majority): many votes split close to even rank highest.
    controversy_rank DOUBLE PRECISION GENERATED ALWAYS AS (
        CASE WHEN upvotes = 0 OR downvotes = 0 THEN 0
             ELSE power((upvotes + downvotes)::float8,
                        LEAST(upvotes, downvotes)::float8 / GREATEST(upvotes, downvotes)::float8)
        END) STORED,
    comment_count    INTEGER NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    last_activity_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at        TIMESTAMPTZ,
    deleted          BOOLEAN NOT NULL DEFAULT false,
    removed          BOOLEAN NOT NULL DEFAULT false,
    locked           BOOLEAN NOT NULL DEFAULT false,
    pinned           BOOLEAN NOT NULL DEFAULT false,
    search_vector    TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED
);
-- One index per listing sort, across all communities and within one; id breaks ties for keyset cursors.
CREATE INDEX posts_hot_idx ON posts (hot_rank DESC, id DESC);
CREATE INDEX posts_new_idx ON posts (created_at DESC, id DESC);
CREATE INDEX posts_top_idx ON posts (score DESC, id DESC);
CREATE INDEX posts_controversial_idx ON posts (controversy_rank DESC, id DESC);
CREATE INDEX posts_active_idx ON posts (last_activity_at DESC, id DESC);
CREATE INDEX posts_community_hot_idx ON posts (community_id, hot_rank DESC, id DESC);
CREATE INDEX posts_community_new_idx ON posts (community_id, created_at DESC, id DESC);
CREATE INDEX posts_community_top_idx ON posts (community_id, score DESC, id DESC);
CREATE INDEX posts_community_controversial_idx ON posts (community_id, controversy_rank DESC, id DESC);
CREATE INDEX posts_community_active_idx ON posts (community_id, last_activity_at DESC, id DESC);
CREATE INDEX posts_community_pinned_idx ON posts (community_id) WHERE pinned;
CREATE INDEX posts_author_idx ON posts (author_id, created_at DESC, id DESC);
CREATE INDEX posts_search_idx ON posts USING GIN (search_vector);

CREATE TABLE comments (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id          BIGINT NOT NULL REFERENCES posts (id),
    parent_id        BIGINT REFERENCES comments (id),
    author_id        BIGINT NOT NULL REFERENCES users (id),
    -- Materialized path: the ids from the top-level ancestor down to this comment itself,
    -- so a whole tree or subtree is one indexed range scan.
    path             BIGINT[] NOT NULL,
    depth            INTEGER NOT NULL CHECK (depth >= 0),
    body             TEXT NOT NULL CHECK (char_length(body) <= 40000),
    body_html        TEXT NOT NULL DEFAULT '',
    score            INTEGER NOT NULL DEFAULT 0,
    upvotes          INTEGER NOT NULL DEFAULT 0 CHECK (upvotes >= 0),
    downvotes        INTEGER NOT NULL DEFAULT 0 CHECK (downvotes >= 0),
    -- Lower bound of the Wilson score interval, z = 1.281551565545 (80 %), as Reddit's "best".
    wilson_score     DOUBLE PRECISION GENERATED ALWAYS AS (
        CASE WHEN upvotes + downvotes = 0 THEN 0
             ELSE ((upvotes::float8 / (upvotes + downvotes))
                   + 1.642374415149818 / (2 * (upvotes + downvotes))
                   - 1.281551565545 * sqrt(((upvotes::float8 / (upvotes + downvotes))
                         * (1 - upvotes::float8 / (upvotes + downvotes))
                         + 1.642374415149818 / (4 * (upvotes + downvotes))) / (upvotes + downvotes)))
                  / (1 + 1.642374415149818 / (upvotes + downvotes))
        END) STORED,
    reply_count      INTEGER NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at        TIMESTAMPTZ,
    deleted          BOOLEAN NOT NULL DEFAULT false,
    removed          BOOLEAN NOT NULL DEFAULT false,
    CHECK (depth = cardinality(path) - 1),
    CHECK ((parent_id IS NULL) = (depth = 0))
);
-- Fills path and depth from the parent, so callers insert only (post_id, parent_id, ...).
CREATE FUNCTION comments_set_path() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_path BIGINT[];
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.path := ARRAY[NEW.id];
    ELSE
        SELECT path INTO parent_path FROM comments WHERE id = NEW.parent_id AND post_id = NEW.post_id;
        IF parent_path IS NULL THEN
            RAISE EXCEPTION 'comment % is not a comment of post %', NEW.parent_id, NEW.post_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        NEW.path := parent_path || NEW.id;
    END IF;
    NEW.depth := cardinality(NEW.path) - 1;
    RETURN NEW;
END;
$$;
CREATE TRIGGER comments_set_path BEFORE INSERT ON comments
    FOR EACH ROW EXECUTE FUNCTION comments_set_path();
CREATE INDEX comments_post_path_idx ON comments (post_id, path);
-- A page of top-level comments loads their subtrees by root id and depth.
CREATE INDEX comments_post_root_idx ON comments (post_id, (path[1]), depth);
CREATE INDEX comments_post_top_level_idx ON comments (post_id, wilson_score DESC, id) WHERE parent_id IS NULL;
CREATE INDEX comments_parent_idx ON comments (parent_id);
CREATE INDEX comments_author_idx ON comments (author_id, created_at DESC, id DESC);

CREATE TABLE post_votes (
    post_id    BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value      SMALLINT NOT NULL CHECK (value IN (-1, 1)),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_votes_user_idx ON post_votes (user_id);

CREATE TABLE comment_votes (
    comment_id BIGINT NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value      SMALLINT NOT NULL CHECK (value IN (-1, 1)),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_votes_user_idx ON comment_votes (user_id);

-- One row per login: the family of refresh tokens it rotates through. Access tokens carry the
-- session id, so revoking the session revokes its access and refresh tokens at once.
CREATE TABLE login_sessions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    user_agent     TEXT NOT NULL DEFAULT '',
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);
CREATE INDEX login_sessions_user_idx ON login_sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX login_sessions_revoked_idx ON login_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    spent_at   TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE password_reset_tokens (
    token_hash BYTEA PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

-- Responses remembered for Idempotency-Key replays (24 h). `scope` is the caller: a user id,
-- or the client address for anonymous calls. `status` is NULL while the first call runs.
CREATE TABLE idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    request_hash   BYTEA NOT NULL,
    status         SMALLINT,
    response_body  BYTEA,
    response_headers JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

CREATE TABLE reports (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reporter_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    community_id BIGINT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    post_id      BIGINT REFERENCES posts (id),
    comment_id   BIGINT REFERENCES comments (id),
    rule_index   INTEGER CHECK (rule_index >= 0),
    reason       TEXT NOT NULL DEFAULT '' CHECK (char_length(reason) <= 1000),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at  TIMESTAMPTZ,
    resolved_by  BIGINT REFERENCES users (id),
    CHECK ((post_id IS NULL) <> (comment_id IS NULL)),
    CHECK (rule_index IS NOT NULL OR reason <> '')
);
CREATE INDEX reports_open_idx ON reports (community_id, id DESC) WHERE resolved_at IS NULL;

-- Every moderation, ban, admin and security-relevant auth action. Append-only (a trigger
-- refuses UPDATE and DELETE) and tamper-evident: each row stores the hash of the row before it
-- and its own hash over its content, so an altered or deleted row breaks the chain.
CREATE TABLE audit_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id       BIGINT REFERENCES users (id),
    community_id   BIGINT REFERENCES communities (id),
    action         TEXT NOT NULL,
    target_user_id BIGINT REFERENCES users (id),
    post_id        BIGINT REFERENCES posts (id),
    comment_id     BIGINT REFERENCES comments (id),
    rule_index     INTEGER CHECK (rule_index >= 0),
    reason         TEXT NOT NULL DEFAULT '',
    details        JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    prev_hash      BYTEA NOT NULL DEFAULT '\x'::bytea,
    entry_hash     BYTEA NOT NULL DEFAULT '\x'::bytea
);
CREATE INDEX audit_log_community_idx ON audit_log (community_id, id DESC);

-- The hash of one entry: SHA-256 over the previous hash and every content column.
CREATE FUNCTION audit_log_entry_hash(prev BYTEA, entry audit_log) RETURNS BYTEA
LANGUAGE sql STABLE AS $$
    SELECT sha256(prev || convert_to(concat_ws(E'\x1f',
        entry.id::text,
        coalesce(entry.actor_id::text, '-'),
        coalesce(entry.community_id::text, '-'),
        entry.action,
        coalesce(entry.target_user_id::text, '-'),
        coalesce(entry.post_id::text, '-'),
        coalesce(entry.comment_id::text, '-'),
        coalesce(entry.rule_index::text, '-'),
        entry.reason,
        entry.details::text,
        to_char(entry.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')), 'UTF8'))
$$;

-- Chains each new entry to the last one. The id is drawn under the lock so that id order is
-- chain order even with concurrent writers.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7242100);
    NEW.id := nextval(pg_get_serial_sequence('audit_log', 'id'));
    NEW.prev_hash := coalesce((SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1), '\x'::bytea);
    NEW.entry_hash := audit_log_entry_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
