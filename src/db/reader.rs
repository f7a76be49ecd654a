//! SQL over what a signed-in reader keeps and refuses: saved posts and comments, hidden
//! posts, blocked users and communities, filtered keywords, and their marks on a page's items.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::UserId;
use crate::domain::reader::Mark;

/// The mark's table, its target column and the target's table.
fn tables(mark: Mark) -> (&'static str, &'static str, &'static str) {
    match mark {
        Mark::SavedPost => ("saved_posts", "post_id", "posts"),
        Mark::SavedComment => ("saved_comments", "comment_id", "comments"),
        Mark::HiddenPost => ("hidden_posts", "post_id", "posts"),
    }
}

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Bool)]
    found: bool,
    #[diesel(sql_type = Bool)]
    changed: bool,
}

/// What setting or clearing a mark did: `None` when the target does not exist, else whether
/// anything changed.
pub async fn set_mark(
    conn: &mut AsyncPgConnection,
    mark: Mark,
    user: UserId,
    target: i64,
    on: bool,
) -> QueryResult<Option<bool>> {
    let (table, column, targets) = tables(mark);
    let write = if on {
        format!("INSERT INTO {table} (user_id, {column}) SELECT $1, id FROM t ON CONFLICT DO NOTHING RETURNING 1")
    } else {
        format!("DELETE FROM {table} WHERE user_id = $1 AND {column} = $2 RETURNING 1")
    };
    let outcome: Outcome = diesel::sql_query(format!(
        "WITH t AS (SELECT id FROM {targets} WHERE id = $2), w AS ({write})
         SELECT EXISTS (SELECT 1 FROM t) AS found, EXISTS (SELECT 1 FROM w) AS changed"
    ))
    .bind::<BigInt, _>(user.0)
    .bind::<BigInt, _>(target)
    .get_result(conn)
    .await?;
    Ok(outcome.found.then_some(outcome.changed))
}

/// A reader's marks on some posts: only the posts they voted on, saved or hid.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct PostMarks {
    /// The post.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Their vote (0 for none).
    #[diesel(sql_type = SmallInt)]
    pub vote: i16,
    /// Saved.
    #[diesel(sql_type = Bool)]
    pub saved: bool,
    /// Hidden.
    #[diesel(sql_type = Bool)]
    pub hidden: bool,
}

/// The reader's marks on `post_ids`, in one query over three primary keys.
pub async fn post_marks(conn: &mut AsyncPgConnection, user: UserId, post_ids: &[i64]) -> QueryResult<Vec<PostMarks>> {
    diesel::sql_query(
        "SELECT p.id, coalesce(v.value, 0)::int2 AS vote, s.post_id IS NOT NULL AS saved,
                h.post_id IS NOT NULL AS hidden
         FROM unnest($2::bigint[]) AS p (id)
         LEFT JOIN post_votes v ON v.user_id = $1 AND v.post_id = p.id
         LEFT JOIN saved_posts s ON s.user_id = $1 AND s.post_id = p.id
         LEFT JOIN hidden_posts h ON h.user_id = $1 AND h.post_id = p.id
         WHERE v.value IS NOT NULL OR s.post_id IS NOT NULL OR h.post_id IS NOT NULL",
    )
    .bind::<BigInt, _>(user.0)
    .bind::<Array<BigInt>, _>(post_ids)
    .load(conn)
    .await
}

/// A reader's mark on one comment of a post: their vote (0 for none) or their save.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct CommentMark {
    /// The comment.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Their vote, on a vote row.
    #[diesel(sql_type = SmallInt)]
    pub vote: i16,
    /// A save row.
    #[diesel(sql_type = Bool)]
    pub saved: bool,
}

/// The reader's votes and saves on the comments of one post, in one query (a row per vote
/// and per save).
pub async fn comment_marks(conn: &mut AsyncPgConnection, user: UserId, post_id: i64) -> QueryResult<Vec<CommentMark>> {
    diesel::sql_query(
        "SELECT v.comment_id AS id, v.value AS vote, false AS saved
         FROM comment_votes v JOIN comments c ON c.id = v.comment_id
         WHERE v.user_id = $1 AND c.post_id = $2
         UNION ALL
         SELECT s.comment_id, 0::int2, true FROM saved_comments s JOIN comments c ON c.id = s.comment_id
         WHERE s.user_id = $1 AND c.post_id = $2",
    )
    .bind::<BigInt, _>(user.0)
    .bind::<BigInt, _>(post_id)
    .load(conn)
    .await
}

