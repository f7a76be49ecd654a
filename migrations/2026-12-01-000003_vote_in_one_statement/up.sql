-- Votes in one round trip: each function locks the target row, checks the rules, upserts or
-- deletes the vote, updates the counters and the author's karma and, when something changed,
-- publishes the cache invalidation given by the daemon (delivered at commit). The rules
-- mirror service::posts::vote and service::comments::vote; `outcome` tells the caller which
-- refusal applies ('ok', 'unchanged' for a repeated vote, 'not_found', 'closed', 'banned'). In the
-- comment function's notification, `{post}` stands for the comment's post id.

CREATE FUNCTION agora_vote_post(p_post bigint, p_user bigint, p_value smallint, p_notify text)
RETURNS TABLE (outcome text, score integer, upvotes integer, downvotes integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    target record;
    previous smallint;
    up integer;
    down integer;
BEGIN
    SELECT p.author_id, p.community_id, p.deleted, p.removed INTO target
        FROM posts p WHERE p.id = p_post FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, 0, 0, 0;
        RETURN;
    END IF;
    IF target.deleted OR target.removed THEN
        RETURN QUERY SELECT 'closed'::text, 0, 0, 0;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM community_bans b
               WHERE b.community_id = target.community_id AND b.user_id = p_user
                 AND (b.expires_at IS NULL OR b.expires_at > now())) THEN
        RETURN QUERY SELECT 'banned'::text, 0, 0, 0;
        RETURN;
    END IF;
    SELECT v.value INTO previous FROM post_votes v WHERE v.post_id = p_post AND v.user_id = p_user;
    previous := coalesce(previous, 0);
    IF previous = p_value THEN
        RETURN QUERY SELECT 'unchanged'::text, p.score, p.upvotes, p.downvotes FROM posts p WHERE p.id = p_post;
        RETURN;
    END IF;
    IF p_value = 0 THEN
        DELETE FROM post_votes v WHERE v.post_id = p_post AND v.user_id = p_user;
    ELSE
        INSERT INTO post_votes (post_id, user_id, value) VALUES (p_post, p_user, p_value)
            ON CONFLICT (post_id, user_id) DO UPDATE SET value = excluded.value;
    END IF;
    up := (p_value = 1)::integer - (previous = 1)::integer;
    down := (p_value = -1)::integer - (previous = -1)::integer;
    IF up - down <> 0 THEN
        UPDATE users SET karma = karma + (up - down) WHERE id = target.author_id;
    END IF;
    IF p_notify IS NOT NULL THEN
        PERFORM pg_notify('agora_cache', p_notify);
    END IF;
    -- hot_rank: the formula of db::hot_rank_sql!, on the new score.
    RETURN QUERY UPDATE posts p SET
            upvotes = p.upvotes + up,
            downvotes = p.downvotes + down,
            score = p.score + up - down,
            hot_rank = sign(p.score + up - down) * log(greatest(abs(p.score + up - down), 1))
                + extract(epoch FROM p.created_at) / 45000
        WHERE p.id = p_post
        RETURNING 'ok'::text, p.score, p.upvotes, p.downvotes;
END;
$$;

CREATE FUNCTION agora_vote_comment(p_comment bigint, p_user bigint, p_value smallint, p_notify text)
RETURNS TABLE (outcome text, post_id bigint, score integer, upvotes integer, downvotes integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    target record;
    previous smallint;
    up integer;
    down integer;
BEGIN
    SELECT c.author_id, c.post_id, p.community_id, c.deleted, c.removed INTO target
        FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.id = p_comment FOR UPDATE OF c;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, 0::bigint, 0, 0, 0;
        RETURN;
    END IF;
    IF target.deleted OR target.removed THEN
        RETURN QUERY SELECT 'closed'::text, target.post_id, 0, 0, 0;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM community_bans b
               WHERE b.community_id = target.community_id AND b.user_id = p_user
                 AND (b.expires_at IS NULL OR b.expires_at > now())) THEN
        RETURN QUERY SELECT 'banned'::text, target.post_id, 0, 0, 0;
        RETURN;
    END IF;
    SELECT v.value INTO previous FROM comment_votes v WHERE v.comment_id = p_comment AND v.user_id = p_user;
    previous := coalesce(previous, 0);
    IF previous = p_value THEN
        RETURN QUERY SELECT 'unchanged'::text, c.post_id, c.score, c.upvotes, c.downvotes FROM comments c WHERE c.id = p_comment;
        RETURN;
    END IF;
    IF p_value = 0 THEN
        DELETE FROM comment_votes v WHERE v.comment_id = p_comment AND v.user_id = p_user;
    ELSE
        INSERT INTO comment_votes (comment_id, user_id, value) VALUES (p_comment, p_user, p_value)
            ON CONFLICT (comment_id, user_id) DO UPDATE SET value = excluded.value;
    END IF;
    up := (p_value = 1)::integer - (previous = 1)::integer;
    down := (p_value = -1)::integer - (previous = -1)::integer;
    IF up - down <> 0 THEN
        UPDATE users SET karma = karma + (up - down) WHERE id = target.author_id;
    END IF;
    IF p_notify IS NOT NULL THEN
        PERFORM pg_notify('agora_cache', replace(p_notify, '{post}', target.post_id::text));
    END IF;
    RETURN QUERY UPDATE comments c SET
            upvotes = c.upvotes + up,
            downvotes = c.downvotes + down,
            score = c.score + up - down
        WHERE c.id = p_comment
        RETURNING 'ok'::text, c.post_id, c.score, c.upvotes, c.downvotes;
END;
$$;
