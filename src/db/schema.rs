//! diesel's view of the tables created by `migrations/`. Generated columns are read-only here;
//! `posts.search_vector` is queried through SQL fragments, so it is not listed.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        bio -> Text,
        is_admin -> Bool,
        karma -> BigInt,
        notification_settings -> Jsonb,
        created_at -> Timestamptz,
        password_changed_at -> Timestamptz,
        avatar_upload_id -> Nullable<BigInt>,
        show_nsfw -> Bool,
        filtered_keywords -> Array<Text>,
    }
}

diesel::table! {
    communities (id) {
        id -> BigInt,
        name -> Text,
        title -> Text,
        description -> Text,
        rules -> Array<Text>,
        creator_id -> BigInt,
        member_count -> BigInt,
        post_count -> BigInt,
        summaries_enabled -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    community_members (community_id, user_id) {
        community_id -> BigInt,
        user_id -> BigInt,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    community_moderators (community_id, user_id) {
        community_id -> BigInt,
        user_id -> BigInt,
        added_by -> Nullable<BigInt>,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    community_bans (community_id, user_id) {
        community_id -> BigInt,
        user_id -> BigInt,
        banned_by -> BigInt,
        reason -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    posts (id) {
        id -> BigInt,
        community_id -> BigInt,
        author_id -> BigInt,
        title -> Text,
        body -> Text,
        body_html -> Text,
        url -> Nullable<Text>,
        score -> Integer,
        upvotes -> Integer,
        downvotes -> Integer,
        hot_rank -> Double,
        controversy_rank -> Double,
        comment_count -> Integer,
        last_activity_at -> Timestamptz,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        deleted -> Bool,
        removed -> Bool,
        locked -> Bool,
        pinned -> Bool,
        image_upload_id -> Nullable<BigInt>,
        nsfw -> Bool,
        spoiler -> Bool,
    }
}

diesel::table! {
    inbox_items (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        from_user_id -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        comment_id -> Nullable<BigInt>,
        excerpt -> Text,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
        message_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    uploads (id) {
        id -> BigInt,
        uploader_id -> BigInt,
        status -> Text,
        source_format -> Text,
        source_bytes -> BigInt,
        failure_reason -> Nullable<Text>,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        animated -> Bool,
        content_hash -> Nullable<Text>,
        stored_bytes -> BigInt,
        thumbnail_widths -> Array<Integer>,
        created_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    comments (id) {
        id -> BigInt,
        post_id -> BigInt,
        parent_id -> Nullable<BigInt>,
        author_id -> BigInt,
        path -> Array<BigInt>,
        depth -> Integer,
        body -> Text,
        body_html -> Text,
        score -> Integer,
        upvotes -> Integer,
        downvotes -> Integer,
        wilson_score -> Double,
        reply_count -> Integer,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        deleted -> Bool,
        removed -> Bool,
    }
}

diesel::table! {
    post_votes (post_id, user_id) {
        post_id -> BigInt,
        user_id -> BigInt,
        value -> SmallInt,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    comment_votes (comment_id, user_id) {
        comment_id -> BigInt,
        user_id -> BigInt,
        value -> SmallInt,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    login_sessions (id) {
        id -> BigInt,
        user_id -> BigInt,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        user_agent -> Text,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Binary,
        session_id -> BigInt,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        spent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    password_reset_tokens (token_hash) {
        token_hash -> Binary,
        user_id -> BigInt,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        method -> Text,
        path -> Text,
        request_hash -> Binary,
        status -> Nullable<SmallInt>,
        response_body -> Nullable<Binary>,
        response_headers -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    reports (id) {
        id -> BigInt,
        reporter_id -> BigInt,
        community_id -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        comment_id -> Nullable<BigInt>,
        rule_index -> Nullable<Integer>,
        reason -> Text,
        created_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        resolved_by -> Nullable<BigInt>,
        message_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_id -> Nullable<BigInt>,
        community_id -> Nullable<BigInt>,
        action -> Text,
        target_user_id -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        comment_id -> Nullable<BigInt>,
        rule_index -> Nullable<Integer>,
        reason -> Text,
        details -> Jsonb,
        created_at -> Timestamptz,
        prev_hash -> Binary,
        entry_hash -> Binary,
    }
}

diesel::table! {
    email_deliveries (delivery_key) {
        delivery_key -> Text,
        user_id -> Nullable<BigInt>,
        template -> Text,
        sent_at -> Timestamptz,
    }
}

diesel::table! {
    post_summaries (post_id) {
        post_id -> BigInt,
        content_hash -> Text,
        summary -> Text,
        provider -> Text,
        model -> Text,
        source_comment_ids -> Array<BigInt>,
        comment_count -> Integer,
        input_tokens -> Integer,
        output_tokens -> Integer,
        cost_usd -> Double,
        generated_at -> Timestamptz,
    }
}

diesel::table! {
    summary_usage (subject, day) {
        subject -> Text,
        day -> Date,
        used -> Integer,
    }
}

diesel::joinable!(posts -> communities (community_id));
diesel::joinable!(posts -> users (author_id));
diesel::joinable!(comments -> posts (post_id));
diesel::joinable!(communities -> users (creator_id));
diesel::joinable!(refresh_tokens -> login_sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    uploads,
    inbox_items,
    communities,
    community_members,
    community_moderators,
    community_bans,
    posts,
    comments,
    post_votes,
    comment_votes,
    login_sessions,
    refresh_tokens,
    password_reset_tokens,
    idempotency_keys,
    reports,
    audit_log,
    email_deliveries,
    post_summaries,
    summary_usage,
);
