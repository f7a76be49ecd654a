//! SQL over `inbox_items`: what a comment or a moderator action puts in people's inboxes (in
//! the caller's transaction), an inbox page, marking items read, and the unread count.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::inbox_items;
use crate::domain::UserId;

/// One inbox item as the API shows it.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// `reply`, `mention`, `message` or `mod_action`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// When it arrived.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Whether it was read.
    #[diesel(sql_type = Bool)]
    pub read: bool,
    /// The post it is about.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub post_id: Option<i64>,
    /// The comment it is about.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub comment_id: Option<i64>,
    /// The private message it is.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub message_id: Option<i64>,
    /// Who caused it (`null` for a moderator, or an account that is gone).
    #[diesel(sql_type = Nullable<Text>)]
    pub from: Option<String>,
    /// The first words of the comment, or the moderator's reason.
    #[diesel(sql_type = Text)]
    pub excerpt: String,
}

/// Who a new comment notifies: the author of what it answers (`reply`) and the users it names
/// (`mention`), never its own author, nobody twice and nobody who blocks its author. Inserted in the caller's transaction;
/// the recipients and their kinds.
pub async fn add_for_comment(
    conn: &mut AsyncPgConnection,
    comment_id: i64,
    author: UserId,
    mentioned: &[String],
    excerpt: &str,
) -> QueryResult<Vec<(i64, String)>> {
    #[derive(QueryableByName)]
    struct Added {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = Text)]
        kind: String,
    }
    let added: Vec<Added> = diesel::sql_query(
        "WITH c AS (
             SELECT c.id, c.post_id, coalesce(parent.author_id, p.author_id) AS replied_to
             FROM comments c JOIN posts p ON p.id = c.post_id LEFT JOIN comments parent ON parent.id = c.parent_id
             WHERE c.id = $1),
         reply AS (
             SELECT c.replied_to AS user_id, 'reply' AS kind FROM c WHERE c.replied_to <> $2),
         mention AS (
             SELECT u.id AS user_id, 'mention' AS kind FROM users u, c
             WHERE lower(u.username) = ANY($3) AND u.id <> $2 AND u.id <> c.replied_to)
         INSERT INTO inbox_items (user_id, kind, from_user_id, post_id, comment_id, excerpt)
         SELECT r.user_id, r.kind, $2, c.post_id, c.id, $4
         FROM (SELECT * FROM reply UNION ALL SELECT * FROM mention) r, c
         WHERE NOT EXISTS (SELECT 1 FROM user_blocks b WHERE b.user_id = r.user_id AND b.blocked_id = $2)
         RETURNING user_id, kind",
    )
    .bind::<BigInt, _>(comment_id)
    .bind::<BigInt, _>(author.0)
    .bind::<Array<Text>, _>(mentioned)
    .bind::<Text, _>(excerpt)
    .load(conn)
    .await?;
    Ok(added.into_iter().map(|a| (a.user_id, a.kind)).collect())
}

/// A moderator's action on a user's content, with the reason.
pub async fn add_mod_action(
    conn: &mut AsyncPgConnection,
    recipient: UserId,
    post_id: i64,
    comment_id: Option<i64>,
    excerpt: &str,
) -> QueryResult<()> {
    diesel::insert_into(inbox_items::table)
        .values((
            inbox_items::user_id.eq(recipient.0),
            inbox_items::kind.eq("mod_action"),
            inbox_items::post_id.eq(post_id),
            inbox_items::comment_id.eq(comment_id),
            inbox_items::excerpt.eq(excerpt),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// A page of a user's inbox, newest first, before item `before`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    user: UserId,
    unread_only: bool,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<InboxItem>> {
    diesel::sql_query(
        "SELECT i.id, i.kind, i.created_at, i.read_at IS NOT NULL AS read, i.post_id, i.comment_id, i.message_id,
                u.username AS from, i.excerpt
         FROM inbox_items i LEFT JOIN users u ON u.id = i.from_user_id
         WHERE i.user_id = $1 AND i.id < $2 AND ($3 = false OR i.read_at IS NULL)
         ORDER BY i.id DESC LIMIT $4",
    )
    .bind::<BigInt, _>(user.0)
    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
    .bind::<Bool, _>(unread_only)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Marks one item read; false when the user has no such item.
pub async fn mark_read(conn: &mut AsyncPgConnection, user: UserId, id: i64) -> QueryResult<bool> {
    let found = diesel::update(inbox_items::table.find(id).filter(inbox_items::user_id.eq(user.0)))
        .set(inbox_items::read_at.eq(Some(Utc::now())))
        .filter(inbox_items::read_at.is_null())
        .execute(conn)
        .await?;
    if found == 1 {
        return Ok(true);
    }
    // Already read is fine; not theirs (or gone) is not.
    let exists: i64 =
        inbox_items::table.find(id).filter(inbox_items::user_id.eq(user.0)).count().get_result(conn).await?;
    Ok(exists == 1)
}

/// Marks every unread item read; how many were.
pub async fn mark_all_read(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<usize> {
    diesel::update(inbox_items::table.filter(inbox_items::user_id.eq(user.0)).filter(inbox_items::read_at.is_null()))
        .set(inbox_items::read_at.eq(Some(Utc::now())))
        .execute(conn)
        .await
}

/// Unread items.
pub async fn unread(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<i64> {
    inbox_items::table
        .filter(inbox_items::user_id.eq(user.0))
        .filter(inbox_items::read_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// A private message in its recipient's inbox (in the caller's transaction).
pub async fn add_message(
    conn: &mut AsyncPgConnection,
    recipient: UserId,
    sender: UserId,
    message_id: i64,
    excerpt: &str,
) -> QueryResult<()> {
    diesel::insert_into(inbox_items::table)
        .values((
            inbox_items::user_id.eq(recipient.0),
            inbox_items::kind.eq("message"),
            inbox_items::from_user_id.eq(sender.0),
            inbox_items::message_id.eq(message_id),
            inbox_items::excerpt.eq(excerpt),
        ))
        .execute(conn)
        .await
        .map(drop)
}