/// Blocks (or unblocks) the user named `name`: `None` when there is no such user, else
/// their id and whether anything changed.
pub async fn set_user_block(
    conn: &mut AsyncPgConnection,
    user: UserId,
    name: &str,
    on: bool,
) -> QueryResult<Option<(i64, bool)>> {
    set_block(conn, user, name, on, ("user_blocks", "blocked_id", "users", "username")).await
}

/// Blocks (or unblocks) the community named `name` (see [`set_user_block`]).
pub async fn set_community_block(
    conn: &mut AsyncPgConnection,
    user: UserId,
    name: &str,
    on: bool,
) -> QueryResult<Option<(i64, bool)>> {
    set_block(conn, user, name, on, ("community_blocks", "community_id", "communities", "name")).await
}

async fn set_block(
    conn: &mut AsyncPgConnection,
    user: UserId,
    name: &str,
    on: bool,
    (table, column, targets, named): (&str, &str, &str, &str),
) -> QueryResult<Option<(i64, bool)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Bool)]
        changed: bool,
    }
    let write = if on {
        format!("INSERT INTO {table} (user_id, {column}) SELECT $1, id FROM t ON CONFLICT DO NOTHING RETURNING 1")
    } else {
        format!("DELETE FROM {table} WHERE user_id = $1 AND {column} = (SELECT id FROM t) RETURNING 1")
    };
    let row: Option<Row> = diesel::sql_query(format!(
        "WITH t AS (SELECT id FROM {targets} WHERE lower({named}) = lower($2)), w AS ({write})
         SELECT t.id, EXISTS (SELECT 1 FROM w) AS changed FROM t"
    ))
    .bind::<BigInt, _>(user.0)
    .bind::<Text, _>(name)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|row| (row.id, row.changed)))
}

/// What a reader blocks, by name, in the order they blocked them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocks {
    /// Usernames.
    pub users: Vec<String>,
    /// Community names.
    pub communities: Vec<String>,
}

/// The users and communities `user` blocks.
pub async fn blocks(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Blocks> {
    #[derive(QueryableByName)]
    struct Named {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let users: Vec<Named> = diesel::sql_query(
        "SELECT u.username AS name FROM user_blocks b JOIN users u ON u.id = b.blocked_id
         WHERE b.user_id = $1 ORDER BY b.created_at, u.id",
    )
    .bind::<BigInt, _>(user.0)
    .load(conn)
    .await?;
    let communities: Vec<Named> = diesel::sql_query(
        "SELECT c.name FROM community_blocks b JOIN communities c ON c.id = b.community_id
         WHERE b.user_id = $1 ORDER BY b.created_at, c.id",
    )
    .bind::<BigInt, _>(user.0)
    .load(conn)
    .await?;
    Ok(Blocks {
        users: users.into_iter().map(|n| n.name).collect(),
        communities: communities.into_iter().map(|n| n.name).collect(),
    })
}

/// Whether `blocker` blocks `blocked`.
pub async fn blocks_user(conn: &mut AsyncPgConnection, blocker: UserId, blocked: UserId) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Bool)]
        found: bool,
    }
    let row: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM user_blocks WHERE user_id = $1 AND blocked_id = $2) AS found")
            .bind::<BigInt, _>(blocker.0)
            .bind::<BigInt, _>(blocked.0)
            .get_result(conn)
            .await?;
    Ok(row.found)
}

/// The reader's filtered keywords.
pub async fn filtered_keywords(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Vec<String>> {
    use crate::db::schema::users;
    users::table
        .find(user.0)
        .select(users::filtered_keywords)
        .first(conn)
        .await
        .optional()
        .map(Option::unwrap_or_default)
}

/// Replaces the reader's filtered keywords.
pub async fn set_filtered_keywords(conn: &mut AsyncPgConnection, user: UserId, keywords: &[String]) -> QueryResult<()> {
    use crate::db::schema::users;
    diesel::update(users::table.find(user.0)).set(users::filtered_keywords.eq(keywords)).execute(conn).await.map(drop)
}

/// Where `/me/saved` continues: the last item's save time and id.
pub type SavedCursor = (DateTime<Utc>, i64);
